"""`FusedCell`: the base of the recurrent cells that own a scan kernel (`ElmanCell`,
`LSTMCell`, `GRUCell`, `LeakyRNNCell`, `OrthogonalRNNCell`), which `sn.RNN` runs through
`fused_scan.fused_scan`; and the dtype rule their step and the fused path share."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import cell_regularizers
from seqnets.layers import fused_scan
from seqnets.layers import initializers

Array = jax.Array
Carry = Any
Params = dict[str, Array]


class FusedCell(nn.RNNCellBase):
  """A cell whose step is its scan kernel's `forward`; holds that step (`__call__`).

  A subclass provides:
    features          hidden size H, and `dtype` (computation dtype; None: promoted from
                      inputs, carry and params) and `param_dtype`, as fields.
    cell_params(F)    (`nn.compact`) declares the parameters for inputs `[*batch, F]` and
                      returns them by name (names, shapes and initialisers are what
                      checkpoints hold); it may add values derived from them.
    scan_kernel()     (`nn.nowrap`) its `fused_scan.ScanKernel`: `prepare(params)`, run
                      once per sequence (e.g. per-gate `[W_g; U_g]` kernels `[F + H, H]`);
                      `forward`, the step on `x_t [B, F]`; `backward`, the reverse step,
                      and `gradients`, the parameter and input gradients of all `[B, T, ...]`
                      steps at once: together the custom backward pass. Optionally
                      also `project` and `forward_projected`, the step with its input
                      projection hoisted out of the loop (`fused_scan.HoistedScanKernel`).
    initialize_carry  only when the carry is not h `[*batch, H]` (the default: zeros in
                      `carry_dtype`); the kernel's `hidden(carry)` is h, and the step's
                      output is h_t `[*batch, H]`.
  A cell with in-step regularisers (`cell_regularizers`) derives from `RegularizedCell`
  (their fields, and `has_regularizers = True`) and provides
  `_regularized_step(params, carry, x, deterministic, masks) -> (new_carry, y_t)` (plain
  autodiff) and `sequence_masks(deterministic)`.

  `__call__` runs `forward` on `prepare(params)`, as `fused_scan` does at every step, or
  `_regularized_step` while a regulariser is on or `masks` are given. Dtypes, there and
  in `sn.RNN`'s fused path: params, carry and inputs are promoted to one dtype
  (`promote`); the new carry is cast back to the given carry's dtype (`cast_like`); the
  output stays in the computation dtype. The carry keeps the dtype it is given (each step
  rounds the new carry to it; an LSTM's c and h each their own); `initialize_carry` makes
  it in `dtype`, or `param_dtype` when `dtype` is None. So `dtype=jnp.bfloat16,
  param_dtype=jnp.float32` gives float32 parameters (narrower ones are initialised in
  float32 and rounded, `initializers.in_float32`) with bfloat16 matmuls, carry and
  outputs, in `sn.RNN` and `flax.linen.RNN` alike.

  `sn.RNN` runs the cell through `fused_scan` when `runs_fused(deterministic)`, and passes
  `deterministic` and the masks it draws to the step when `takes_masks()`.
  """

  has_regularizers = False

  def cell_params(self, num_features: int) -> Params:
    """Declares (at init) and returns the parameters for `F = num_features` inputs."""
    raise NotImplementedError(f'{type(self).__name__} must define cell_params')

  @nn.nowrap
  def scan_kernel(self) -> fused_scan.ScanKernel:
    """Step, reverse step and gradients for `sn.RNN` (see `fused_scan.fused_scan`)."""
    raise NotImplementedError(f'{type(self).__name__} must define scan_kernel')

  def __call__(self, carry: Carry, inputs: Array, *, deterministic: bool | None = None,
               masks: dict[str, Array] | None = None) -> tuple[Carry, Array]:
    """One step. `carry` (h `[..., H]`, or the cell's tuple), `inputs: [..., F]` ->
    `(new_carry, h_t [..., H])`; `deterministic` and `masks` reach the regularised step."""
    params, carry_in, inputs = promote(self.cell_params(inputs.shape[-1]), carry, inputs,
                                       self.dtype)
    if self.has_regularizers and (masks or cell_regularizers.is_active(self)):
      new_carry, y = self._regularized_step(params, carry_in, inputs, deterministic, masks)
    else:
      kernel = self.scan_kernel()
      new_carry, y, _ = kernel.forward(kernel.prepare(params), carry_in, inputs, False)
    return cast_like(new_carry, carry), y

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Carry:
    """Zeros `[*batch, H]` in the carry dtype for inputs of shape `[*batch, F]`."""
    del rng
    return zero_carry(self, input_shape)

  @property
  def num_feature_axes(self) -> int:
    return 1

  def sequence_masks(self, deterministic: bool | None = None) -> dict[str, Array]:
    """Masks drawn once per sequence (by `sn.RNN`, which passes them to every step as
    `masks`): none without regularisers."""
    del deterministic
    return {}

  @nn.nowrap
  def kernel_is_exact(self, deterministic: bool | None = None) -> bool:
    """Whether `scan_kernel()` computes this step, regularisers included (see
    `cell_regularizers.kernel_is_exact`)."""
    return not self.has_regularizers or cell_regularizers.kernel_is_exact(self, deterministic)

  @nn.nowrap
  def runs_fused(self, deterministic: bool | None = None) -> bool:
    """Whether `sn.RNN` may run this cell through `fused_scan`.

    Only when the kernel describes the cell's own step: `scan_kernel` must be
    defined by the class that defines `__call__` or by a subclass of it. A
    subclass that overrides `__call__` alone has a step the kernel does not
    know, so `sn.RNN` runs that `__call__` through a plain scan. With
    regularisers on, only when `kernel_is_exact(deterministic)`: weight drop
    always (the kernel gets `M ⊙ U` as U), dropout of the update in
    evaluation only (the identity), zoneout and layer norm never.
    """
    cls = type(self)
    if not issubclass(_defined_by(cls, 'scan_kernel'), _defined_by(cls, '__call__')):
      return False
    return self.kernel_is_exact(deterministic)

  @nn.nowrap
  def takes_masks(self) -> bool:
    """Whether the step takes `deterministic=` and `masks=` from `sn.RNN`: a cell with
    regularisers whose `__call__` is this class's."""
    return self.has_regularizers and _defined_by(type(self), '__call__') is FusedCell


class RegularizedCell(FusedCell):
  """A `FusedCell` with the in-step regularisers of `cell_regularizers` (`ElmanCell`,
  `GRUCell`, `LSTMCell`); their fields are keyword-only, after the cell's own."""

  update_dropout_rate: float = dataclasses.field(default=0.0, kw_only=True)
  zoneout_rate: float = dataclasses.field(default=0.0, kw_only=True)
  weight_drop_rate: float = dataclasses.field(default=0.0, kw_only=True)
  layer_norm: bool = dataclasses.field(default=False, kw_only=True)
  deterministic: bool | None = dataclasses.field(default=None, kw_only=True)

  has_regularizers = True
  gates = 1     # G: the recurrent kernel is `[H, G·H]`

  def sequence_masks(self, deterministic: bool | None = None) -> dict[str, Array]:
    """Masks drawn once per sequence (by `sn.RNN`): the weight-drop M `[H, G·H]`, or none."""
    return cell_regularizers.recurrent_kernel_mask(
        self, (self.features, self.gates * self.features), deterministic)


def affine_params(cell: nn.Module, num_features: int, gates: int,
                  bias_init: Any = None) -> Params:
  """Declares `input_kernel [F, G·H]`, `recurrent_kernel [H, G·H]` and `bias [G·H]` with the
  cell's `kernel_init`, `recurrent_kernel_init` and `bias_init` (the `bias_init` argument
  instead when given), made in float32 and stored in `param_dtype`
  (`initializers.in_float32`); call it in the cell's compact `cell_params`."""
  width = gates * cell.features
  declare = lambda name, init, shape: cell.param(
      name, initializers.in_float32(init), shape, cell.param_dtype)
  return {
      'input_kernel': declare('input_kernel', cell.kernel_init, (num_features, width)),
      'recurrent_kernel': declare('recurrent_kernel', cell.recurrent_kernel_init,
                                  (cell.features, width)),
      'bias': declare('bias', cell.bias_init if bias_init is None else bias_init, (width,)),
  }


def _defined_by(cls: type, name: str) -> type:
  """The class in `cls`'s MRO whose own namespace defines `name`."""
  return next(c for c in cls.__mro__ if name in vars(c))


def step_takes_masks(cell: nn.RNNCellBase) -> bool:
  """Whether `cell`'s step takes `deterministic=` and `masks=`: a `FusedCell` says
  (`takes_masks`); another cell does when it defines `sequence_masks` (`AttentionCell`)."""
  if isinstance(cell, FusedCell):
    return cell.takes_masks()
  return hasattr(cell, 'sequence_masks')


def promote(params: Params, carry: Carry, inputs: Array,
            dtype: Any) -> tuple[Params, Carry, Array]:
  """`(params, carry, inputs)` in one computation dtype: `dtype`, or for None the
  promoted dtype of them all (`nn.dtypes.promote_dtype`)."""
  leaves, treedef = jax.tree_util.tree_flatten((params, carry, inputs))
  leaves = nn.dtypes.promote_dtype(*leaves, dtype=dtype)
  return jax.tree_util.tree_unflatten(treedef, leaves)


def cast_like(new_carry: Carry, given: Carry) -> Carry:
  """`new_carry` with each leaf in the dtype of the same leaf of `given` (the carry keeps
  the dtype it was given, as a scan needs)."""
  leaves, treedef = jax.tree_util.tree_flatten(new_carry)
  return jax.tree_util.tree_unflatten(
      treedef, [new.astype(jnp.result_type(old))
                for new, old in zip(leaves, jax.tree_util.tree_leaves(given))])


def carry_dtype(cell: nn.RNNCellBase) -> Any:
  """The dtype a cell's carry starts in: its computation dtype, else its parameters'."""
  return cell.param_dtype if cell.dtype is None else cell.dtype


def zero_carry(cell: nn.RNNCellBase, input_shape: tuple[int, ...],
               width: int | None = None) -> Array:
  """Zeros `[*batch, width]` (default: the cell's features) for inputs `[*batch, F]`."""
  return jnp.zeros(tuple(input_shape[:-1]) + (width or cell.features,), carry_dtype(cell))
