"""`RNN`: runs a recurrent cell over time in a `jax.lax` loop, length-aware.

Synopsis:
  rnn = sn.RNN(sn.LSTMCell(128))
  y = rnn.apply(params, x, lengths=lengths)             # [B, T, H]
  (c, h), y = sn.RNN(cell, return_carry=True).apply(...) # final carry after the last real step
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import masking

Array = jax.Array
Carry = Any
Params = dict[str, Array]


class ScanKernel(Protocol):
  """What a cell provides (via `cell.scan_kernel()`) for the fused sequence path.

  `consts` is whatever `prepare(params)` returns (e.g. per-gate `[W_g; U_g]`
  kernels), computed once outside the loops. Stacked arrays are batch-major,
  `[B, T, ...]`, like the layer's inputs and outputs. The outputs themselves
  are not saved again as residuals: `backward` and `gradients` receive
  `y_t` and the previous hidden state `h_{t-1}` (`outputs[:, t-1]`, or the
  initial one at t = 0).
  """

  def hidden(self, carry: Carry) -> Array:
    """The part of the carry that is the output, h `[B, H]`."""

  def prepare(self, params: Params) -> Params:
    """Loop-invariant arrays derived from the params."""

  def forward(self, consts: Params, carry: Carry, x_t: Array,
              keep_residuals: bool) -> tuple[Carry, Array, Any]:
    """One step: `(new_carry, y_t [B, H], residuals_t or None)`."""

  def backward(self, consts: Params, residuals_t: Any, y_t: Array, h_prev: Array,
               d_carry: Carry, d_y: Array) -> tuple[Carry, Any]:
    """Reverse step: `(d_carry_prev, dz_t)`, only what the recurrence needs."""

  def gradients(self, params: Params, consts: Params, inputs: Array, residuals: Any,
                h_prev: Array, dz: Any) -> tuple[Params, Array]:
    """Parameter and input gradients from the stacked `[B, T, ...]` residuals,
    previous hidden states `h_prev` and dz."""


def fused_scan(kernel: ScanKernel, params: Params, carry: Carry, inputs: Array,
               mask: Array | None, unroll: int = 1) -> tuple[Carry, Array]:
  """Runs `kernel` over `inputs [B, T, F]` with a hand-written backward pass.

  `mask [B, T] bool` (True on real steps, a *prefix* of each row, as
  `sequence_mask` makes) freezes the carry and zeroes the output past a
  sequence's end. Returns `(final_carry, outputs [B, T, H])`.

  Why hand-written: autodiff of a scan accumulates the weight gradients step
  by step (`dU += h_{t-1}ᵀ dz_t`: a small matmul plus a read-modify-write of
  the whole `[H, G·H]` accumulator per step, and the same for W and x). Here
  the reverse loop computes only what the recurrence needs (`dz_t` and
  `dh_{t-1} = dz_t Uᵀ`); the weight and input gradients are then a few large
  matmuls over all `B·T` rows at once (`dU = Hprevᵀ dZ`, `dW = Xᵀ dZ`,
  `dX = dZ Wᵀ`), as cuDNN and oneDNN do. The loops index the batch-major
  arrays directly (`x[:, t]`), which saved the transposes to and from
  time-major (5–10 % of an Elman forward pass). Reverse-mode only: use
  `flax.linen.RNN(cell)` (the per-step path) for forward-mode autodiff.
  """
  return _fused_scan(kernel, unroll, params, carry, inputs, mask)


def _at(stacked: Array | None, t: Array) -> Array | None:
  """`stacked[:, t]` for a batch-major `[B, T, ...]` array (None passes through)."""
  return None if stacked is None else jax.lax.dynamic_index_in_dim(stacked, t, 1, keepdims=False)


def _stack_buffers(example: Any, steps: int) -> Any:
  """Zero `[B, T, ...]` buffers for per-step values shaped like `example` (`[B, ...]`)."""
  return jax.tree_util.tree_map(
      lambda a: jnp.zeros((a.shape[0], steps) + a.shape[1:], a.dtype), example)


def _put(buffers: Any, values: Any, t: Array) -> Any:
  return jax.tree_util.tree_map(
      lambda buf, v: jax.lax.dynamic_update_index_in_dim(buf, v, t, 1), buffers, values)


def _forward_loop(kernel, unroll, params, carry, inputs, mask, keep_residuals):
  consts = kernel.prepare(params)
  steps = inputs.shape[1]

  def step(carry, t):
    new_carry, y_t, residuals = kernel.forward(consts, carry, _at(inputs, t), keep_residuals)
    m_t = _at(mask, t)
    if m_t is not None:
      keep = m_t[:, None]                                       # [B, 1]
      new_carry = jax.tree_util.tree_map(
          lambda new, old: jnp.where(keep, new, old), new_carry, carry)
      y_t = jnp.where(keep, y_t, 0)
    return new_carry, y_t, residuals

  def body(t, state):
    carry, stacked = state
    carry, y_t, residuals = step(carry, t)
    return carry, _put(stacked, (y_t, residuals), t)

  stacked = _stack_buffers(jax.eval_shape(step, carry, 0)[1:], steps)
  carry, (outputs, residuals) = jax.lax.fori_loop(0, steps, body, (carry, stacked),
                                                  unroll=unroll)
  return carry, outputs, residuals, consts


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _fused_scan(kernel, unroll, params, carry, inputs, mask):
  carry, outputs, _, _ = _forward_loop(kernel, unroll, params, carry, inputs, mask, False)
  return carry, outputs


def _fused_scan_fwd(kernel, unroll, params, carry, inputs, mask):
  final, outputs, residuals, consts = _forward_loop(kernel, unroll, params, carry, inputs, mask,
                                                    True)
  h0 = kernel.hidden(carry)
  return (final, outputs), (params, consts, inputs, mask, h0, outputs, residuals)


def _fused_scan_bwd(kernel, unroll, saved, cotangents):
  params, consts, inputs, mask, h0, outputs, residuals = saved
  d_final, d_outputs = cotangents
  steps = inputs.shape[1]

  def step(d_carry, t):
    d_y, m_t = _at(d_outputs, t), _at(mask, t)
    residuals_t = jax.tree_util.tree_map(lambda r: _at(r, t), residuals)
    # With a prefix mask, the carry entering a real step t > 0 is outputs[:, t-1].
    h_prev = jnp.where(t > 0, _at(outputs, jnp.maximum(t - 1, 0)), h0)
    d_in = d_carry
    if m_t is not None:
      # Past the end the step was the identity on the carry and output 0.
      keep = m_t[:, None]
      d_in = jax.tree_util.tree_map(lambda d: jnp.where(keep, d, 0), d_carry)
      d_y = jnp.where(keep, d_y, 0)
    d_prev, dz = kernel.backward(consts, residuals_t, _at(outputs, t), h_prev, d_in, d_y)
    if m_t is not None:
      d_prev = jax.tree_util.tree_map(
          lambda through_cell, skipped: jnp.where(keep, through_cell, skipped), d_prev, d_carry)
    return d_prev, dz

  def body(i, state):
    d_carry, dz_stacked = state
    t = steps - 1 - i
    d_carry, dz = step(d_carry, t)
    return d_carry, _put(dz_stacked, dz, t)

  dz_example = jax.eval_shape(step, d_final, 0)[1]
  d_carry0, dz = jax.lax.fori_loop(0, steps, body, (d_final, _stack_buffers(dz_example, steps)),
                                   unroll=unroll)
  h_prev = jnp.concatenate([h0[:, None], outputs[:, :-1]], axis=1)   # [B, T, H]
  d_params, d_inputs = kernel.gradients(params, consts, inputs, residuals, h_prev, dz)
  return d_params, d_carry0, d_inputs, None


_fused_scan.defvjp(_fused_scan_fwd, _fused_scan_bwd)


def input_gradients(params: Params, inputs: Array, dz: Array) -> tuple[Params, Array]:
  """Gradients of `z_t = x_t W + b` for all steps at once (two large matmuls).

  `inputs [B, T, F]`, `dz [B, T, G]` -> (`{'input_kernel': [F, G], 'bias': [G]}`,
  `d_inputs [B, T, F]`).
  """
  dz2 = dz.reshape(-1, dz.shape[-1])                                  # [B·T, G]
  grads = {'input_kernel': matmul_tn(inputs, dz), 'bias': jnp.sum(dz2, axis=0)}
  d_inputs = (dz2 @ params['input_kernel'].T).reshape(inputs.shape)
  return grads, d_inputs


def matmul_tn(a: Array, b: Array) -> Array:
  """`Σ_{b,t} a[b, t]ᵀ b[b, t]` for `a [B, T, K]`, `b [B, T, N]` -> `[K, N]` (one matmul)."""
  return a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


class RNN(nn.Module):
  """Scans `cell` over the time axis of `inputs: [B, T, F]`.

  Contract:
    * `lengths: [B] int` marks real steps `t < lengths[b]`. Past a sequence's
      end the carry is frozen and the output is 0, so padding never changes
      a result; the final carry is the carry after the last real step.
    * `reverse=True` reads each sequence backwards *within its own length*
      and returns outputs aligned with the inputs: `outputs[b, t]` has seen
      `x[b, t:lengths[b]]`.
    * `initial_carry` defaults to `cell.initialize_carry` (zeros).
    * Returns `outputs: [B, T, H]`, or `(final_carry, outputs)` when
      `return_carry` is set (flax's order).

  Speed: the seqnets cells (`ElmanCell`, `LSTMCell`, `GRUCell`) provide a
  `scan_kernel()`; for them this layer runs `fused_scan`, a loop with a
  hand-written backward pass: the weight gradients are computed in a few
  large matmuls after the reverse loop instead of being accumulated step by
  step. That path supports reverse-mode autodiff (`grad`, `vjp`) but not
  forward mode (`jvp`, `jacfwd`); `flax.linen.RNN(cell)` runs the same cells
  step by step with plain autodiff. Any other `RNNCellBase` is scanned step
  by step with `nn.scan` and plain autodiff. `make bench`
  (benchmarks/rnn_bench.py) measures the cells against `flax.linen.RNN` and
  PyTorch.

  Attributes:
    cell: any `flax.linen.RNNCellBase` with one feature axis.
    reverse: process right to left (see above).
    return_carry: also return the final carry.
    unroll: `jax.lax.scan` unroll factor.
  """

  cell: nn.RNNCellBase
  reverse: bool = False
  return_carry: bool = False
  unroll: int = 1

  @nn.compact
  def __call__(
      self,
      inputs: Array,
      lengths: Array | None = None,
      initial_carry: Carry | None = None,
      *,
      reverse: bool | None = None,
      return_carry: bool | None = None,
  ) -> Array | tuple[Carry, Array]:
    """Args: `inputs [B, T, F]`, `lengths [B] int` (optional), `initial_carry`.

    `reverse` / `return_carry` override the attributes for this call (used by
    `Bidirectional`).
    """
    reverse = self.reverse if reverse is None else reverse
    return_carry = self.return_carry if return_carry is None else return_carry
    if inputs.ndim != 3:
      raise ValueError(f'RNN inputs must be [batch, time, features], got shape {inputs.shape}')

    if reverse:
      inputs = masking.flip_sequences(inputs, lengths)
    carry = initial_carry
    if carry is None:
      carry = self.cell.initialize_carry(jax.random.key(0), inputs[:, 0].shape)

    if hasattr(self.cell, 'scan_kernel'):
      carry, outputs = self._fused(carry, inputs, lengths)
    else:
      carry, outputs = self._stepwise(carry, inputs, lengths)

    if reverse:
      outputs = masking.flip_sequences(outputs, lengths)
    return (carry, outputs) if return_carry else outputs

  def _fused(self, carry: Carry, inputs: Array, lengths: Array | None) -> tuple[Carry, Array]:
    params = self.cell.cell_params(inputs.shape[-1])
    mask = None if lengths is None else masking.sequence_mask(lengths, inputs.shape[1])
    # Same dtype rule as the cells' per-step `__call__` (nn.dtypes.promote_dtype).
    leaves, treedef = jax.tree_util.tree_flatten((params, carry, inputs))
    leaves = nn.dtypes.promote_dtype(*leaves, dtype=getattr(self.cell, 'dtype', None))
    params, carry, inputs = jax.tree_util.tree_unflatten(treedef, leaves)
    return fused_scan(self.cell.scan_kernel(), params, carry, inputs, mask, self.unroll)

  def _stepwise(self, carry: Carry, inputs: Array, lengths: Array | None) -> tuple[Carry, Array]:
    if lengths is None:
      def step(cell, carry, x_t):
        return cell(carry, x_t)
      xs = inputs
    else:
      def step(cell, carry, x_and_mask):
        x_t, m_t = x_and_mask                        # [B, F], [B]
        new_carry, y_t = cell(carry, x_t)
        keep = lambda new, old: jnp.where(m_t[:, None], new, old)
        new_carry = jax.tree_util.tree_map(keep, new_carry, carry)
        return new_carry, jnp.where(m_t[:, None], y_t, 0)
      xs = (inputs, masking.sequence_mask(lengths, inputs.shape[1]))

    scan = nn.scan(
        step,
        variable_broadcast='params',
        split_rngs={'params': False},
        in_axes=1,
        out_axes=1,
        unroll=self.unroll,
    )
    return scan(self.cell, carry, xs)
