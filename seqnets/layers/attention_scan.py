"""The fused kernel of `AttentionCell`: its step, reverse step and gradients for
`fused_scan.fused_scan(..., context=...)`, around the wrapped cell's own kernel.

Synopsis:
  kernel = AttentionKernel(sn.GRUCell(H).scan_kernel(), features=H, score='additive',
                           placement='bahdanau')
  params = {'cell': ..., 'attention': {'query': ..., 'energy': ...}}     # + 'combine' (luong)
  context = {'memory': memory, 'keys': keys, 'mask': mask}     # [B, S, D], [B, S, K], [B, S]
  carry, y = fused_scan.fused_scan(kernel, params, carry, x, lengths_mask, context=context)

`sn.RNN` builds these from an `AttentionCell` (`AttentionCell.fused_arguments`). The
equations are `attention.py`'s. Inside the loop: the scores of the step's query against
the keys, the masked softmax, the context, the wrapped cell's step and (luong)
`h̃ = tanh([c; s] W_c)`; in the reverse loop, only what the recurrence needs: the cell's
reverse step, the context's cotangent through the rows of the cell's input kernel that
read it, and the query's through the scores. After the reverse loop, as large matmuls
over all `B·T` rows: the wrapped cell's weight gradients (its `gradients`, on the inputs
`[x_t; c_t]` or `[x_t; h̃_{t-1}]`), the query projection's, W_c's, and the memory's
cotangent `Σ_t α_tᵀ dc_t`. The keys' cotangent of the additive score, `Σ_t` of a
`[B, S, A]` array, and the energy vector's are summed in the reverse loop (`sums`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from seqnets.layers import attention
from seqnets.layers import fused_scan

Array = jax.Array
Params = dict[str, Any]


def add_to_hidden(carry: Any, h: Array) -> Any:
  """`carry` with `h` added to its hidden state (`attention.hidden_state`'s part)."""
  if isinstance(carry, (tuple, list)):
    return (*carry[:-1], carry[-1] + h)
  return carry + h


def takes_cell(kernel: Any) -> bool:
  """Whether a cell's `ScanKernel` can run inside `AttentionKernel`: it says how its dz
  reaches its input side (`input_cotangent`), and its `gradients` reads the params' input
  kernel only for `d_inputs = dZ Wᵀ` (the affine cells' `fused_scan.input_gradients`)."""
  return callable(getattr(kernel, 'input_cotangent', None))


@dataclasses.dataclass(frozen=True)
class AttentionKernel:
  """`AttentionCell`'s step for `fused_scan` (a `fused_scan.ContextScanKernel`).

  Carry: `(cell carry, feed, α [B, S])`, the cell's. The step's output y_t (and so
  `h_prev` in the reverse loop) is `[s_t; c_t]` `[B, H + D]` (bahdanau) or h̃_t
  (luong). Residuals per step: the cell's, the projected query `[B, A]` (additive; the
  `[B, S, A]` tanh is recomputed in the reverse step rather than kept) and α; luong also
  keeps `s_{t-1}` and `s_t`.

  Attributes:
    cell: the wrapped cell's kernel (`takes_cell`).
    features: the wrapped cell's hidden size H.
    score / placement: as `AttentionCell`'s.
  """

  cell: Any
  features: int
  score: str
  placement: str

  @property
  def _luong(self) -> bool:
    return self.placement == 'luong'

  @property
  def _additive(self) -> bool:
    return self.score == 'additive'

  def hidden(self, carry: Any) -> Array:
    cell_carry, feed, _ = carry
    if self._luong:
      return feed
    return jnp.concatenate([self.cell.hidden(cell_carry), feed], axis=-1)

  def prepare(self, params: Params, context: dict[str, Array]) -> Params:
    """The cell's consts, the context, and the rows of the cell's input kernel that read
    the feed (`context_kernel [D or O, G]`)."""
    memory = context['memory']
    feed = params['combine']['kernel'].shape[-1] if self._luong else memory.shape[-1]
    w = params['cell']['input_kernel']
    consts = dict(cell=self.cell.prepare(params['cell']), memory=memory, keys=context['keys'],
                  mask=context['mask'], context_kernel=w[w.shape[0] - feed:])
    if self._additive:
      query = params['attention']['query']
      consts.update(query_kernel=query['kernel'], query_bias=query['bias'],
                    energy=params['attention']['energy']['kernel'][:, 0])
    if self._luong:
      consts['combine'] = params['combine']['kernel']
    return consts

  def _attend(self, consts: Params, query: Array) -> tuple[Array, Array, Array | None]:
    """`(context [B, D], α [B, S], projected query [B, A] or None)` for `query [B, H]`."""
    keys = consts['keys']
    if self._additive:
      projected = query @ consts['query_kernel'] + consts['query_bias']
      scores = jnp.tanh(keys + projected[:, None, :]) @ consts['energy']
    else:
      projected = None
      scores = jnp.einsum('bsk,bk->bs', keys, query)
    alpha = attention.masked_softmax(scores, consts['mask'])
    return jnp.einsum('bs,bsd->bd', alpha, consts['memory']), alpha, projected

  def forward(self, consts: Params, carry: Any, x_t: Array,
              keep_residuals: bool) -> tuple[Any, Array, Any]:
    cell_carry, feed, _ = carry
    if self._luong:
      s_prev = self.cell.hidden(cell_carry)
      cell_carry, s, cell_res = self.cell.forward(
          consts['cell'], cell_carry, jnp.concatenate([x_t, feed], axis=-1), keep_residuals)
      context, alpha, projected = self._attend(consts, s)
      attentional = jnp.tanh(jnp.concatenate([context, s], axis=-1) @ consts['combine'])
      residuals = (cell_res, projected, alpha, s_prev, s) if keep_residuals else None
      return (cell_carry, attentional, alpha), attentional, residuals
    context, alpha, projected = self._attend(consts, self.cell.hidden(cell_carry))
    cell_carry, s, cell_res = self.cell.forward(
        consts['cell'], cell_carry, jnp.concatenate([x_t, context], axis=-1), keep_residuals)
    residuals = (cell_res, projected, alpha) if keep_residuals else None
    return (cell_carry, context, alpha), jnp.concatenate([s, context], axis=-1), residuals

  def zero_sums(self, consts: Params) -> dict[str, Array]:
    """The additive score's keys `[B, S, A]` and energy `[A]` cotangents (none otherwise),
    accumulated in float32 at least."""
    if not self._additive:
      return {}
    keys = consts['keys']
    dtype = jnp.promote_types(keys.dtype, jnp.float32)
    return {'keys': jnp.zeros(keys.shape, dtype), 'energy': jnp.zeros(keys.shape[-1:], dtype)}

  def _attend_backward(self, consts: Params, projected: Array | None, alpha: Array,
                       query: Array, d_context: Array, d_alpha: Array,
                       sums: dict[str, Array]) -> tuple[Array, Array, dict[str, Array]]:
    """`(d_query [B, H], dz [B, A] (additive: of the projected query) or [B, S] (of the
    scores), sums)` from the cotangents of the context and α."""
    d_alpha = d_alpha + jnp.einsum('bd,bsd->bs', d_context, consts['memory'])
    d_scores = alpha * (d_alpha - jnp.sum(alpha * d_alpha, axis=-1, keepdims=True))
    if not self._additive:
      return jnp.einsum('bs,bsk->bk', d_scores, consts['keys']), d_scores, sums
    hidden = jnp.tanh(consts['keys'] + projected[:, None, :])                 # [B, S, A]
    d_pre = d_scores[..., None] * consts['energy'] * (1 - hidden * hidden)
    d_projected = jnp.sum(d_pre, axis=1)                                       # [B, A]
    sums = {'keys': sums['keys'] + d_pre,
            'energy': sums['energy'] + jnp.einsum('bs,bsa->a', d_scores, hidden)}
    return d_projected @ consts['query_kernel'].T, d_projected, sums

  def backward(self, consts: Params, residuals: Any, y_t: Array, h_prev: Array, d_carry: Any,
               d_y: Array, sums: Any) -> tuple[Any, Any, Any]:
    d_cell, d_feed, d_alpha = d_carry
    feed_kernel = consts['context_kernel']
    if self._luong:
      cell_res, projected, alpha, s_prev, s = residuals
      d_combined = (d_y + d_feed) * (1 - y_t * y_t)                            # [B, O]
      d_cs = d_combined @ consts['combine'].T                                  # [B, D + H]
      width = consts['memory'].shape[-1]
      d_context = d_cs[..., :width]
      d_query, dz_attention, sums = self._attend_backward(consts, projected, alpha, s,
                                                          d_context, d_alpha, sums)
      d_cell_prev, dz_cell = self.cell.backward(consts['cell'], cell_res, s, s_prev, d_cell,
                                                d_cs[..., width:] + d_query)
      d_feed_prev = self.cell.input_cotangent(dz_cell) @ feed_kernel.T
      return ((d_cell_prev, d_feed_prev, jnp.zeros_like(d_alpha)),
              (dz_cell, dz_attention, d_context, d_combined), sums)
    cell_res, projected, alpha = residuals
    size = self.features
    s_prev = h_prev[..., :size]
    d_cell_prev, dz_cell = self.cell.backward(consts['cell'], cell_res, y_t[..., :size], s_prev,
                                              d_cell, d_y[..., :size])
    d_context = d_y[..., size:] + d_feed + self.cell.input_cotangent(dz_cell) @ feed_kernel.T
    d_query, dz_attention, sums = self._attend_backward(consts, projected, alpha, s_prev,
                                                        d_context, d_alpha, sums)
    d_prev = (add_to_hidden(d_cell_prev, d_query), jnp.zeros_like(d_feed),
              jnp.zeros_like(d_alpha))
    return d_prev, (dz_cell, dz_attention, d_context), sums

  def _attention_gradients(self, queries: Array, dz_attention: Array,
                           sums: dict[str, Array]) -> tuple[Params, Array]:
    """`(the attention's param gradients, the keys' cotangent [B, S, K])` from the stacked
    queries `[B, T, H]` and the reverse loop's dz."""
    if not self._additive:
      return {}, jnp.einsum('bts,btk->bsk', dz_attention, queries)
    query = {'kernel': fused_scan.matmul_tn(queries, dz_attention),
             'bias': fused_scan.sum_bt(dz_attention)}
    return {'query': query, 'energy': {'kernel': sums['energy'][:, None]}}, sums['keys']

  def _cell_gradients(self, params: Params, consts: Params, inputs: Array, feeds: Array,
                      residuals: Any, s_prev: Array, dz: Any) -> tuple[Params, Array]:
    """The wrapped cell's `gradients` on its inputs `[x_t; feed_t]` (`inputs [B, T, F]`,
    `feeds [B, T, D]`), without the feed's input cotangent (the reverse loop had it): the
    cell sees only the x rows of its input kernel, and the feed rows' gradient is one more
    matmul."""
    width = inputs.shape[-1]
    kernel = params['input_kernel']
    grads, d_inputs = self.cell.gradients(dict(params, input_kernel=kernel[:width]), consts,
                                          inputs, residuals, s_prev, dz)
    d_feed_rows = fused_scan.matmul_tn(feeds, self.cell.input_cotangent(dz))
    grads['input_kernel'] = jnp.concatenate(
        [grads['input_kernel'], d_feed_rows.astype(grads['input_kernel'].dtype)], axis=0)
    return grads, d_inputs

  def gradients(self, params: Params, consts: Params, inputs: Array, residuals: Any,
                h_prev: Array, dz: Any, sums: Any) -> tuple[Params, Array, dict[str, Any]]:
    memory = consts['memory']
    alpha = residuals[2]                                                       # [B, T, S]
    contexts = jnp.einsum('bts,bsd->btd', alpha, memory)
    if self._luong:
      cell_res, _, _, s_prev, queries = residuals
      dz_cell, dz_attention, d_context, d_combined = dz
      feeds = h_prev                                                           # h̃_{t-1}
    else:
      cell_res = residuals[0]
      dz_cell, dz_attention, d_context = dz
      s_prev = queries = h_prev[..., :self.features]
      feeds = contexts
    d_cell, d_inputs = self._cell_gradients(params['cell'], consts['cell'], inputs, feeds,
                                            cell_res, s_prev, dz_cell)
    d_attention, d_keys = self._attention_gradients(queries, dz_attention, sums)
    d_params = {'cell': d_cell, 'attention': d_attention}
    if self._luong:
      d_params['combine'] = {'kernel': fused_scan.matmul_tn(
          jnp.concatenate([contexts, queries], axis=-1), d_combined)}
    d_memory = jnp.einsum('bts,btd->bsd', alpha, d_context,
                          preferred_element_type=jnp.promote_types(memory.dtype, jnp.float32))
    d_context_args = {'memory': d_memory, 'keys': d_keys, 'mask': None}
    return d_params, d_inputs, d_context_args
