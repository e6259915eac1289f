"""Attention over a memory of encoder states, and a cell wrapper that gives any cell attention.

Synopsis:
  cell = sn.AttentionCell(sn.LSTMCell(256), memory=h_enc, memory_mask=mask,   # [B, S, D], [B, S]
                          score='additive', placement='bahdanau')
  (carry, weights), y = sn.RNN(cell, return_all_carries=True)(x, lengths)  # y: [B, T, H + D]
  alpha = weights[2]                                                      # [B, T, S]

Scores of a query q `[B, Q]` against the memory h_s `[B, S, D]` (Luong et al. 2015):
  dot       e_s = h_s · q                         (D = Q)
  general   e_s = h_s W q                         W [D, Q]
  additive  e_s = vᵀ tanh(W₁ h_s + W₂ q)           (Bahdanau et al. 2015), W₁ [D, A], W₂ [Q, A]
α = softmax(e) over the real positions (mask True); padded positions get exactly 0,
and a row with no real position gets α = 0 and a zero context. Context c = Σ_s α_s h_s.
The memory's part of every score (`h_s`, `h_s W`, `W₁ h_s`) is the *keys*,
computed once per sequence by `MemoryKeys`, not at every step.

Inside `sn.RNN`, an `AttentionCell` around an `ElmanCell`, `LSTMCell` or `GRUCell`
without regularisers runs through a fused kernel with a hand-written backward pass
(`attention_scan`); any other cell, and `implementation='scan'`, step by step.
"""

from __future__ import annotations

import typing
from typing import Any, Literal

import flax
import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import attention_scan
from seqnets.layers import cell_regularizers
from seqnets.layers import fused_cell

Array = jax.Array
Score = Literal['dot', 'general', 'additive']
Placement = Literal['bahdanau', 'luong']
SCORES = typing.get_args(Score)
PLACEMENTS = typing.get_args(Placement)


def _check_choice(name: str, value: str, valid) -> None:
  if value not in valid:
    raise ValueError(f'{name}={value!r}; valid: {list(valid)}')


class MemoryKeys(nn.Module):
  """The memory's part of the score, `[B, S, D] -> [B, S, K]`: the memory itself
  (dot), `h_s W` (general, K = query size) or `W₁ h_s` (additive, K = A)."""
  score: str = 'additive'
  query_size: int = 0
  attention_size: int = 0

  @nn.compact
  def __call__(self, memory: Array) -> Array:
    _check_choice('score', self.score, SCORES)
    if self.score == 'dot':
      return memory
    size = self.query_size if self.score == 'general' else self.attention_size
    if size <= 0:
      what = 'query_size' if self.score == 'general' else 'attention_size'
      raise ValueError(f'MemoryKeys({self.score!r}) needs a positive {what}, got {size}')
    return nn.Dense(size, use_bias=False, name='memory')(memory)


def masked_softmax(scores: Array, mask: Array | None) -> Array:
  """softmax over the last axis where `mask`; exactly 0 elsewhere (all 0 on a row with no True).
  Computed in float32 at least, returned in the scores' dtype."""
  dtype = scores.dtype
  scores = scores.astype(jnp.promote_types(dtype, jnp.float32))
  if mask is None:
    return jax.nn.softmax(scores, axis=-1).astype(dtype)
  scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
  weights = jnp.exp(scores - jnp.max(scores, axis=-1, keepdims=True)) * mask
  total = jnp.maximum(jnp.sum(weights, axis=-1, keepdims=True), jnp.finfo(scores.dtype).tiny)
  return (weights / total).astype(dtype)


class Attention(nn.Module):
  """`(query [B, Q], keys [B, S, K], memory [B, S, D], mask [B, S]) -> (context [B, D], α [B, S])`."""
  score: str = 'additive'
  attention_size: int = 0

  @nn.compact
  def __call__(self, query: Array, keys: Array, memory: Array,
               mask: Array | None = None) -> tuple[Array, Array]:
    _check_choice('score', self.score, SCORES)
    if self.score == 'additive':
      projected = nn.Dense(keys.shape[-1], name='query')(query)                  # [B, A]
      hidden = jnp.tanh(keys + projected[:, None, :])                            # [B, S, A]
      scores = nn.Dense(1, use_bias=False, name='energy')(hidden)[..., 0]        # [B, S]
    else:
      if keys.shape[-1] != query.shape[-1]:
        raise ValueError(f'{self.score!r} attention needs keys and query of one size: keys '
                         f'{keys.shape[-1]}, query {query.shape[-1]}'
                         + (' (the memory is the keys: its size must be the decoder\'s)'
                            if self.score == 'dot' else ''))
      scores = jnp.einsum('bsk,bk->bs', keys, query)
    weights = masked_softmax(scores, mask)
    return jnp.einsum('bs,bsd->bd', weights, memory), weights


def hidden_state(carry: Any) -> Array:
  """The hidden state h of a cell's carry: the carry itself, or the last element of a
  tuple carry (flax's and seqnets' LSTM carry is `(c, h)`)."""
  return carry[-1] if isinstance(carry, (tuple, list)) else carry


class AttentionCell(nn.RNNCellBase):
  """Any cell, with attention over `memory` at every step.

  Placements (x_t the step's input, s the wrapped cell's hidden state):
    bahdanau  c_t = attend(s_{t-1}); s_t = cell([x_t; c_t]); output y_t = [s_t; c_t]  [B, H + D]
    luong     s_t = cell([x_t; h̃_{t-1}]); c_t = attend(s_t);
              h̃_t = tanh(W_c [c_t; s_t]); output y_t = h̃_t  [B, output_size]
              (input feeding: h̃_{t-1} enters the next step)
  Carry: `(cell carry, h̃ [B, output_size] (luong) or the last context [B, D]
  (bahdanau), α [B, S])`; with `sn.RNN(return_all_carries=True)` the third
  component is every step's attention weights `[B, T, S]`.

  Attributes:
    cell: the wrapped cell (any `RNNCellBase` whose carry is h or ends with h).
    memory: the encoder states `[B, S, D]`.
    memory_mask: `[B, S]` bool, True on real source positions (None: all real).
    keys: `MemoryKeys` of the memory, computed once outside the loop; None
      computes them in the cell (same parameters' names): at every step on the plain
      scan (slower), once per sequence on the fused kernel.
    score: 'dot' | 'general' | 'additive'.
    placement: 'bahdanau' | 'luong'.
    attention_size: A of the additive score (0: the cell's size).
    output_size: size of h̃ (luong; 0: the cell's size).
  """
  cell: nn.RNNCellBase
  memory: Array
  memory_mask: Array | None = None
  keys: Array | None = None
  score: Score = 'additive'
  placement: Placement = 'bahdanau'
  attention_size: int = 0
  output_size: int = 0

  @property
  def _cell_size(self) -> int:
    return self.cell.features

  @property
  def _feed_size(self) -> int:
    if self.placement == 'luong':
      return self.output_size or self._cell_size
    return self.memory.shape[-1]

  def sequence_masks(self, deterministic: bool | None = None) -> dict[str, Array]:
    """None: masks drawn once per sequence (weight drop) do not reach the wrapped cell."""
    del deterministic
    return {}

  def setup(self):
    self.attention = Attention(self.score)
    if self.keys is None:
      self.memory_keys = MemoryKeys(self.score, self._cell_size,
                                    self.attention_size or self._cell_size)
    if self.placement == 'luong':
      self.combine = nn.Dense(self._feed_size, use_bias=False)

  def _keys(self) -> Array:
    return self.memory_keys(self.memory) if self.keys is None else self.keys

  def _step(self, carry, inputs: Array, deterministic: bool | None):
    if fused_cell.step_takes_masks(self.cell) and deterministic is not None:
      return self.cell(carry, inputs, deterministic=deterministic)
    return self.cell(carry, inputs)

  def __call__(self, carry, inputs: Array, *, deterministic: bool | None = None,
               masks: dict[str, Array] | None = None):
    """One step: `(carry, x_t [B, F]) -> (carry, y_t)`. `deterministic` reaches the wrapped
    cell's per-step regularisers (update dropout, zoneout); `masks` is unused."""
    del masks
    _check_choice('placement', self.placement, PLACEMENTS)
    cell_carry, feed, _ = carry
    keys = self._keys()
    if self.placement == 'bahdanau':
      context, weights = self.attention(hidden_state(cell_carry), keys, self.memory,
                                        self.memory_mask)
      cell_carry, s = self._step(cell_carry,
                                 jnp.concatenate([inputs, context.astype(inputs.dtype)], -1),
                                 deterministic)
      return (cell_carry, context, weights), jnp.concatenate([s, context.astype(s.dtype)], -1)
    cell_carry, s = self._step(cell_carry, jnp.concatenate([inputs, feed.astype(inputs.dtype)], -1),
                               deterministic)
    context, weights = self.attention(s, keys, self.memory, self.memory_mask)
    attentional = jnp.tanh(self.combine(jnp.concatenate([context.astype(s.dtype), s], -1)))
    return (cell_carry, attentional, weights), attentional

  @nn.nowrap
  def runs_fused(self, deterministic: bool | None = None) -> bool:
    """Whether `sn.RNN` may run this cell through `fused_scan` (`scan_kernel()`): this
    class's step, around a `FusedCell` that runs fused without regularisers and whose kernel
    `attention_scan.takes_cell`."""
    del deterministic                 # no regulariser at all: the mode changes nothing
    cell = self.cell
    return (type(self).__call__ is AttentionCell.__call__
            and self.placement in PLACEMENTS and self.score in SCORES
            and isinstance(cell, fused_cell.FusedCell) and cell.runs_fused()
            and not (cell.has_regularizers and cell_regularizers.is_active(cell))
            and attention_scan.takes_cell(cell.scan_kernel()))

  @nn.nowrap
  def scan_kernel(self) -> attention_scan.AttentionKernel:
    """The step, reverse step and gradients for `fused_scan(..., context=...)`, with
    `fused_arguments`' params and context."""
    return attention_scan.AttentionKernel(self.cell.scan_kernel(), self._cell_size, self.score,
                                          self.placement)

  def fused_arguments(self, num_features: int) -> tuple[dict[str, Any], dict[str, Array]]:
    """`(params, context)` for `scan_kernel()` on inputs `[B, T, F = num_features]`.

    params: `{'cell': the wrapped cell's (inputs [x_t; feed]), 'attention': the
    attention's (additive: 'query', 'energy'), 'combine': W_c (luong)}`, the same
    variables the step declares; context: `{'memory' [B, S, D], 'keys' [B, S, K] (computed
    once here when not given), 'mask' [B, S] bool}`."""
    size, width = self._cell_size, self.memory.shape[-1]
    keys = self._keys()
    cell = self.cell.cell_params(num_features + self._feed_size)
    zeros = lambda *shape: jnp.zeros(shape, keys.dtype)
    # Tiny calls declare (at init) the submodules' variables, with the step's shapes.
    self.attention(zeros(1, size), zeros(1, 1, keys.shape[-1]), zeros(1, 1, width))
    params = {'cell': dict(cell),
              'attention': flax.core.unfreeze(self.attention.variables.get('params', {}))}
    if self.placement == 'luong':
      self.combine(zeros(1, width + size))
      params['combine'] = flax.core.unfreeze(self.combine.variables['params'])
    mask = self.memory_mask
    if mask is None:
      mask = jnp.ones(self.memory.shape[:2], bool)
    return params, {'memory': self.memory, 'keys': keys, 'mask': mask}

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]):
    """Zeros: the wrapped cell's carry for inputs `[*batch, F + feed]`, the feed, α."""
    batch = input_shape[:-1]
    cell_carry = self.cell.initialize_carry(rng, batch + (input_shape[-1] + self._feed_size,))
    dtype = jax.tree_util.tree_leaves(cell_carry)[0].dtype
    return (cell_carry, jnp.zeros(batch + (self._feed_size,), dtype),
            jnp.zeros(batch + (self.memory.shape[1],), dtype))

  @property
  def num_feature_axes(self) -> int:
    return 1
