"""The recurrent cells as Flax NNX modules: the linen cells' parameters, step and scan kernel.

Each NNX cell keeps an unbound twin, the linen cell with the same settings
(`cell.linen_cell`, e.g. `sn.LSTMCell(hidden_features, use_peepholes=True)`), and its
parameters as `nnx.Param`s with the linen names and shapes. The twin defines everything
else, so both front ends run one implementation: its `cell_params` declares the
parameters (at construction) and derives the step's arrays from them (e.g. `bias +
hidden_bias`), its `__call__` is the step and its `scan_kernel()` what `snx.RNN` runs
through `fused_scan`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from seqnets.layers import cell_regularizers
from seqnets.layers import elman
from seqnets.layers import fused_cell
from seqnets.layers import fused_scan
from seqnets.layers import gru
from seqnets.layers import initializers
from seqnets.layers import leaky
from seqnets.layers import lstm
from seqnets.layers import orthogonal

Array = jax.Array
Carry = Any
Params = dict[str, Array]
Initializer = initializers.Initializer


class FusedCell(nnx.RNNCellBase):
  """An NNX cell over a linen `fused_cell.FusedCell` (its twin, `linen_cell`).

  `FusedCell(F, linen_cell, rngs=rngs)` wraps any linen `FusedCell` without regularisers
  (they are linen-only: a ValueError otherwise); the subclasses take the linen cell's
  settings as keywords after `in_features` (F) and `hidden_features` (H, the linen cell's
  `features`) and build the twin. The 'params' stream of `rngs` draws the parameters with
  the linen initialisers.

  State: one `nnx.Param` per linen parameter, same name, shape and dtype
  (`input_kernel [F, G·H]`, `recurrent_kernel [H, G·H]`, `bias [G·H]`, ...); no other state.
  The step `__call__(carry, x [*batch, F]) -> (new_carry, h_t [*batch, H])`, the carry
  (`initialize_carry`) and the dtype rule are the linen cell's (`fused_cell.FusedCell`).
  """

  def __init__(self, in_features: int, linen_cell: fused_cell.FusedCell, *, rngs: nnx.Rngs):
    if linen_cell.has_regularizers and cell_regularizers.is_active(linen_cell):
      raise ValueError(f'{type(linen_cell).__name__} with regularisers (update dropout, '
                       'zoneout, weight drop, layer norm) runs in the linen front end only '
                       '(seqnets.RNN)')
    self.in_features = in_features
    self.linen_cell = linen_cell
    params = linen_cell.init({'params': rngs.params()}, in_features,
                             method=type(linen_cell).cell_params)['params']
    for name, value in params.items():
      setattr(self, name, nnx.Param(value))

  @property
  def hidden_features(self) -> int:
    return self.linen_cell.features

  @property
  def dtype(self) -> Any:
    return self.linen_cell.dtype

  @property
  def param_dtype(self) -> Any:
    return self.linen_cell.param_dtype

  @property
  def num_feature_axes(self) -> int:
    return 1

  def linen_params(self) -> Params:
    """The parameters by name, as the linen cell's `variables['params']` holds them."""
    return {name: value[...] for name, value in vars(self).items()
            if isinstance(value, nnx.Param)}

  def step_params(self, num_features: int | None = None) -> Params:
    """The arrays the step and the scan kernel read (`cell_params`: the parameters and what
    the linen cell derives from them, e.g. `bias + hidden_bias`), for inputs of
    `num_features` (default `in_features`; another F is linen's error naming the param)."""
    return self.linen_cell.apply({'params': self.linen_params()},
                                 num_features or self.in_features,
                                 method=type(self.linen_cell).cell_params)

  def scan_kernel(self) -> fused_scan.ScanKernel:
    """The linen cell's `fused_scan.ScanKernel`."""
    return self.linen_cell.scan_kernel()

  def __call__(self, carry: Carry, inputs: Array) -> tuple[Carry, Array]:
    """One step: `carry`, `inputs [*batch, F]` -> `(new_carry, h_t [*batch, H])`."""
    return self.linen_cell.apply({'params': self.linen_params()}, carry, inputs)

  def initialize_carry(self, input_shape: tuple[int, ...],
                       rngs: nnx.Rngs | nnx.RngStream | None = None) -> Carry:
    """Zeros in the carry dtype (`dtype`, else `param_dtype`) for inputs `[*batch, F]`:
    h `[*batch, H]`, or the cell's tuple (`(c, h)` for the LSTM). `rngs` is not used."""
    del rngs
    return self.linen_cell.initialize_carry(jax.random.key(0), tuple(input_shape))


class ElmanCell(FusedCell):
  """Elman cell `h_t = φ(W x_t + U h_{t-1} + b)` (see `seqnets.ElmanCell`).

  Params: `input_kernel [F, H]`, `recurrent_kernel [H, H]`, `bias [H]`, and with
  `hidden_bias` also `hidden_bias [H]`. Carry h `[*batch, H]`.
  """

  def __init__(self, in_features: int, hidden_features: int, *,
               activation_fn: Callable[[Array], Array] = jnp.tanh,
               kernel_init: Initializer = elman.ElmanCell.kernel_init,
               recurrent_kernel_init: Initializer = elman.ElmanCell.recurrent_kernel_init,
               bias_init: Initializer = elman.ElmanCell.bias_init,
               hidden_bias: bool = False, dtype: Any = None, param_dtype: Any = jnp.float32,
               rngs: nnx.Rngs):
    super().__init__(in_features, elman.ElmanCell(
        hidden_features, activation_fn=activation_fn, kernel_init=kernel_init,
        recurrent_kernel_init=recurrent_kernel_init, bias_init=bias_init,
        hidden_bias=hidden_bias, dtype=dtype, param_dtype=param_dtype), rngs=rngs)


class LSTMCell(FusedCell):
  """LSTM cell with forget gate and optional peepholes (see `seqnets.LSTMCell`).

  Params (gate order i, f, g, o): `input_kernel [F, 4H]`, `recurrent_kernel [H, 4H]`,
  `bias [4H]` (`forget_bias` on the f block unless `bias_init` is given); with
  `hidden_bias` also `hidden_bias [4H]`; with `use_peepholes` `peephole_i`, `peephole_f`,
  `peephole_o [H]`. Carry `(c, h)`, each `[*batch, H]`.
  """

  def __init__(self, in_features: int, hidden_features: int, *,
               use_peepholes: bool = False, forget_bias: float = 1.0,
               kernel_init: Initializer = lstm.LSTMCell.kernel_init,
               recurrent_kernel_init: Initializer = lstm.LSTMCell.recurrent_kernel_init,
               bias_init: Initializer | None = None,
               peephole_init: Initializer = lstm.LSTMCell.peephole_init,
               hidden_bias: bool = False, dtype: Any = None, param_dtype: Any = jnp.float32,
               rngs: nnx.Rngs):
    super().__init__(in_features, lstm.LSTMCell(
        hidden_features, use_peepholes=use_peepholes, forget_bias=forget_bias,
        kernel_init=kernel_init, recurrent_kernel_init=recurrent_kernel_init,
        bias_init=bias_init, peephole_init=peephole_init, hidden_bias=hidden_bias,
        dtype=dtype, param_dtype=param_dtype), rngs=rngs)


class GRUCell(FusedCell):
  """GRU cell, reset gate before (Cho et al.) or after the recurrent matmul (`reset_after`,
  as cuDNN and PyTorch); see `seqnets.GRUCell` (z weights the new state there).

  Params (gate order r, z, n): `input_kernel [F, 3H]`, `recurrent_kernel [H, 3H]`,
  `bias [3H]`; with `reset_after` also `recurrent_bias [H]`, or with `hidden_bias`
  `hidden_bias [3H]` instead. Carry h `[*batch, H]`.
  """

  def __init__(self, in_features: int, hidden_features: int, *, reset_after: bool = False,
               hidden_bias: bool = False,
               kernel_init: Initializer = gru.GRUCell.kernel_init,
               recurrent_kernel_init: Initializer = gru.GRUCell.recurrent_kernel_init,
               bias_init: Initializer = gru.GRUCell.bias_init,
               dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
    super().__init__(in_features, gru.GRUCell(
        hidden_features, reset_after=reset_after, hidden_bias=hidden_bias,
        kernel_init=kernel_init, recurrent_kernel_init=recurrent_kernel_init,
        bias_init=bias_init, dtype=dtype, param_dtype=param_dtype), rngs=rngs)


class LeakyRNNCell(FusedCell):
  """Leaky-integrator cell `h_t = (1 − α) ⊙ h_{t-1} + α ⊙ tanh(W x_t + U h_{t-1} + b)`
  (see `seqnets.LeakyRNNCell`).

  Params: `input_kernel [F, H]`, `recurrent_kernel [H, H]`, `bias [H]`, and with
  `learn_leak` `leak_logit [H]` (α = sigmoid(leak_logit)). `leak`: α, a float or H floats
  (kept as a tuple). Carry h `[*batch, H]`.
  """

  def __init__(self, in_features: int, hidden_features: int, *,
               leak: float | Sequence[float] = 1.0, learn_leak: bool = False,
               kernel_init: Initializer = leaky.LeakyRNNCell.kernel_init,
               recurrent_kernel_init: Initializer = leaky.LeakyRNNCell.recurrent_kernel_init,
               bias_init: Initializer = leaky.LeakyRNNCell.bias_init,
               dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
    # A tuple, not a list: the twin is part of the module's static structure (hashed).
    leak = leak if isinstance(leak, (int, float)) else tuple(float(a) for a in leak)
    super().__init__(in_features, leaky.LeakyRNNCell(
        hidden_features, leak=leak, learn_leak=learn_leak, kernel_init=kernel_init,
        recurrent_kernel_init=recurrent_kernel_init, bias_init=bias_init, dtype=dtype,
        param_dtype=param_dtype), rngs=rngs)


class OrthogonalRNNCell(FusedCell):
  """Orthogonal RNN cell `h_t = φ(W x_t + U h_{t-1}; b)`, U orthogonal through its
  parametrisation by A (`'expm'`: U = expm(A − Aᵀ), `'cayley'`); see
  `seqnets.OrthogonalRNNCell`.

  Params: `input_kernel [F, H]`, `recurrent_skew` A `[H, H]`, `bias [H]`. Carry
  h `[*batch, H]`. Inside `snx.RNN` U is computed once per call, outside the time loop.
  """

  def __init__(self, in_features: int, hidden_features: int, *,
               parametrization: str = 'expm', activation: str = 'modrelu',
               kernel_init: Initializer = orthogonal.OrthogonalRNNCell.kernel_init,
               recurrent_skew_init: Initializer | None = None,
               bias_init: Initializer = orthogonal.OrthogonalRNNCell.bias_init,
               dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
    super().__init__(in_features, orthogonal.OrthogonalRNNCell(
        hidden_features, parametrization=parametrization, activation=activation,
        kernel_init=kernel_init, recurrent_skew_init=recurrent_skew_init,
        bias_init=bias_init, dtype=dtype, param_dtype=param_dtype), rngs=rngs)

  def recurrent_kernel(self) -> Array:
    """U `[H, H]` from the current `recurrent_skew`."""
    return self.linen_cell.recurrent_kernel(self.linen_params())
