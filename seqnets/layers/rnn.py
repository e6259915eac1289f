"""`RNN`: runs a recurrent cell over time in a `jax.lax` loop, length-aware.

Synopsis:
  rnn = sn.RNN(sn.LSTMCell(128))
  y = rnn.apply(params, x, lengths=lengths)             # [B, T, H]
  (c, h), y = sn.RNN(cell, return_carry=True).apply(...) # final carry after the last real step
  (cs, hs), y = sn.RNN(cell, return_all_carries=True).apply(...)  # c_t, h_t: [B, T, H] each
  sn.RNN(cell, fused=False)                             # plain scan: jvp / jacfwd work
  sn.RNN(cell, variational_input_rate=0.2, variational_state_rate=0.2).apply(
      params, x, deterministic=False, rngs={'dropout': key})  # one mask per sequence
  flax.linen.Bidirectional(sn.RNN(a), sn.RNN(b))        # flax's keywords are understood
  sn.RNN(ConvLSTMCell(32)).apply(params, frames)        # [B, T, H, W, C] -> [B, T, H, W, 32]
  sn.RNN(cell, remat=100)                               # T = 10,000 in O(√T) training memory
  sn.RNN(cell, implementation='fused_hoisted')          # X W + b before the loop (GPU/TPU default)
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import cell_regularizers
from seqnets.layers import cudnn_lstm
from seqnets.layers import masking
from seqnets.layers.attention import AttentionCell
from seqnets.layers.fused_cell import FusedCell, cast_like, promote, step_takes_masks
from seqnets.layers.fused_scan import check_remat, fused_scan, hoists_inputs
from seqnets.layers.lstm import LSTMCell
# Importable from here as before the move:
from seqnets.layers.fused_cell import carry_dtype, zero_carry  # noqa: F401
from seqnets.layers.fused_scan import ScanKernel, input_gradients, matmul_tn  # noqa: F401

Array = jax.Array
Carry = Any
Params = dict[str, Array]


def uses_fused_kernel(cell: nn.RNNCellBase, deterministic: bool | None = None) -> bool:
  """Whether `RNN` runs `cell` through `fused_scan`: a `FusedCell` or an `AttentionCell`
  whose `runs_fused(deterministic)` holds (its kernel is its step, regularisers included;
  an `AttentionCell`: around a fused cell without regularisers)."""
  return isinstance(cell, (FusedCell, AttentionCell)) and cell.runs_fused(deterministic)


def num_feature_axes(cell: nn.RNNCellBase) -> int:
  """The cell's `num_feature_axes` (flax's convention: 1 for `[*batch, F]` steps, 3 for
  images `[*batch, H, W, C]`); 1 for a cell that does not say."""
  try:
    return int(cell.num_feature_axes)
  except (AttributeError, NotImplementedError):
    return 1


def expected_shape(axes: int) -> str:
  """How inputs for a cell with `axes` feature axes are shaped, for error messages."""
  if axes == 1:
    return '[batch, time, features]'
  return '[batch, time, ' + ', '.join(f'feature_{i}' for i in range(1, axes + 1)) + ']'


def _has_forward_mode_tangent(tree: Any) -> bool:
  """True when a leaf of `tree` is being differentiated in forward mode (`jvp`, `jacfwd`).

  Looks through `vmap`; forward-over-reverse (a `jvp` of a `grad`) is not
  flagged, since the fused path supports it. Checks nothing when grad itself
  is run through jvp (`jax_use_direct_linearize` off).
  """
  try:
    from jax._src.interpreters import ad, batching
    if not jax.config.jax_use_direct_linearize:
      return False
  except (ImportError, AttributeError):
    return False

  def is_jvp(leaf):
    while isinstance(leaf, batching.BatchTracer):
      leaf = leaf.val
    return isinstance(leaf, ad.JVPTracer)

  return any(is_jvp(leaf) for leaf in jax.tree_util.tree_leaves(tree))


def cudnn_refusal(cell: nn.RNNCellBase, carry: Carry, inputs: Array,
                  masks: dict[str, Array], all_carries: bool,
                  deterministic: bool | None = None) -> str | None:
  """Why `RNN` cannot run this call through cuDNN's LSTM (`cudnn_lstm`), or None when it
  can: a plain `LSTMCell` (no peepholes; regularisers only where its fused kernel is exact,
  no variational state dropout), float32 throughout, no `return_all_carries`, neither
  params nor carry nor inputs under forward-mode autodiff (under `vmap` cuDNN runs once
  per element, `cudnn_lstm.sequential`). `cell` is bound (its params are read)."""
  if type(cell) is not LSTMCell:
    return f'{type(cell).__name__} is not an LSTMCell'
  if cell.use_peepholes:
    return 'LSTMCell.use_peepholes is on'
  if not cell.runs_fused(deterministic) or 'state' in masks:
    return 'a regulariser of the cell or variational state dropout is on'
  dtypes = {jnp.dtype(cell.param_dtype), jnp.result_type(inputs)} | {
      jnp.result_type(leaf) for leaf in jax.tree_util.tree_leaves(carry)}
  if cell.dtype is not None:
    dtypes.add(jnp.dtype(cell.dtype))
  if dtypes != {jnp.dtype(jnp.float32)}:
    return f'cuDNN computes in float32 only, got {sorted(str(d) for d in dtypes)}'
  if all_carries:
    return 'return_all_carries is on'
  values = (cell.cell_params(jnp.shape(inputs)[-1]), carry, inputs, masks)
  if _has_forward_mode_tangent(values):
    return 'forward-mode autodiff (jvp) is not supported by cuDNN'
  return None


def _describe(tree: Any) -> str:
  """`tree` with each leaf written as `dtype[shape]`, e.g. `(float32[2, 4], float32[2, 4])`."""
  def leaf(a):
    return _Unquoted(f'{jnp.result_type(a)}{list(jnp.shape(a))}')
  return repr(jax.tree_util.tree_map(leaf, tree))


class _Unquoted(str):
  def __repr__(self):
    return str(self)


def _dtype_kind(dtype: Any) -> str:
  for kind in (jnp.inexact, jnp.integer, jnp.bool_):
    if jnp.issubdtype(dtype, kind):
      return kind.__name__
  return str(dtype)


def check_carry(given: Carry, expected: Carry, cell: Any, name: str = 'initial_carry') -> None:
  """Raises ValueError naming `name` unless `given` fits `expected` (e.g. from
  `jax.eval_shape(cell.initialize_carry, ...)`): same tree structure, same
  shapes, same kind of dtype (float / int / bool; float widths may differ,
  they follow the cell's dtype rule)."""
  given_leaves, given_tree = jax.tree_util.tree_flatten(given)
  expected_leaves, expected_tree = jax.tree_util.tree_flatten(expected)
  if given_tree != expected_tree:
    problem = 'a different structure'
  elif any(jnp.shape(g) != e.shape for g, e in zip(given_leaves, expected_leaves)):
    problem = 'a different shape'
  elif any(_dtype_kind(jnp.result_type(g)) != _dtype_kind(e.dtype)
           for g, e in zip(given_leaves, expected_leaves)):
    problem = 'a different dtype'
  else:
    return
  raise ValueError(f'{name} has {problem} than {type(cell).__name__}\'s carry: expected '
                   f'{_describe(expected)}, got {_describe(given)}')


IMPLEMENTATIONS = ('fused', 'fused_hoisted', 'fused_in_loop', 'scan', 'cudnn', 'auto')

# The fused kernel's variant per platform (`jax.default_backend()`): True runs its input
# projection hoisted out of the loop (`fused_scan(..., hoist_inputs=True)`), False the
# in-loop step. Platforms not named here (accelerators: 'gpu', 'tpu') hoist; the CPU's
# entry is measured (see `hoisted_by_default`).
HOISTED_BY_PLATFORM = {'cpu': False}
# `RNN.unroll=None`: the loop unroll factor per platform; others (accelerators) get
# ACCELERATOR_UNROLL. On the CPU, unroll 2 and 4 measured no faster (±3 %) and compiled
# longer. On XLA:GPU a while-loop iteration that no command buffer captures waits for its
# loop condition on the host (a copy to the host and a sync per iteration, the GPU idle
# in between); XLA's own auto-unroll only doubles loops that hold collectives, and whether
# command buffers capture (and unroll) a loop depends on its flags and version. 8 steps
# per iteration make those round trips 8× rarer, for 8 copies of a small step in the
# program (a longer compile). A documented choice, not measured here (no GPU):
# `make device-check` times 'fused' with the platform's unroll against unroll 1.
UNROLL_BY_PLATFORM = {'cpu': 1}
ACCELERATOR_UNROLL = 8


def hoisted_by_default(platform: str) -> bool:
  """Whether `implementation='fused'` (and 'auto' off cuDNN) hoists the input projection
  on `platform` (`jax.default_backend()`'s name): `HOISTED_BY_PLATFORM`, True elsewhere.

  Hoisted on 'gpu' and 'tpu': one large input matmul and one `h @ U` per step are the
  few, large kernels those want (not yet measured here: no accelerator). In the loop on
  'cpu', where hoisting measured slower everywhere but the Elman training step (a tie):
  `python -m benchmarks.fused_variants --shapes=a,b,c --reps=10` on the 2-core VM,
  2026-12-06, jax 0.10.2, tuned malloc, load average 2–5, two runs; hoisted ms / in-loop
  ms, the median of paired reps, both runs' values (> 1: in the loop is faster):

    shape (B, T, E, H)    a (32, 128, 128, 256)   b (64, 256, 256, 512)   c (128, 64, 64, 128)
                          train       inference   train       inference   train       inference
    LSTM                  1.08–1.20   1.61–3.36   1.07–1.10   1.24–1.39   1.24–1.30   1.45–2.17
    LSTM, peepholes       1.08–1.21   1.50–2.00   1.06–1.10   1.33        1.22–1.56   1.96–2.82
    GRU                   1.10–1.12   1.62–1.75   1.00–1.03   1.31–1.41   1.15–1.22   1.79–2.03
    GRU, reset_after      1.20–1.26   1.75–2.01   1.06–1.08   1.34–1.56   1.18–1.40   1.83–2.54
    Elman                 0.99–1.01   1.07–1.14   0.96–1.00   1.02–1.24   0.97–1.01   1.08–1.09

  XLA:CPU runs the per-gate `[x_t, h] @ [W_g; U_g]` matmuls of the in-loop step faster
  than it runs a `[B, 4H]` sum sliced into gates, and the hoisted `[B, T, G]` projection
  leaves the cache before the loop reads it back (benchmarks/README.md).
  """
  return HOISTED_BY_PLATFORM.get(platform, True)


def default_unroll(platform: str) -> int:
  """The loop unroll factor `RNN.unroll=None` takes on `platform`."""
  return UNROLL_BY_PLATFORM.get(platform, ACCELERATOR_UNROLL)


def hoists(implementation: str, kernel: Any, platform: str) -> bool:
  """Whether the fused path runs `kernel` hoisted (`fused_scan(hoist_inputs=...)`) for
  `implementation` on `platform`: always for 'fused_hoisted' (a ValueError when the
  kernel has no hoisted variant, `fused_scan.hoists_inputs`), never for 'fused_in_loop',
  else the platform's choice (`hoisted_by_default`) when the kernel has it."""
  if implementation == 'fused_in_loop':
    return False
  if implementation == 'fused_hoisted':
    if not hoists_inputs(kernel):
      raise ValueError(f"RNN implementation='fused_hoisted': {type(kernel).__name__} has no "
                       "hoisted variant (use 'fused' or 'fused_in_loop')")
    return True
  return hoists_inputs(kernel) and hoisted_by_default(platform)


class RNN(nn.Module):
  """Scans `cell` over the time axis of `inputs: [B, T, F]` (or `[B, T, *feature_dims]`).

  A cell with `num_feature_axes = n` (flax's property; 1 when the cell does
  not define it) steps on `[B, *feature_dims]` with `len(feature_dims) = n`,
  e.g. `ConvLSTMCell` (n = 3) on images: inputs `[B, T, H, W, C]`, outputs
  and each carry component `[B, T, H, W, C']`. Everything below holds for
  any n, with `[B, T, H]` read as `[B, T, *out_dims]`; inputs of another rank
  raise a ValueError naming the expected shape.

  Contract:
    * `lengths: [B] int` marks real steps `t < lengths[b]`. Past a sequence's
      end the carry is frozen and the output is 0, so padding never changes
      a result; the final carry is the carry after the last real step.
      Concrete lengths must be integers in `[0, T]` (ValueError otherwise);
      traced ones (under `jit`) cannot be checked and are clipped to `[0, T]`.
    * `reverse=True` reads each sequence backwards *within its own length*
      and returns outputs aligned with the inputs: `outputs[b, t]` has seen
      `x[b, t:lengths[b]]`.
    * `initial_carry` defaults to `cell.initialize_carry` (zeros); a given one
      must have its structure, shapes and kind of dtype (ValueError naming
      `initial_carry` and both structures otherwise).
    * Dtypes, on both paths, as the seqnets cells' `__call__`: outputs in the
      computation dtype, carries in the initial carry's dtype, gradients in
      the dtypes of the params, inputs and initial carry (e.g. bfloat16
      computation with float32 params; see the cells' docstrings).
    * `T = 0` works: outputs `[B, 0, H]`, final carry = initial carry.
    * Returns `outputs: [B, T, H]`; with `return_carry` and/or
      `return_all_carries`, a tuple `([final_carry], [all_carries], outputs)`
      of what was asked, in that order (flax's order for `return_carry`).
      `all_carries` is the carry after every step, each carry component
      stacked over time, `[B, T, H]` (for an LSTM `(c, h)`: `c_t` and
      `h_t`). Positions `t >= lengths[b]` hold the final carry (frozen); with
      `reverse`, `all_carries[b, t]` is the carry after reading
      `x[b, t:lengths[b]]`, aligned like the outputs.

  Speed: the cells that own a scan kernel (`fused_cell.FusedCell`:
  `ElmanCell`, `LSTMCell`, `GRUCell`, `LeakyRNNCell`, `OrthogonalRNNCell`)
  run through `fused_scan.fused_scan`, a loop with a hand-written backward
  pass: the weight gradients are computed in a few large matmuls after the
  reverse loop instead of being accumulated step by step. So does an
  `AttentionCell` around an `ElmanCell`, `LSTMCell` or `GRUCell` without
  regularisers (`attention_scan`: its memory, keys and mask are the kernel's
  context), unless `remat` is set. That path
  supports reverse-mode autodiff (`grad`, `vjp`, also a `jvp` of a `grad`)
  but not forward mode (`jvp`, `jacfwd`) of the layer itself: that raises a
  TypeError naming `fused=False`, which runs the cell's `__call__` step by
  step through `nn.scan` with plain autodiff (same parameters, same results
  up to rounding). A `jvp` of a function already `jit`-ted, and
  `jax.linearize`, can only fail with JAX's own message ("can't apply
  forward-mode autodiff (jvp) to a custom_vjp function"); the cure is the
  same. Any other cell, including a subclass of a seqnets cell that
  overrides `__call__` (see `FusedCell.runs_fused`), runs the plain scan,
  and so does every cell with more than one feature axis (`ConvLSTMCell`:
  its convolutions bring their own gradient, see `conv_lstm.conv_same`).
  `implementation` chooses the loop: 'fused' (default) as just said; 'scan' is
  `fused=False` (which also turns every 'fused' value and 'auto' into the scan); 'cudnn' runs an
  `LSTMCell` through cuDNN's LSTM (`cudnn_lstm`, same parameters; weight drop too) and
  raises a ValueError naming the platform off a GPU, or the reason
  (`cudnn_refusal`: peepholes, a regulariser, a dtype other than float32,
  `return_all_carries`, `jvp`); 'auto' takes cuDNN on a GPU when
  `cudnn_refusal` finds nothing, else 'fused'. Under `vmap` (seeds trained side by
  side) cuDNN runs once per element of the mapped axis.
  The fused kernel has two variants with the same results (to rounding) and the same
  backward pass: in-loop, each step computes `[x_t, h] @ [W_g; U_g]` per gate (tuned on
  XLA:CPU), and hoisted, the input projection `X W + b` of all steps is one large
  matmul before the loop and each step computes only `h @ U` (one `[B, H] @ [H, G]`
  matmul for all gates) and the gate maths, the fewer, larger kernels per step that
  GPUs and TPUs want. 'fused' (and 'auto' off cuDNN) picks the variant per platform
  (`hoisted_by_default`): hoisted on 'gpu' and 'tpu'; in-loop on 'cpu', where hoisting
  measured 1.0–1.6× slower training and 1.0–3.4× slower inference (Elman: a tie in
  training).
  'fused_hoisted' and 'fused_in_loop' force one (the LSTM, GRU, Elman, leaky and
  orthogonal cells have both; 'fused_hoisted' is a ValueError for a kernel without
  `project`). The platform is `jax.default_backend()`.
  `make bench` (benchmarks/rnn_bench.py) measures the cells against
  `flax.linen.RNN` and PyTorch; benchmarks/conv_lstm_bench.py the ConvLSTM.

  Memory: training keeps every step's residuals for the backward pass, O(T)
  (for an LSTM 6 `[B, H]` arrays a step: i, f, g, o, c_{t-1} and h_t).
  `remat = k` keeps only the carry entering each segment of k steps and
  recomputes a segment's steps when the backward pass reaches it: memory
  O(T/k + k), least at k ≈ √T (T = 10,000, k = 100: ~100 carries and one
  100-step segment instead of 10,000 steps), for one forward pass more.
  Outputs and gradients are those without remat, to rounding. On the fused
  path `fused_scan` walks the segments itself; the plain scan is an outer
  scan over segments of `jax.checkpoint`-ed k-step scans. When k does not
  divide T, the fused kernel's last segment is shorter and the plain scan pads
  masked steps. `seqnets.analysis.memory.rnn_activation_bytes` gives the
  bytes (benchmarks/remat_memory.py compares them with XLA's); cuDNN has no
  remat ('auto' keeps the fused kernel, 'cudnn' raises a ValueError).

  Regularisers: variational dropout (Gal & Ghahramani 2016) is this layer's,
  since it owns the sequence: one mask per sequence on the inputs,
  `x̃_t = m_x ⊙ x_t` (applied before the loop, so any cell and the fused kernel
  take it), and one on the state, `h_{t-1}` replaced by `m_h ⊙ h_{t-1}` where
  it enters the recurrent matmul (cells whose step takes masks,
  `FusedCell.takes_masks`; the carry itself is not masked),
  m ~ Bernoulli(1 − rate) / (1 − rate), the same at every step. The
  cells' own (update dropout, zoneout, weight drop, layer norm) are their
  attributes; the weight-drop mask is drawn here once per call. Masks come
  from the 'dropout' rng stream; those drawn here are sown into
  'intermediates' as `input_mask`, `state_mask`, `recurrent_kernel_mask`,
  the cells' per-step ones as `cell/<name>` stacked `[T, ...]`.
  `deterministic` (attribute or call argument) is passed to the cell when given
  and its step takes it (`fused_cell.step_takes_masks`).
  The input mask is `[B, *feature_dims]` (one per sequence, e.g. per pixel
  and channel for images).

  Drop-in for `flax.linen.RNN` inside `flax.linen.Bidirectional`: the call
  also takes flax's keywords `seq_lengths` (= `lengths`), `init_key` (key
  for `cell.initialize_carry`), `time_major` (inputs and outputs `[T, B,
  ...]`) and `keep_order` (None or True: outputs aligned with the inputs;
  False with `reverse`: in reading order, as flax's default).

  Attributes:
    cell: any `flax.linen.RNNCellBase` (any `num_feature_axes`).
    reverse: process right to left (see above).
    return_carry: also return the final carry.
    unroll: loop unroll factor; None (default): per platform, `default_unroll` (1 on
      the CPU, 8 on accelerators: not yet measured there).
    fused: run the seqnets cells through `fused_scan` (default); False runs
      every cell through a plain scan (forward-mode autodiff works).
    implementation: 'fused', 'fused_hoisted', 'fused_in_loop', 'scan', 'cudnn' or
      'auto' (see above).
    return_all_carries: also return the carry after every step (see above).
    variational_input_rate / variational_state_rate: variational dropout rates.
    deterministic: evaluation mode for the regularisers (or pass it to the call).
    remat: None or 0 (default): keep every step's residuals for the backward
      pass; an int k ≥ 1: keep the carry every k steps and recompute the steps
      in between (see Memory above). Anything else is a ValueError naming `remat`.
      Per-step values the cell sows into 'intermediates' (on the plain scan) are
      then stacked `[⌈T/k⌉, k, ...]`, padding steps included, instead of `[T, ...]`.
  """

  cell: nn.RNNCellBase
  reverse: bool = False
  return_carry: bool = False
  unroll: int | None = None
  fused: bool = True
  return_all_carries: bool = False
  variational_input_rate: float = 0.0
  variational_state_rate: float = 0.0
  deterministic: bool | None = None
  implementation: str = 'fused'
  remat: int | None = None

  @nn.compact
  def __call__(
      self,
      inputs: Array,
      lengths: Array | None = None,
      initial_carry: Carry | None = None,
      *,
      reverse: bool | None = None,
      return_carry: bool | None = None,
      return_all_carries: bool | None = None,
      seq_lengths: Array | None = None,
      init_key: Array | None = None,
      time_major: bool | None = None,
      keep_order: bool | None = None,
      deterministic: bool | None = None,
  ) -> Any:
    """Args: `inputs [B, T, F]` (`[B, T, *feature_dims]`), `lengths [B] int` (optional),
    `initial_carry`.

    `reverse` / `return_carry` / `return_all_carries` override the attributes
    for this call (used by `Bidirectional`); `deterministic` is the regularisers'
    mode (see the class docstring); the other keywords are flax's.
    """
    if deterministic is None:
      deterministic = self.deterministic
    elif self.deterministic is not None:
      nn.merge_param('deterministic', self.deterministic, deterministic)   # raises: given twice
    check_remat(self.remat)
    reverse = self.reverse if reverse is None else reverse
    return_carry = self.return_carry if return_carry is None else return_carry
    if return_all_carries is None:
      return_all_carries = self.return_all_carries
    name = 'lengths'
    if seq_lengths is not None:
      if lengths is not None:
        raise ValueError('RNN takes lengths or seq_lengths (its flax name), not both')
      lengths, name = seq_lengths, 'seq_lengths'
    axes = num_feature_axes(self.cell)
    if inputs.ndim != 2 + axes:
      axes_note = '' if axes == 1 else (f' ({type(self.cell).__name__} has num_feature_axes = '
                                        f'{axes})')
      raise ValueError(f'RNN inputs must be {expected_shape(axes)}{axes_note}, got shape '
                       f'{inputs.shape}')
    if time_major:
      inputs = jnp.swapaxes(inputs, 0, 1)
    batch, steps, *feature_shape = inputs.shape
    lengths = masking.check_lengths(lengths, batch, steps, name)

    step_shape = (batch, *feature_shape)
    key = jax.random.key(0) if init_key is None else init_key
    if initial_carry is None:
      carry = self.cell.initialize_carry(key, step_shape)
    else:
      expected = jax.eval_shape(lambda: self.cell.initialize_carry(key, step_shape))
      check_carry(initial_carry, expected, self.cell)
      carry = initial_carry

    if steps == 0:
      # One fully masked step declares the params, keeps the carry and gives the shapes.
      carry, outputs, carries = self._scan(carry, jnp.zeros((batch, 1, *feature_shape),
                                                            inputs.dtype),
                                           jnp.zeros((batch,), jnp.int32), return_all_carries,
                                           deterministic)
      outputs = outputs[:, :0]
      carries = jax.tree_util.tree_map(lambda a: a[:, :0], carries)
    else:
      if reverse:
        inputs = masking.flip_sequences(inputs, lengths)
      carry, outputs, carries = self._scan(carry, inputs, lengths, return_all_carries,
                                           deterministic)
      if reverse and keep_order in (None, True):
        flip = lambda a: masking.flip_sequences(a, lengths)
        outputs = flip(outputs)
        carries = jax.tree_util.tree_map(flip, carries)
    if time_major:
      outputs = jnp.swapaxes(outputs, 0, 1)
      carries = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), carries)

    results = ((carry,) if return_carry else ()) + ((carries,) if return_all_carries else ())
    return results + (outputs,) if results else outputs

  def _scan(self, carry: Carry, inputs: Array, lengths: Array | None,
            all_carries: bool, deterministic: bool | None = None
            ) -> tuple[Carry, Array, Carry | None]:
    """`(final_carry, outputs, all_carries or None)` for forward-ordered inputs."""
    masks, inputs = self._sequence_masks(carry, inputs, deterministic)
    if self._uses_cudnn(carry, inputs, masks, all_carries, deterministic):
      results = self._cudnn(carry, inputs, lengths, masks)
    elif (self.fused and self.implementation != 'scan' and 'state' not in masks
          and uses_fused_kernel(self.cell, deterministic)
          and not (isinstance(self.cell, AttentionCell) and check_remat(self.remat))):
      results = self._fused(carry, inputs, lengths, all_carries, masks)
    else:
      results = self._stepwise(carry, inputs, lengths, all_carries, deterministic, masks)
    return results if all_carries else results + (None,)

  def _uses_cudnn(self, carry: Carry, inputs: Array, masks: dict[str, Array],
                  all_carries: bool, deterministic: bool | None) -> bool:
    """Whether `implementation` runs this call through cuDNN (ValueError for 'cudnn' when
    it cannot, naming the platform or the reason)."""
    if self.implementation not in IMPLEMENTATIONS:
      raise ValueError(f'RNN implementation={self.implementation!r}; valid: '
                       f'{", ".join(IMPLEMENTATIONS)}')
    if not self.fused and self.implementation == 'cudnn':
      raise ValueError("RNN fused=False runs the plain scan; implementation='cudnn' asks for "
                       'another loop')
    if self.implementation not in ('cudnn', 'auto') or not self.fused:
      return False
    if check_remat(self.remat):
      if self.implementation == 'cudnn':
        raise ValueError(f"RNN implementation='cudnn' keeps every step for the backward pass; "
                         f'remat={self.remat} asks for the fused kernel or the scan')
      return False
    platform = jax.default_backend()
    if platform != 'gpu':
      if self.implementation == 'cudnn':
        raise ValueError(f"RNN implementation='cudnn' needs a GPU; the platform is {platform!r}")
      return False
    refusal = cudnn_refusal(self.cell, carry, inputs, masks, all_carries, deterministic)
    if refusal and self.implementation == 'cudnn':
      raise ValueError(f"RNN implementation='cudnn' cannot run this call: {refusal}")
    return refusal is None

  def _cudnn(self, carry: Carry, inputs: Array, lengths: Array | None,
             masks: dict[str, Array]) -> tuple[Carry, Array]:
    params = dict(self.cell.cell_params(inputs.shape[-1]))
    if 'recurrent_kernel' in masks:                     # weight drop: M ⊙ U, as the fused path
      params['recurrent_kernel'] = params['recurrent_kernel'] * masks['recurrent_kernel']
    final, outputs = cudnn_lstm.lstm({'cell': params}, inputs, lengths, carry, platform='gpu')
    return cast_like(final, carry), outputs

  def _sequence_masks(self, carry: Carry, inputs: Array,
                      deterministic: bool | None) -> tuple[dict[str, Array], Array]:
    """The masks drawn once per sequence (see the class docstring) and the inputs
    with the variational input mask applied."""
    cell_regularizers.check_rates(self, ('variational_input_rate', 'variational_state_rate'))
    masks = dict(self.cell.sequence_masks(deterministic)) if step_takes_masks(self.cell) else {}
    if 'recurrent_kernel' in masks:
      self.sow('intermediates', 'recurrent_kernel_mask', masks['recurrent_kernel'])
    if not (self.variational_input_rate or self.variational_state_rate):
      return masks, inputs
    if deterministic is None:
      raise ValueError('sn.RNN with variational dropout needs deterministic (call argument or '
                       'attribute)')
    if deterministic:
      return masks, inputs
    if self.variational_state_rate:
      if not (isinstance(self.cell, FusedCell) and self.cell.takes_masks()):
        raise ValueError(f'RNN.variational_state_rate needs a seqnets cell (a step taking masks=), '
                         f'got {type(self.cell).__name__} (variational_input_rate works with any '
                         'cell)')
      h = self.cell.scan_kernel().hidden(carry)
      masks['state'] = cell_regularizers.keep_mask(self, self.variational_state_rate, h.shape,
                                                   jnp.result_type(h), 'state_mask')
    if self.variational_input_rate:
      shape = (inputs.shape[0],) + inputs.shape[2:]                        # [B, *feature_dims]
      m_x = cell_regularizers.keep_mask(self, self.variational_input_rate, shape, inputs.dtype,
                                        'input_mask')
      inputs = inputs * m_x[:, None]
    return masks, inputs

  def _fused(self, carry: Carry, inputs: Array, lengths: Array | None, all_carries: bool,
             masks: dict[str, Array] | None = None):
    mask = None if lengths is None else masking.sequence_mask(lengths, inputs.shape[1])
    given_carry = carry
    if isinstance(self.cell, AttentionCell):
      # The memory, keys and mask are the kernel's context, differentiated like the params.
      params, context = self.cell.fused_arguments(inputs.shape[-1])
      arrays = {'params': params, 'memory': context['memory'], 'keys': context['keys']}
      arrays, carry, inputs = promote(arrays, carry, inputs, self.cell.cell.dtype)
      params = arrays.pop('params')
      context = dict(arrays, mask=context['mask'])
    else:
      params, context = self.cell.cell_params(inputs.shape[-1]), None
      params, carry, inputs = promote(params, carry, inputs, self.cell.dtype)  # as the step
    if masks and 'recurrent_kernel' in masks:           # weight drop: the kernel runs on M ⊙ U
      u = params['recurrent_kernel']
      params = dict(params, recurrent_kernel=u * masks['recurrent_kernel'].astype(u.dtype))
    if _has_forward_mode_tangent((params, carry, inputs, context)):
      raise TypeError(
          f'sn.RNN runs {type(self.cell).__name__} through its fused kernel, whose hand-written '
          'backward pass supports reverse-mode autodiff (grad, vjp) only; for forward mode '
          '(jvp, jacfwd) use sn.RNN(cell, fused=False), a plain scan with the same parameters')
    # A jvp of a jit-ted apply (or jax.linearize) fails below with JAX's own message;
    # the cure is RNN(..., fused=False) too.
    kernel, platform = self.cell.scan_kernel(), jax.default_backend()
    with_context = {} if context is None else {'context': context}
    results = fused_scan(kernel, params, carry, inputs, mask, self._unroll(), all_carries,
                         self.remat, hoists(self.implementation, kernel, platform),
                         **with_context)
    # As in the step: the carry keeps its given dtype, outputs the computed one.
    return ((cast_like(results[0], given_carry), results[1])
            + tuple(cast_like(c, given_carry) for c in results[2:]))

  def _unroll(self) -> int:
    return default_unroll(jax.default_backend()) if self.unroll is None else self.unroll

  def _stepwise(self, carry: Carry, inputs: Array, lengths: Array | None, all_carries: bool,
                deterministic: bool | None = None, masks: dict[str, Array] | None = None):
    def call(cell, carry, x_t, masks):
      if not step_takes_masks(self.cell):
        return cell(carry, x_t)
      kwargs = {} if deterministic is None else dict(deterministic=deterministic)
      return cell(carry, x_t, masks=masks, **kwargs)

    steps = inputs.shape[1]
    mask = None if lengths is None else masking.sequence_mask(lengths, steps)
    segment = min(check_remat(self.remat), steps)
    if segment and steps % segment:
      if mask is None:
        mask = jnp.ones(inputs.shape[:2], bool)
      inputs, mask = _pad_steps(inputs, -steps % segment), _pad_steps(mask, -steps % segment)

    if mask is None:
      def step(cell, carry, x_t, masks):
        new_carry, y_t = call(cell, carry, x_t, masks)
        new_carry = cast_like(new_carry, carry)
        return new_carry, ((y_t, new_carry) if all_carries else y_t)
      xs = inputs
    else:
      def step(cell, carry, x_and_mask, masks):
        x_t, m_t = x_and_mask                        # [B, *feature_dims], [B]
        new_carry, y_t = call(cell, carry, x_t, masks)
        rows = lambda a: m_t.reshape(m_t.shape + (1,) * (a.ndim - 1))   # [B, 1, ...]
        keep = lambda new, old: jnp.where(rows(new), new, old)
        new_carry = cast_like(jax.tree_util.tree_map(keep, new_carry, carry), carry)
        y_t = jnp.where(rows(y_t), y_t, 0)
        return new_carry, ((y_t, new_carry) if all_carries else y_t)
      xs = (inputs, mask)

    scan = functools.partial(
        nn.scan,
        variable_broadcast='params',
        variable_axes={'intermediates': 0},            # per-step masks sown by the cell: [T, ...]
        split_rngs={'params': False, cell_regularizers.RNG_STREAM: True},
        in_axes=(1, nn.broadcast),
        out_axes=1)
    if not segment:
      carry, ys = scan(step, unroll=self._unroll())(self.cell, carry, xs, masks or {})
    else:
      # An outer scan over the segments, time-major [T/k, k, B, ...]; each segment's k-step
      # scan is checkpointed, so the outer scan keeps only the carry entering each segment.
      time_major = dict(in_axes=(0, nn.broadcast), out_axes=0)
      segment_scan = nn.remat(scan(step, unroll=self._unroll(), **time_major),
                              prevent_cse=False)
      split = lambda a: jnp.moveaxis(a, 1, 0).reshape((-1, segment) + a.shape[:1] + a.shape[2:])
      carry, ys = scan(segment_scan, **time_major)(self.cell, carry,
                                                   jax.tree_util.tree_map(split, xs), masks or {})
      ys = jax.tree_util.tree_map(
          lambda a: jnp.moveaxis(a.reshape((-1,) + a.shape[2:]), 0, 1)[:, :steps], ys)
    if all_carries:
      outputs, carries = ys
      return carry, outputs, carries
    return carry, ys


def _pad_steps(stacked: Array, pad: int) -> Array:
  """`stacked [B, T, ...]` with `pad` zero (False) steps appended: `[B, T + pad, ...]`."""
  return jnp.pad(stacked, ((0, 0), (0, pad)) + ((0, 0),) * (stacked.ndim - 2))


def call_recurrent(layer: nn.Module, inputs: Array, lengths: Array | None,
                   initial_carry: Carry | None = None,
                   reverse: bool | None = None,
                   deterministic: bool | None = None) -> tuple[Carry, Array]:
  """Calls a recurrent `layer` on `inputs [B, T, *feature_dims]`; returns `(final_carry,
  outputs)`.

  Two calling conventions are understood, told apart by the layer's
  signature: seqnets' (`lengths=`, `reverse=`, `return_carry=`,
  `initial_carry=`: `RNN`, `Bidirectional`, `StackedRNN`) and
  `flax.linen.RNN`'s (`seq_lengths=`, `keep_order=`, `time_major=`). A
  flax-style layer is made to keep this module's contract: outputs past each
  end are zeroed, and a row of length 0 keeps its initial carry (flax would
  return the carry after the padding). `reverse`, `initial_carry` and
  `deterministic` are passed only when given (`deterministic` only to layers
  that take it: a flax.linen.RNN's cells need it as their attribute); with
  `reverse=True` the outputs are aligned with the inputs.
  """
  parameters = inspect.signature(layer.__call__).parameters
  if 'lengths' in parameters:
    kwargs = dict(lengths=lengths, return_carry=True)
    if 'return_all_carries' in parameters:
      kwargs['return_all_carries'] = False
    if reverse is not None:
      kwargs['reverse'] = reverse
    if initial_carry is not None:
      kwargs['initial_carry'] = initial_carry
    if deterministic is not None and 'deterministic' in parameters:
      kwargs['deterministic'] = deterministic
    return layer(inputs, **kwargs)
  if 'seq_lengths' not in parameters:
    raise TypeError(f'{type(layer).__name__}.__call__ takes neither lengths= (seqnets layers) '
                    'nor seq_lengths= (flax.linen.RNN)')
  kwargs = dict(seq_lengths=lengths, return_carry=True, time_major=False)
  if reverse is not None:
    kwargs.update(reverse=reverse, keep_order=True)
  cell = getattr(layer, 'cell', None)
  if lengths is not None and initial_carry is None and hasattr(cell, 'initialize_carry'):
    initial_carry = cell.initialize_carry(jax.random.key(0), inputs[:, 0].shape)
  carry, outputs = layer(inputs, initial_carry=initial_carry, **kwargs)
  if lengths is not None:
    mask = masking.sequence_mask(lengths, inputs.shape[1])
    outputs = jnp.where(mask.reshape(mask.shape + (1,) * (outputs.ndim - 2)), outputs, 0)
    if initial_carry is not None:
      nonempty = jnp.asarray(lengths) > 0
      carry = jax.tree_util.tree_map(
          lambda new, old: jnp.where(nonempty.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
          carry, initial_carry)
  return carry, outputs
