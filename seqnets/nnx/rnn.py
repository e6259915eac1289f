"""`RNN`, `Bidirectional` and `StackedRNN` as Flax NNX modules, with the contract of the
linen layers of the same names (`seqnets.RNN`, ...): lengths, reverse, initial, final and
all carries, `unroll`, `remat`.

The seqnets cells (`cells.FusedCell`) run through `fused_scan` with their linen twin's
kernel, as `seqnets.RNN` runs the linen cells; any other `flax.nnx.RNNCellBase` cell
(`snx.UnitaryRNNCell`, `snx.AttentionCell`, `nnx.LSTMCell`, ...) runs step by step in a
`jax.lax.scan`. With a regulariser of the cell on, or variational dropout, a seqnets cell
runs in the linen layer itself (`seqnets.RNN` over the twin, given the 'dropout' key).
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from seqnets.layers import bidirectional as linen_bidirectional
from seqnets.layers import masking
from seqnets.layers import rnn as linen_rnn
from seqnets.layers.fused_cell import cast_like, promote
from seqnets.layers.fused_scan import check_remat, fused_scan
from seqnets.nnx import attention
from seqnets.nnx import cells
from seqnets.nnx import regularizers

Array = jax.Array
Carry = Any

IMPLEMENTATIONS = ('fused', 'scan')


def _defined_by(cls: type, name: str) -> type:
  """The class in `cls`'s MRO whose own namespace defines `name`."""
  return next(c for c in cls.__mro__ if name in vars(c))


def uses_fused_kernel(cell: nnx.Module) -> bool:
  """Whether `RNN` runs `cell` through `fused_scan`: a `cells.FusedCell` whose step is its
  twin's (a subclass overriding `__call__` alone runs its own step) and whose twin runs
  fused (`FusedCell.runs_fused`)."""
  if not isinstance(cell, cells.FusedCell):
    return False
  cls = type(cell)
  if not issubclass(_defined_by(cls, 'scan_kernel'), _defined_by(cls, '__call__')):
    return False
  return cell.linen_cell.runs_fused()


def initial_carry_for(cell: nnx.Module, step_shape: tuple[int, ...]) -> Carry:
  """`cell.initialize_carry(step_shape, rngs)` for steps on `[B, *feature_dims]`, with a fixed
  key (flax's cells draw from `rngs` only for a random `carry_init`)."""
  return cell.initialize_carry(tuple(step_shape), nnx.Rngs(0))


class RNN(nnx.Module):
  """Scans `cell` over the time axis of `inputs: [B, T, F]` (`[B, T, *feature_dims]`).

  The contract of `seqnets.RNN` (see its docstring):
    * `lengths: [B] int` marks real steps `t < lengths[b]`; past a sequence's end the
      carry is frozen and the output is 0; the final carry is the one after the last
      real step. Concrete lengths must be integers in `[0, T]`, traced ones are clipped.
    * `reverse=True` reads each sequence backwards within its own length; outputs come
      back aligned with the inputs.
    * `initial_carry` defaults to `cell.initialize_carry` (zeros); a given one must have
      its structure, shapes and kind of dtype (ValueError naming `initial_carry`).
    * Returns `outputs [B, T, H]`, or with `return_carry` / `return_all_carries` the tuple
      `([final_carry], [all_carries], outputs)`; all carries are stacked `[B, T, ...]`
      per carry component (frozen past each end, aligned like the outputs).
    * Dtypes as the cells': outputs in the computation dtype, carries in the initial
      carry's, gradients in the dtypes of params, inputs and initial carry.
    * `T = 0` gives outputs `[B, 0, H]` and the initial carry back.

  The seqnets cells run through `fused_scan` (hand-written backward pass: `grad` and `vjp`,
  not `jvp`, which is a TypeError naming `implementation='scan'`); other cells, and every
  cell with `implementation='scan'`, run their `__call__` in a plain `jax.lax.scan`. A
  cell's state other than its `nnx.Param`s and `attention.Memory` (e.g. rng counters) is
  carried through the loop and written back; the memory is a constant of the loop.

  Regularisers and variational dropout (as `seqnets.RNN`): `variational_input_rate`
  drops input features with one mask `[B, *feature_dims]` per sequence,
  `variational_state_rate` the h that enters the recurrent matmul with one `[B, H]` mask
  per sequence (seqnets cells whose step takes masks: Elman, LSTM, GRU). A seqnets cell
  with a regulariser on, or any variational rate, runs in `seqnets.RNN` over the cell's
  twin with the key drawn here, so a call with key k computes what the linen layer's
  `apply(..., deterministic=d, rngs={'dropout': k})` does. For other cells (flax's, an
  `AttentionCell`) the input mask is drawn here (same distribution); a state rate is a
  ValueError. Mode: the call's `deterministic`, else the attribute (`model.eval()` /
  `model.train()` set it), else the cell's `deterministic` (seqnets cells with
  regularisers), else False (training, as `nnx.Dropout`); a `deterministic` given to the
  call or set here also reaches the step of cells whose `__call__` takes it. Key: the
  call's `rngs`, else this layer's stream (forked from `rngs['dropout']` when `rngs` is
  given and a variational rate is on), else the cell's (see `regularizers`).

  Args:
    cell: an NNX cell (`snx.LSTMCell(...)`, or any `flax.nnx.RNNCellBase`).
    reverse / return_carry / return_all_carries: defaults for the call (see above).
    unroll: loop unroll factor.
    remat: None or 0: off; an int k ≥ 1 keeps only the carry entering every k-th step
      for the backward pass and recomputes the steps in between (memory O(T/k + k), see
      `seqnets.RNN`); fused path: `fused_scan(remat=k)`, scan path: an outer scan over
      `jax.checkpoint`-ed k-step scans (masked padding steps when k does not divide T).
    implementation: 'fused' (default; the seqnets cells' kernel) or 'scan'.
    variational_input_rate / variational_state_rate: variational dropout rates (above).
    deterministic: evaluation mode of the regularisers (None: see above).
    rngs: draws this layer's 'dropout' stream (used when a variational rate is on).
  """

  def __init__(self, cell: nnx.Module, *, reverse: bool = False, return_carry: bool = False,
               return_all_carries: bool = False, unroll: int = 1, remat: int | None = None,
               implementation: str = 'fused', variational_input_rate: float = 0.0,
               variational_state_rate: float = 0.0, deterministic: bool | None = None,
               rngs: nnx.Rngs | None = None):
    check_remat(remat)
    if implementation not in IMPLEMENTATIONS:
      raise ValueError(f'RNN implementation={implementation!r}; valid: '
                       f'{", ".join(IMPLEMENTATIONS)}')
    for name, rate in (('variational_input_rate', variational_input_rate),
                       ('variational_state_rate', variational_state_rate)):
      regularizers.check_rate('RNN', name, rate)
    self.cell = cell
    self.reverse = reverse
    self.return_carry = return_carry
    self.return_all_carries = return_all_carries
    self.unroll = unroll
    self.remat = remat
    self.implementation = implementation
    self.variational_input_rate = variational_input_rate
    self.variational_state_rate = variational_state_rate
    self.deterministic = deterministic
    variational = variational_input_rate > 0 or variational_state_rate > 0
    self.rngs = (rngs[regularizers.RNG_STREAM].fork() if variational and rngs is not None
                 else nnx.data(None))

  def __call__(self, inputs: Array, lengths: Array | None = None,
               initial_carry: Carry | None = None, *, reverse: bool | None = None,
               return_carry: bool | None = None, return_all_carries: bool | None = None,
               deterministic: bool | None = None,
               rngs: regularizers.KeySource = None) -> Any:
    """`inputs [B, T, F]`, `lengths [B] int` (optional), `initial_carry`; the keywords
    override the constructor's for this call; `deterministic` and `rngs` are the
    regularisers' mode and key (see the class docstring)."""
    reverse = self.reverse if reverse is None else reverse
    return_carry = self.return_carry if return_carry is None else return_carry
    if return_all_carries is None:
      return_all_carries = self.return_all_carries
    given_mode = self.deterministic if deterministic is None else deterministic
    mode = given_mode
    if mode is None:
      mode = bool(getattr(self.cell, 'deterministic', False))
    variational = self.variational_input_rate > 0 or self.variational_state_rate > 0
    if isinstance(self.cell, cells.LinenCell) and (variational or self.cell.regularized):
      return self._linen_call(inputs, lengths, initial_carry, reverse, return_carry,
                              return_all_carries, mode, rngs)
    axes = linen_rnn.num_feature_axes(self.cell)
    if inputs.ndim != 2 + axes:
      raise ValueError(f'RNN inputs must be {linen_rnn.expected_shape(axes)}, got shape '
                       f'{inputs.shape}')
    batch, steps, *feature_shape = inputs.shape
    lengths = masking.check_lengths(lengths, batch, steps)
    if variational and not mode:
      inputs = self._drop_inputs(inputs, rngs)
    step_shape = (batch, *feature_shape)
    if initial_carry is None:
      carry = initial_carry_for(self.cell, step_shape)
    else:
      expected = jax.eval_shape(lambda: initial_carry_for(self.cell, step_shape))
      linen_rnn.check_carry(initial_carry, expected, self.cell)
      carry = initial_carry

    if steps == 0:
      # One fully masked step keeps the carry and gives the shapes.
      carry, outputs, carries = self._scan(
          carry, jnp.zeros((batch, 1, *feature_shape), inputs.dtype),
          jnp.zeros((batch,), jnp.int32), return_all_carries, given_mode)
      outputs = outputs[:, :0]
      carries = jax.tree_util.tree_map(lambda a: a[:, :0], carries)
    else:
      if reverse:
        inputs = masking.flip_sequences(inputs, lengths)
      carry, outputs, carries = self._scan(carry, inputs, lengths, return_all_carries,
                                           given_mode)
      if reverse:
        flip = lambda a: masking.flip_sequences(a, lengths)
        outputs = flip(outputs)
        carries = jax.tree_util.tree_map(flip, carries)
    results = ((carry,) if return_carry else ()) + ((carries,) if return_all_carries else ())
    return results + (outputs,) if results else outputs

  def set_view(self, deterministic: bool | None = None) -> None:
    """`nnx.view(model, deterministic=...)`: the regularisers' mode, on a copy."""
    if deterministic is not None:
      self.deterministic = deterministic

  def _linen_call(self, inputs: Array, lengths: Array | None, initial_carry: Carry | None,
                  reverse: bool, return_carry: bool, return_all_carries: bool,
                  deterministic: bool, rngs: regularizers.KeySource) -> Any:
    """The call through `seqnets.RNN` over the cell's twin, with its params and a 'dropout'
    key when this call draws masks."""
    cell = self.cell
    layer = linen_rnn.RNN(cell.linen_cell, unroll=self.unroll, remat=self.remat,
                          implementation=self.implementation,
                          variational_input_rate=self.variational_input_rate,
                          variational_state_rate=self.variational_state_rate)
    variational = self.variational_input_rate > 0 or self.variational_state_rate > 0
    keys = {}
    if not deterministic and (variational or cell.random):
      keys = {regularizers.RNG_STREAM: regularizers.dropout_key(
          rngs, self.rngs, getattr(cell, 'rngs', None), what=f'RNN({type(cell).__name__})')}
    return layer.apply({'params': {'cell': cell.linen_params()}}, inputs, lengths,
                       initial_carry, reverse=reverse, return_carry=return_carry,
                       return_all_carries=return_all_carries, deterministic=deterministic,
                       rngs=keys)

  def _drop_inputs(self, inputs: Array, rngs: regularizers.KeySource) -> Array:
    """Variational dropout for cells without a linen twin: the inputs times one mask
    `[B, *feature_dims]` per sequence (a state rate is a ValueError)."""
    if self.variational_state_rate:
      raise ValueError(f'RNN.variational_state_rate needs a seqnets cell whose step takes '
                       f'masks (Elman, LSTM, GRU), got {type(self.cell).__name__} '
                       '(variational_input_rate works with any cell)')
    if not self.variational_input_rate:
      return inputs
    key = regularizers.dropout_key(rngs, self.rngs, what=f'RNN({type(self.cell).__name__})')
    shape = (inputs.shape[0],) + inputs.shape[2:]
    mask = regularizers.keep_mask(key, self.variational_input_rate, shape, inputs.dtype)
    return inputs * mask[:, None]

  def _scan(self, carry: Carry, inputs: Array, lengths: Array | None, all_carries: bool,
            deterministic: bool | None = None) -> tuple[Carry, Array, Carry | None]:
    """`(final_carry, outputs, all_carries or None)` for forward-ordered inputs."""
    mask = None if lengths is None else masking.sequence_mask(lengths, inputs.shape[1])
    if self.implementation == 'fused' and uses_fused_kernel(self.cell):
      results = self._fused(carry, inputs, mask, all_carries)
    else:
      results = self._stepwise(carry, inputs, mask, all_carries, deterministic)
    return results if all_carries else results + (None,)

  def _fused(self, carry: Carry, inputs: Array, mask: Array | None, all_carries: bool):
    given_carry = carry
    params, carry, inputs = promote(self.cell.step_params(inputs.shape[-1]), carry, inputs,
                                   self.cell.dtype)
    if linen_rnn._has_forward_mode_tangent((params, carry, inputs)):
      raise TypeError(
          f'snx.RNN runs {type(self.cell).__name__} through its fused kernel, whose '
          'hand-written backward pass supports reverse-mode autodiff (grad, vjp) only; for '
          "forward mode (jvp, jacfwd) use snx.RNN(cell, implementation='scan')")
    results = fused_scan(self.cell.scan_kernel(), params, carry, inputs, mask, self.unroll,
                         all_carries, self.remat)
    # As in the step: the carry keeps its given dtype, outputs the computed one.
    return ((cast_like(results[0], given_carry), results[1])
            + tuple(cast_like(c, given_carry) for c in results[2:]))

  def _stepwise(self, carry: Carry, inputs: Array, mask: Array | None, all_carries: bool,
                deterministic: bool | None = None):
    steps = inputs.shape[1]
    segment = min(check_remat(self.remat), steps)
    if segment and steps % segment:
      if mask is None:
        mask = jnp.ones(inputs.shape[:2], bool)
      pad = -steps % segment
      inputs, mask = _pad_steps(inputs, pad), _pad_steps(mask, pad)
    graphdef, params, memory, state = nnx.split(self.cell, nnx.Param, attention.Memory, ...)
    kwargs = step_keywords(self.cell, deterministic)

    def step(carry_and_state, x_and_mask):
      carry, state = carry_and_state
      x_t, m_t = x_and_mask                           # [B, *feature_dims], [B] or None
      cell = nnx.merge(graphdef, params, memory, state)
      new_carry, y_t = cell(carry, x_t, **kwargs)
      if m_t is not None:
        rows = lambda a: m_t.reshape(m_t.shape + (1,) * (a.ndim - 1))   # [B, 1, ...]
        new_carry = jax.tree_util.tree_map(lambda new, old: jnp.where(rows(new), new, old),
                                           new_carry, carry)
        y_t = jnp.where(rows(y_t), y_t, 0)
      new_carry = cast_like(new_carry, carry)
      state = nnx.split(cell, nnx.Param, attention.Memory, ...)[3]
      return (new_carry, state), (y_t, new_carry if all_carries else None)

    def scan(carry_and_state, xs):
      return jax.lax.scan(step, carry_and_state, xs, unroll=self.unroll)

    time_major = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), (inputs, mask))
    if not segment:
      (carry, state), ys = scan((carry, state), time_major)
    else:
      # An outer scan over segments [T/k, k, ...] of checkpointed k-step scans: the outer
      # scan keeps only the carry entering each segment.
      split = lambda a: a.reshape((-1, segment) + a.shape[1:])
      (carry, state), ys = jax.lax.scan(jax.checkpoint(scan, prevent_cse=False), (carry, state),
                                        jax.tree_util.tree_map(split, time_major))
      ys = jax.tree_util.tree_map(lambda a: a.reshape((-1,) + a.shape[2:])[:steps], ys)
    nnx.update(self.cell, state)
    outputs, carries = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), ys)
    return (carry, outputs, carries) if all_carries else (carry, outputs)


def step_keywords(cell: nnx.Module, deterministic: bool | None) -> dict[str, bool]:
  """`{'deterministic': ...}` for a cell whose `__call__` takes it, when given; else {}."""
  if deterministic is None:
    return {}
  return ({'deterministic': deterministic}
          if 'deterministic' in inspect.signature(cell.__call__).parameters else {})


def _pad_steps(stacked: Array, pad: int) -> Array:
  """`stacked [B, T, ...]` with `pad` zero (False) steps appended: `[B, T + pad, ...]`."""
  return jnp.pad(stacked, ((0, 0), (0, pad)) + ((0, 0),) * (stacked.ndim - 2))


def call_recurrent(layer: nnx.Module, inputs: Array, lengths: Array | None,
                   initial_carry: Carry | None = None, reverse: bool | None = None,
                   deterministic: bool | None = None) -> tuple[Carry, Array]:
  """Calls a recurrent NNX `layer` on `inputs [B, T, F]`: `(final_carry, outputs)`.

  `layer` is an `snx.RNN`, `snx.Bidirectional`, `snx.StackedRNN` (seqnets' calling
  convention, see `seqnets.layers.rnn.call_recurrent`) or a `flax.nnx.RNN`, made to keep
  seqnets' contract: outputs past each end are 0 and a row of length 0 keeps its initial
  carry. With `reverse=True` the outputs are aligned with the inputs.
  """
  if not isinstance(layer, nnx.RNN):
    return linen_rnn.call_recurrent(layer, inputs, lengths, initial_carry, reverse,
                                    deterministic)
  kwargs = dict(seq_lengths=lengths, return_carry=True, time_major=False)
  if reverse is not None:
    kwargs.update(reverse=reverse, keep_order=True)
  if lengths is not None and initial_carry is None:
    initial_carry = initial_carry_for(layer.cell, inputs[:, 0].shape)
  carry, outputs = layer(inputs, initial_carry=initial_carry, **kwargs)
  if lengths is not None:
    mask = masking.sequence_mask(lengths, inputs.shape[1])
    outputs = jnp.where(mask.reshape(mask.shape + (1,) * (outputs.ndim - 2)), outputs, 0)
    nonempty = jnp.asarray(lengths) > 0
    carry = jax.tree_util.tree_map(
        lambda new, old: jnp.where(nonempty.reshape((-1,) + (1,) * (new.ndim - 1)), new, old),
        carry, initial_carry)
  return carry, outputs


class Bidirectional(nnx.Module):
  """Runs `forward` left to right and `backward` right to left over `inputs [B, T, F]`,
  then merges: `y[b, t] = merge(fwd[b, t], bwd[b, t])`, as `seqnets.Bidirectional`.

  `backward` is called with `reverse=True`: it reads each sequence from its last real step
  and its outputs come back aligned with the forward ones. Layers: `snx.RNN`s or
  `flax.nnx.RNN`s (see `call_recurrent`). `initial_carry` is a pair `(forward_carry,
  backward_carry)`, either may be None. Output `[B, T, H_f + H_b]` for 'concat',
  `[B, T, H]` for 'sum' and 'mul'; with `return_carry`, `((carry_f, carry_b), outputs)`.
  `deterministic` is passed to layers that take it.

  Args:
    forward / backward: the two recurrences (each with its own params).
    merge: 'concat', 'sum' or 'mul'.
    return_carry: also return both final carries.
  """

  def __init__(self, forward: nnx.Module, backward: nnx.Module, *, merge: str = 'concat',
               return_carry: bool = False):
    if merge not in linen_bidirectional.MERGES:
      raise ValueError(f'Bidirectional merge={merge!r}; valid: '
                       f'{sorted(linen_bidirectional.MERGES)}')
    self.forward = forward
    self.backward = backward
    self.merge = merge
    self.return_carry = return_carry

  def __call__(self, inputs: Array, lengths: Array | None = None,
               initial_carry: tuple[Any, Any] | None = None, *,
               return_carry: bool | None = None, deterministic: bool | None = None) -> Any:
    return_carry = self.return_carry if return_carry is None else return_carry
    lengths, (init_f, init_b) = linen_bidirectional.check_call(self.forward, inputs, lengths,
                                                               initial_carry)
    carry_f, out_f = call_recurrent(self.forward, inputs, lengths, init_f, reverse=False,
                                    deterministic=deterministic)
    carry_b, out_b = call_recurrent(self.backward, inputs, lengths, init_b, reverse=True,
                                    deterministic=deterministic)
    outputs = linen_bidirectional.MERGES[self.merge](out_f, out_b)
    return ((carry_f, carry_b), outputs) if return_carry else outputs


class StackedRNN(nnx.Module):
  """Applies `layers` in order to `inputs [B, T, F]`, dropout on the outputs between
  layers only, as `seqnets.StackedRNN`.

  Each layer is an `snx.RNN`, an `snx.Bidirectional` or a `flax.nnx.RNN`. Outputs past each
  end stay 0. `initial_carry` is a sequence of one carry per layer, bottom first (None
  entries: the default); returns the top layer's outputs `[B, T, H]`, or with
  `return_carry` `(tuple of final carries bottom to top, outputs)`.

  The dropout is an `nnx.Dropout` (rate `dropout_rate`, drawing from `rngs`' 'dropout'
  stream): `deterministic` (call argument, else its attribute, which `model.eval()` and
  `model.train()` set) turns it off; it is also passed to layers that take it.

  Args:
    layers: the recurrent layers, bottom first (held as an `nnx.List`: params
      `layers/0/...`, linen's `layers_0/...`).
    dropout_rate: dropout between consecutive layers.
    return_carry: also return every layer's final carry.
    rngs: for the dropout (needed when `dropout_rate > 0` in training).
  """

  def __init__(self, layers: Sequence[nnx.Module], *, dropout_rate: float = 0.0,
               return_carry: bool = False, rngs: nnx.Rngs | None = None):
    self.layers = nnx.List(layers)
    self.dropout = nnx.Dropout(dropout_rate, rngs=rngs)
    self.return_carry = return_carry

  def __call__(self, inputs: Array, lengths: Array | None = None,
               initial_carry: Sequence[Any] | None = None, *, deterministic: bool | None = None,
               return_carry: bool | None = None, rngs: nnx.Rngs | None = None) -> Any:
    return_carry = self.return_carry if return_carry is None else return_carry
    if inputs.ndim != 3:
      raise ValueError(f'StackedRNN inputs must be [batch, time, features], '
                       f'got shape {inputs.shape}')
    lengths = masking.check_lengths(lengths, inputs.shape[0], inputs.shape[1])
    count = len(self.layers)
    if initial_carry is None:
      initial_carry = (None,) * count
    elif not (isinstance(initial_carry, (tuple, list)) and len(initial_carry) == count):
      raise ValueError(f'StackedRNN initial_carry must be a sequence of {count} carries, one '
                       'per layer (bottom first)')
    carries = []
    x = inputs
    for index, (layer, carry) in enumerate(zip(self.layers, initial_carry)):
      if index > 0 and self.dropout.rate > 0:
        x = self.dropout(x, deterministic=deterministic, rngs=rngs)
      carry, x = call_recurrent(layer, x, lengths, carry, deterministic=deterministic)
      carries.append(carry)
    return (tuple(carries), x) if return_carry else x
