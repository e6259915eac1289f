"""The fused scan: a pure function that runs a cell's `ScanKernel` over `[B, T, F]` inputs
with a hand-written backward pass (a `jax.custom_vjp`), apart from any layer.

Synopsis:
  kernel = cell.scan_kernel()                         # e.g. sn.LSTMCell(H).scan_kernel()
  carry, y = fused_scan(kernel, params, carry, x, mask)  # x: [B, T, F], mask: [B, T] bool
  jax.grad(lambda p: jnp.sum(fused_scan(kernel, p, carry, x, None)[1]))(params)
  fused_scan(kernel, params, carry, x, mask, hoist_inputs=True)  # X W + b before the loop

`sn.RNN` (rnn.py) is its flax.linen front end; another front end (Flax NNX, a
hardware-specific kernel) calls `fused_scan` with the params it holds. The
kernels' `gradients` share `input_gradients` and `matmul_tn`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
Carry = Any
Params = dict[str, Array]


class ScanKernel(Protocol):
  """A recurrent step with its reverse step and gradients, for `fused_scan`.

  A cell provides it via `cell.scan_kernel()`; a `fused_cell.FusedCell`'s
  step (`__call__`) is `forward` on `prepare(params)`. A kernel is a frozen
  dataclass of static settings (not differentiated: `fused_scan` takes it as
  a static argument of its custom VJP).

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


class HoistedScanKernel(ScanKernel, Protocol):
  """A `ScanKernel` that can also run with its input projection hoisted out of the loop
  (`fused_scan(..., hoist_inputs=True)`; `hoists_inputs` tells).

  `project` computes the input side of every step at once, one `[B·T, F] @ [F, G]`
  matmul before the loop; `forward_projected` is `forward` given that step's slice,
  so its only matmul is `h @ U` (`[B, H] @ [H, G]`, all gates at once). It keeps the
  same residuals as `forward`, so `backward` and `gradients` serve both variants
  (`gradients` already computes `dW = Xᵀ dZ`, `db = Σ dZ`, `dX = dZ Wᵀ` after the
  reverse loop).
  """

  def project(self, consts: Params, inputs: Array) -> Array:
    """The input projection of every step: `inputs [B, T, F]` -> `[B, T, G]`."""

  def forward_projected(self, consts: Params, carry: Carry, projected_t: Array,
                        keep_residuals: bool) -> tuple[Carry, Array, Any]:
    """`forward` from `projected_t = project(consts, inputs)[:, t]` `[B, G]` instead of
    `x_t`: `(new_carry, y_t [B, H], residuals_t or None)`."""


class ContextScanKernel(Protocol):
  """A `ScanKernel` whose step also reads per-sequence constants that are differentiated,
  the *context* (`fused_scan(..., context=...)`; e.g. an attention cell's memory
  `[B, S, D]`, its keys and mask).

  Its methods are `ScanKernel`'s with these differences: `prepare(params, context)` sees
  the context; the reverse loop carries *sums*, accumulators of cotangents that are
  per-sequence rather than per-step (e.g. the keys' `[B, S, A]`), which start as
  `zero_sums(consts)`, pass through every reverse step and reach `gradients`, which
  returns the context's cotangent too. A context leaf that is not differentiable (a bool
  mask) gets None.
  """

  def hidden(self, carry: Carry) -> Array:
    """The part of the carry that is the output, `[B, H]`."""

  def prepare(self, params: Params, context: Any) -> Params:
    """Loop-invariant arrays derived from the params and the context."""

  def forward(self, consts: Params, carry: Carry, x_t: Array,
              keep_residuals: bool) -> tuple[Carry, Array, Any]:
    """One step: `(new_carry, y_t [B, H], residuals_t or None)`."""

  def zero_sums(self, consts: Params) -> Any:
    """The accumulators the reverse loop starts from (zeros)."""

  def backward(self, consts: Params, residuals_t: Any, y_t: Array, h_prev: Array,
               d_carry: Carry, d_y: Array, sums: Any) -> tuple[Carry, Any, Any]:
    """Reverse step: `(d_carry_prev, dz_t, sums)`, the sums with this step's share added."""

  def gradients(self, params: Params, consts: Params, inputs: Array, residuals: Any,
                h_prev: Array, dz: Any, sums: Any) -> tuple[Params, Array, Any]:
    """`(d_params, d_inputs, d_context)` from the stacked `[B, T, ...]` residuals, previous
    outputs `h_prev`, dz and the reverse loop's final sums."""


def hoists_inputs(kernel: ScanKernel) -> bool:
  """Whether `kernel` has the hoisted variant (`HoistedScanKernel`'s two methods)."""
  return callable(getattr(kernel, 'project', None)) and callable(
      getattr(kernel, 'forward_projected', None))


def input_projection(consts: Params, inputs: Array, bias: bool = True) -> Array:
  """`inputs W (+ b)` for all steps, `[B, T, F] @ [F, G]` -> `[B, T, G]` (W:
  `consts['input_kernel']`, b: `consts['bias']`) in the computation dtype: the
  `project` of the affine cells, one matmul over the `B·T` rows."""
  kernel = consts['input_kernel']
  projected = (inputs.reshape(-1, inputs.shape[-1]) @ kernel).reshape(
      inputs.shape[:2] + kernel.shape[1:])
  return projected + consts['bias'] if bias else projected


def fused_scan(kernel: ScanKernel, params: Params, carry: Carry, inputs: Array,
               mask: Array | None, unroll: int = 1, all_carries: bool = False,
               remat: int | None = None, hoist_inputs: bool = False, context: Any = None
               ) -> tuple[Carry, Array] | tuple[Carry, Array, Carry]:
  """Runs `kernel` over `inputs [B, T, F]` with a hand-written backward pass.

  `mask [B, T] bool` (True on real steps, a *prefix* of each row, as
  `sequence_mask` makes) freezes the carry and zeroes the output past a
  sequence's end. Returns `(final_carry, outputs [B, T, H])`, and with
  `all_carries` also the carry after every step, each carry component
  stacked as `[B, T, ...]` (frozen past each end, like the carry).
  The kernel's step must keep the carry's dtype (the caller first promotes
  params, carry and inputs to the computation dtype, `fused_cell.promote`);
  cotangents come back in the dtypes of `params`, `carry` and `inputs`.

  Why hand-written: autodiff of a scan accumulates the weight gradients step
  by step (`dU += h_{t-1}ᵀ dz_t`: a small matmul plus a read-modify-write of
  the whole `[H, G·H]` accumulator per step, and the same for W and x). Here
  the reverse loop computes only what the recurrence needs (`dz_t` and
  `dh_{t-1} = dz_t Uᵀ`); the weight and input gradients are then a few large
  matmuls over all `B·T` rows at once (`dU = Hprevᵀ dZ`, `dW = Xᵀ dZ`,
  `dX = dZ Wᵀ`), as cuDNN and oneDNN do. The loops index the batch-major
  arrays directly (`x[:, t]`), which saved the transposes to and from
  time-major (5–10 % of an Elman forward pass). Reverse-mode only: for
  forward-mode autodiff scan the cell's step (`sn.RNN(cell, fused=False)`).

  `remat = k` (an int ≥ 1; None or 0: off) trades compute for memory: the
  forward pass keeps only the carry entering each segment of k steps
  (`⌈T/k⌉` carries) instead of every step's residuals and outputs; the
  backward pass walks the segments last to first, runs each segment's
  forward again (with residuals), its reverse loop, and its weight and input
  gradients (matmuls over the segment's `B·k` rows, summed over segments).
  Memory for the backward pass: `⌈T/k⌉` carries plus one segment's
  residuals, outputs and dz, O(T/k + k) steps (k ≈ √T is the least); time:
  one forward pass more. Same results as without, to rounding. When k does
  not divide T, the last segment has `T mod k` steps.

  `hoist_inputs=True` runs the kernel's hoisted variant (`HoistedScanKernel`; a
  ValueError for a kernel without it, see `hoists_inputs`): the input projection
  `X W + b` of all steps is one `[B·T, F] @ [F, G]` matmul before the loop, and each
  step does only `h @ U` and the gate maths, fewer and larger kernels per step, which
  is what accelerators want. The backward pass is the same (the input side's
  gradients were already large matmuls after the reverse loop). Without remat the
  `[B, T, G]` projection is held through the forward loop, next to the residuals.
  With `remat`, each segment projects its own inputs, in the forward pass and again
  when the backward pass recomputes it, so no projection outlives its segment and
  memory stays O(T/k + k).

  `context` (None, or any pytree of arrays) is per-sequence input of a
  `ContextScanKernel`'s step, differentiated like `params`: e.g. an attention cell's
  memory `[B, S, D]`, keys and mask. The kernel's `prepare(params, context)` reads it;
  its cotangent comes back from the kernel's `gradients` (None for a bool or int leaf),
  in the context's dtypes. Not with `remat` or `hoist_inputs` (ValueError).
  """
  segment = check_remat(remat)
  if context is not None:
    if segment or hoist_inputs:
      raise ValueError('fused_scan(context=...) runs without remat and hoist_inputs')
    return _fused_scan(_LoopSettings(kernel, unroll, False, all_carries), params, carry,
                       inputs, mask, context)
  hoist = bool(hoist_inputs)
  if hoist and not hoists_inputs(kernel):
    raise ValueError(f'fused_scan(hoist_inputs=True): {type(kernel).__name__} has no hoisted '
                     'variant (project and forward_projected)')
  loop = _LoopSettings(kernel, unroll, hoist, all_carries)
  if not segment or inputs.shape[1] == 0:
    return _fused_scan(loop, params, carry, inputs, mask, None)
  return _fused_scan_remat(loop, min(segment, inputs.shape[1]), params, carry, inputs, mask)


@dataclasses.dataclass(frozen=True)
class _LoopSettings:
  """The static settings of one `fused_scan` (a non-differentiated argument of its VJP)."""
  kernel: ScanKernel
  unroll: int
  hoist: bool
  all_carries: bool


def check_remat(remat: Any) -> int:
  """`remat` as a segment length: 0 when off (None, 0, False), else the int k ≥ 1;
  ValueError naming `remat` for anything else (a negative or non-integer value)."""
  if remat is None or remat is False:
    return 0
  if isinstance(remat, bool) or not isinstance(remat, (int, np.integer)) or remat < 0:
    raise ValueError(f'remat must be None or an int >= 0 (steps per recomputed segment; '
                     f'0 or None: off), got {remat!r}')
  return int(remat)


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


def _slice(stacked: Array | None, start: Array | int, length: int) -> Array | None:
  """`stacked[:, start : start + length]` (None passes through)."""
  if stacked is None:
    return None
  return jax.lax.dynamic_slice_in_dim(stacked, start, length, 1)


def _loop(loop, consts, carry, inputs, mask, keep_residuals):
  """The kernel's step over `inputs [B, T, F]` from `carry`: `(final_carry,
  outputs [B, T, H], carries [B, T, ...] or None, residuals [B, T, ...] or None)`.
  Hoisted, the inputs are projected first and the step reads the projection."""
  steps = inputs.shape[1]
  kernel = loop.kernel
  if loop.hoist:
    xs, forward = kernel.project(consts, inputs), kernel.forward_projected
  else:
    xs, forward = inputs, kernel.forward

  def step(carry, t):
    new_carry, y_t, residuals = forward(consts, carry, _at(xs, t), keep_residuals)
    m_t = _at(mask, t)
    if m_t is not None:
      keep = m_t[:, None]                                       # [B, 1]
      new_carry = jax.tree_util.tree_map(
          lambda new, old: jnp.where(keep, new, old), new_carry, carry)
      y_t = jnp.where(keep, y_t, 0)
    return new_carry, (y_t, residuals, new_carry if loop.all_carries else None)

  def body(t, state):
    carry, stacked = state
    carry, per_step = step(carry, t)
    return carry, _put(stacked, per_step, t)

  stacked = _stack_buffers(jax.eval_shape(step, carry, 0)[1], steps)
  carry, (outputs, residuals, carries) = jax.lax.fori_loop(0, steps, body, (carry, stacked),
                                                           unroll=loop.unroll)
  return carry, outputs, carries, residuals


def _prepare(kernel, params, context):
  return kernel.prepare(params) if context is None else kernel.prepare(params, context)


def _forward_loop(loop, params, carry, inputs, mask, keep_residuals, context=None):
  consts = _prepare(loop.kernel, params, context)
  return _loop(loop, consts, carry, inputs, mask, keep_residuals) + (consts,)


def _reverse_loop(loop, consts, d_final, d_outputs, d_carries, mask, residuals, outputs, h0,
                  sums=None):
  """The kernel's reverse step from the last step to the first: `(d_initial_carry,
  dz [B, T, ...])`, given the cotangents of the final carry, the outputs and (or None)
  the stacked carries, and the forward's residuals, outputs and initial hidden state.
  With `sums` (a `ContextScanKernel`'s accumulators): `(d_initial_carry, dz, sums)`."""
  steps = outputs.shape[1]

  def step(d_carry, t, sums=None):
    if d_carries is not None:
      # The carry stacked at t is the carry leaving step t: its cotangent joins d_carry.
      d_carry = jax.tree_util.tree_map(lambda d, d_t: d + _at(d_t, t), d_carry, d_carries)
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
    if sums is None:
      d_prev, dz = loop.kernel.backward(consts, residuals_t, _at(outputs, t), h_prev, d_in,
                                        d_y)
    else:
      # Past the end the cotangents are 0, so the step adds nothing to the sums.
      d_prev, dz, sums = loop.kernel.backward(consts, residuals_t, _at(outputs, t), h_prev,
                                              d_in, d_y, sums)
    if m_t is not None:
      d_prev = jax.tree_util.tree_map(
          lambda through_cell, skipped: jnp.where(keep, through_cell, skipped), d_prev, d_carry)
    return d_prev, dz, sums

  def body(i, state):
    d_carry, dz_stacked, sums = state
    t = steps - 1 - i
    d_carry, dz, sums = step(d_carry, t, sums)
    return d_carry, _put(dz_stacked, dz, t), sums

  dz_example = jax.eval_shape(step, d_final, 0, sums)[1]
  d_carry, dz, sums = jax.lax.fori_loop(
      0, steps, body, (d_final, _stack_buffers(dz_example, steps), sums), unroll=loop.unroll)
  return (d_carry, dz) if sums is None else (d_carry, dz, sums)


def _previous_hidden(h0: Array, outputs: Array) -> Array:
  """`h_{t-1}` for every step, `[B, T, H]`: h0, then the outputs but the last."""
  return jnp.concatenate([h0[:, None], outputs[:, :-1]], axis=1)


def _in_primal_dtypes(d_params: Params, params: Params) -> Params:
  # Cotangents in the primal dtypes (e.g. bfloat16 params with float32 inputs and carry;
  # the carry's is already: the loops keep its dtype).
  return jax.tree_util.tree_map(lambda d, p: d.astype(p.dtype), d_params, params)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _fused_scan(loop, params, carry, inputs, mask, context):
  carry, outputs, carries, _, _ = _forward_loop(loop, params, carry, inputs, mask, False,
                                                context)
  return (carry, outputs, carries) if loop.all_carries else (carry, outputs)


def _fused_scan_fwd(loop, params, carry, inputs, mask, context):
  final, outputs, carries, residuals, consts = _forward_loop(loop, params, carry, inputs, mask,
                                                             True, context)
  h0 = loop.kernel.hidden(carry)
  primal_out = (final, outputs, carries) if loop.all_carries else (final, outputs)
  return primal_out, (params, consts, inputs, mask, h0, outputs, residuals, context)


def _fused_scan_bwd(loop, saved, cotangents):
  params, consts, inputs, mask, h0, outputs, residuals, context = saved
  d_final, d_outputs = cotangents[:2]
  d_carries = cotangents[2] if loop.all_carries else None
  h_prev = lambda: _previous_hidden(h0, outputs)
  if context is None:
    d_carry0, dz = _reverse_loop(loop, consts, d_final, d_outputs, d_carries, mask, residuals,
                                 outputs, h0)
    d_params, d_inputs = loop.kernel.gradients(params, consts, inputs, residuals, h_prev(), dz)
    d_context = None
  else:
    d_carry0, dz, sums = _reverse_loop(loop, consts, d_final, d_outputs, d_carries, mask,
                                       residuals, outputs, h0, loop.kernel.zero_sums(consts))
    d_params, d_inputs, d_context = loop.kernel.gradients(params, consts, inputs, residuals,
                                                          h_prev(), dz, sums)
    d_context = jax.tree_util.tree_map(
        lambda d, c: None if d is None else d.astype(c.dtype), d_context, context,
        is_leaf=lambda d: d is None)
  return (_in_primal_dtypes(d_params, params), d_carry0, d_inputs.astype(inputs.dtype), None,
          d_context)


_fused_scan.defvjp(_fused_scan_fwd, _fused_scan_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _fused_scan_remat(loop, segment, params, carry, inputs, mask):
  """`_fused_scan` keeping only the carry entering each `segment` steps (the last
  segment has `T mod segment` steps when that is not 0)."""
  carry, outputs, carries, _, _ = _forward_loop(loop, params, carry, inputs, mask, False)
  return (carry, outputs, carries) if loop.all_carries else (carry, outputs)


def _segment_starts(steps: int, segment: int) -> tuple[int, int]:
  """`(full, tail)`: the number of whole segments and the length of the last, short one."""
  return divmod(steps, segment)


def _fused_scan_remat_fwd(loop, segment, params, carry, inputs, mask):
  # With symbolic zeros, each argument comes with whether it is differentiated: the input
  # gradient is built in the segment loop, where XLA would keep it even when unused.
  wants_d_inputs = _Static(inputs.perturbed)
  params, carry, inputs, mask = jax.tree_util.tree_map(
      lambda a: a.value, (params, carry, inputs, mask),
      is_leaf=lambda a: isinstance(a, jax.custom_derivatives.CustomVJPPrimal))
  consts = loop.kernel.prepare(params)
  steps = inputs.shape[1]
  full, tail = _segment_starts(steps, segment)

  def run(carry, start, length):
    return _loop(loop, consts, carry, _slice(inputs, start, length), _slice(mask, start, length),
                 False)

  def advance(state, index, start, length):
    carry, starts, outputs, carries = state
    starts = jax.tree_util.tree_map(
        lambda buf, c: jax.lax.dynamic_update_index_in_dim(buf, c, index, 0), starts, carry)
    carry, y, c, _ = run(carry, start, length)
    put = lambda buf, v: jax.lax.dynamic_update_slice_in_dim(buf, v, start, 1)
    return carry, starts, put(outputs, y), jax.tree_util.tree_map(put, carries, c)

  outputs, carries = jax.tree_util.tree_map(     # [B, T, ...] buffers from one step's shapes
      lambda a: jnp.zeros((a.shape[0], steps) + a.shape[2:], a.dtype),
      jax.eval_shape(lambda: run(carry, 0, 1)[1:3]))
  starts = jax.tree_util.tree_map(                # the carry entering each segment: [S, ...]
      lambda a: jnp.zeros((full + (tail > 0),) + a.shape, a.dtype), carry)
  state = jax.lax.fori_loop(
      0, full, lambda s, state: advance(state, s, s * segment, segment),
      (carry, starts, outputs, carries))
  if tail:
    state = advance(state, full, full * segment, tail)
  final, starts, outputs, carries = state
  primal_out = (final, outputs, carries) if loop.all_carries else (final, outputs)
  return primal_out, (params, consts, inputs, mask, starts, wants_d_inputs)


def _fused_scan_remat_bwd(loop, segment, saved, cotangents):
  params, consts, inputs, mask, starts, wants_d_inputs = saved
  cotangents = _instantiate_zeros(cotangents)
  d_final, d_outputs = cotangents[:2]
  d_carries = cotangents[2] if loop.all_carries else None
  without_carries = dataclasses.replace(loop, all_carries=False)
  full, tail = _segment_starts(inputs.shape[1], segment)

  def segment_gradients(state, index, start, length):
    """Runs segment `index` again from its first carry (with residuals), then its reverse
    loop; adds its parameter gradients to the sums and writes its input gradients."""
    d_carry, d_params, d_inputs = state
    first = jax.tree_util.tree_map(lambda a: jax.lax.dynamic_index_in_dim(a, index, 0, False),
                                   starts)
    piece = lambda a: _slice(a, start, length)
    x, m = piece(inputs), piece(mask)
    _, outputs, _, residuals = _loop(without_carries, consts, first, x, m, True)
    h0 = loop.kernel.hidden(first)
    d_carry, dz = _reverse_loop(loop, consts, d_carry, piece(d_outputs),
                                jax.tree_util.tree_map(piece, d_carries), m, residuals,
                                outputs, h0)
    d_params_s, d_x = loop.kernel.gradients(params, consts, x, residuals,
                                            _previous_hidden(h0, outputs), dz)
    d_params = jax.tree_util.tree_map(lambda total, d: total + d.astype(total.dtype), d_params,
                                      d_params_s)
    if d_inputs is not None:
      d_inputs = jax.lax.dynamic_update_slice_in_dim(d_inputs, d_x.astype(d_inputs.dtype),
                                                     start, 1)
    return d_carry, d_params, d_inputs

  # Parameter gradients are summed over segments in at least float32.
  d_params = jax.tree_util.tree_map(
      lambda p: jnp.zeros(p.shape, jnp.promote_types(p.dtype, jnp.float32)), params)
  d_inputs = jnp.zeros(inputs.shape, inputs.dtype) if wants_d_inputs.value else None
  state = (d_final, d_params, d_inputs)
  if tail:
    state = segment_gradients(state, full, full * segment, tail)

  def body(i, state):
    index = full - 1 - i
    return segment_gradients(state, index, index * segment, segment)

  d_carry0, d_params, d_inputs = jax.lax.fori_loop(0, full, body, state)
  return _in_primal_dtypes(d_params, params), d_carry0, d_inputs, None


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class _Static:
  """A Python value carried as pytree structure (no leaves), e.g. among residuals."""
  value: Any


def _instantiate_zeros(cotangents: Any) -> Any:
  is_zero = lambda c: isinstance(c, jax.custom_derivatives.SymbolicZero)
  return jax.tree_util.tree_map(lambda c: jnp.zeros(c.shape, c.dtype) if is_zero(c) else c,
                                cotangents, is_leaf=is_zero)


_fused_scan_remat.defvjp(_fused_scan_remat_fwd, _fused_scan_remat_bwd, symbolic_zeros=True)


def input_gradients(params: Params, inputs: Array, dz: Array) -> tuple[Params, Array]:
  """Gradients of `z_t = x_t W + b` for all steps at once (two large matmuls).

  `inputs [B, T, F]`, `dz [B, T, G]` -> (`{'input_kernel': [F, G], 'bias': [G]}`,
  `d_inputs [B, T, F]`).
  """
  dz2 = dz.reshape(-1, dz.shape[-1])                                  # [B·T, G]
  grads = {'input_kernel': matmul_tn(inputs, dz), 'bias': sum_bt(dz)}
  d_inputs = (dz2 @ params['input_kernel'].T).reshape(inputs.shape)
  return grads, d_inputs


def matmul_tn(a: Array, b: Array) -> Array:
  """`Σ_{b,t} a[b, t]ᵀ b[b, t]` for `a [B, T, K]`, `b [B, T, N]` -> `[K, N]` (one matmul),
  accumulated and returned in float32 at least (a weight gradient sums B·T products:
  bfloat16 accumulation would lose most of them)."""
  return jnp.matmul(a.reshape(-1, a.shape[-1]).T, b.reshape(-1, b.shape[-1]),
                    preferred_element_type=_accumulation_dtype(a, b))


def sum_bt(a: Array) -> Array:
  """`Σ_{b,t} a[b, t]` for `a [B, T, ...]` -> `[...]`, accumulated in float32 at least."""
  return jnp.sum(a, axis=(0, 1), dtype=_accumulation_dtype(a))


def _accumulation_dtype(*arrays: Array) -> Any:
  return jnp.promote_types(jnp.result_type(*arrays), jnp.float32)
