"""The recurrent cells as Flax NNX modules: the linen cells' parameters, step and scan kernel.

Each NNX cell keeps an unbound twin, the linen cell with the same settings
(`cell.linen_cell`, e.g. `sn.LSTMCell(hidden_features, use_peepholes=True)`), and its
parameters as `nnx.Param`s with the linen names and shapes. The twin defines everything
else, so both front ends run one implementation: its `cell_params` declares the
parameters (at construction) and derives the step's arrays from them (e.g. `bias +
hidden_bias`), its `__call__` is the step and its `scan_kernel()` what `snx.RNN` runs
through `fused_scan`. `LinenCell` is the base (any linen cell, stepped by its `__call__`);
`FusedCell` adds the scan kernel and the regularisers.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn
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
from seqnets.nnx import regularizers

Array = jax.Array
Carry = Any
Params = dict[str, Any]
Initializer = initializers.Initializer


class ParamGroup(nnx.Module):
  """The params of a linen submodule (e.g. a ConvLSTM's `input_conv`: `kernel [kh, kw, C_in,
  4C]`, `bias [4C]`) as `nnx.Param` attributes of the same names."""

  def __init__(self, params: Mapping[str, Any]):
    hold_params(self, params)

  def linen_params(self) -> Params:
    return held_params(self)


def hold_params(module: nnx.Module, params: Mapping[str, Any]) -> None:
  """Sets `module.<name>` to an `nnx.Param` per array of the linen `params` tree (a
  `ParamGroup` per subtree) and remembers the names (`held_params` reads them back)."""
  for name, value in params.items():
    setattr(module, name, ParamGroup(value) if isinstance(value, Mapping) else nnx.Param(value))
  module.param_names = tuple(params)


def held_params(module: nnx.Module) -> Params:
  """The linen params tree of what `hold_params` set: the current arrays, nested by name."""
  tree = {}
  for name in module.param_names:
    value = getattr(module, name)
    tree[name] = value.linen_params() if isinstance(value, ParamGroup) else value[...]
  return tree


class LinenCell(nnx.RNNCellBase):
  """An NNX cell over a linen cell (its twin, `linen_cell`), stepped by the twin's `__call__`.

  `LinenCell(F, linen_cell, rngs=rngs)` wraps any linen `RNNCellBase` whose params are all
  it holds (no other collections); the subclasses take the linen cell's settings as
  keywords after `in_features` (F) and `hidden_features` (H, the linen cell's `features`)
  and build the twin. The 'params' stream of `rngs` draws the parameters with the linen
  initialisers, by initialising the twin on a step over inputs `[1, *feature_shape]`
  (default `[1, F]`; a ConvLSTM's `[1, height, width, F]`).

  State: one `nnx.Param` per linen parameter, same name, shape and dtype, a linen
  submodule's as a `ParamGroup` attribute of its name (`cell/input_conv/kernel`); no
  other state. The step `__call__(carry, x [*batch, *feature_dims]) -> (new_carry, y_t)`,
  the carry (`initialize_carry`) and the dtype rule are the linen cell's; `snx.RNN` runs
  the step in a plain `jax.lax.scan`.
  """

  def __init__(self, in_features: int, linen_cell: nn.RNNCellBase, *,
               rngs: nnx.Rngs | None, feature_shape: tuple[int, ...] | None = None):
    self.in_features = in_features
    self.linen_cell = linen_cell
    hold_params(self, self._init_params(rngs, feature_shape or (in_features,)))

  def _init_params(self, rngs: nnx.Rngs | None, feature_shape: tuple[int, ...]) -> Params:
    """The twin's params, initialised on one step over inputs `[1, *feature_shape]`."""
    x = jnp.zeros((1, *feature_shape), fused_cell.carry_dtype(self.linen_cell))
    carry = self.linen_cell.initialize_carry(jax.random.key(0), x.shape)
    key = jax.random.key(0) if rngs is None else rngs.params()
    params = self.linen_cell.init({'params': key}, carry, x).get('params', {})
    if rngs is None and params:
      raise ValueError(f'{type(self).__name__} has params: it needs rngs')
    return dict(params)

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
    return self.linen_cell.num_feature_axes

  @property
  def regularized(self) -> bool:
    """Whether a regulariser of the cell is on (update dropout, zoneout, weight drop,
    layer norm): then `snx.RNN` runs the linen layer (`seqnets.RNN`) over the twin."""
    return False

  @property
  def random(self) -> bool:
    """Whether the cell draws masks in training (and so needs a 'dropout' key)."""
    return False

  def linen_params(self) -> Params:
    """The parameters by name, as the linen cell's `variables['params']` holds them."""
    return held_params(self)

  def __call__(self, carry: Carry, inputs: Array) -> tuple[Carry, Array]:
    """One step: `carry`, `inputs [*batch, *feature_dims]` -> `(new_carry, y_t)`."""
    return self.linen_cell.apply({'params': self.linen_params()}, carry, inputs)

  def initialize_carry(self, input_shape: tuple[int, ...],
                       rngs: nnx.Rngs | nnx.RngStream | None = None) -> Carry:
    """The linen cell's zero carry (in `dtype`, else `param_dtype`) for inputs
    `[*batch, *feature_dims]`: e.g. h `[*batch, H]`, `(c, h)` for the LSTM. `rngs` is not
    used."""
    del rngs
    return self.linen_cell.initialize_carry(jax.random.key(0), tuple(input_shape))


class FusedCell(LinenCell):
  """An NNX cell over a linen `fused_cell.FusedCell` (its twin, `linen_cell`).

  `FusedCell(F, linen_cell, rngs=rngs)` wraps any linen `FusedCell`; the subclasses take
  the linen cell's settings as keywords. State: one `nnx.Param` per linen parameter, same
  name, shape and dtype (`input_kernel [F, G·H]`, `recurrent_kernel [H, G·H]`, `bias
  [G·H]`, ...). The step `__call__(carry, x [*batch, F]) -> (new_carry, h_t [*batch, H])`,
  the carry (`initialize_carry`) and the dtype rule are the linen cell's
  (`fused_cell.FusedCell`); `snx.RNN` runs `scan_kernel()` through `fused_scan`.

  Regularisers (Elman, LSTM and GRU cells: `update_dropout_rate`, `zoneout_rate`,
  `weight_drop_rate`, `layer_norm`; see `seqnets.layers.cell_regularizers`) are the twin's
  fields and run its regularised step. Their mode is the `deterministic` attribute (False:
  training, as `nnx.Dropout`; `model.eval()` / `model.train()` set it; a linen cell's own
  `deterministic` becomes it) or the call's `deterministic`. In training, dropout and
  zoneout masks come from a 'dropout' key: the call's `rngs` (an `nnx.Rngs`, its
  'dropout' stream, or a key), else the cell's own stream, forked at construction from
  `rngs['dropout']` (the default stream when there is none). A call with the key k gives
  what the linen cell's `apply(..., rngs={'dropout': k})` gives. With layer norm the
  cell also holds the gains (and the LSTM the cell norm's shift).
  """

  def __init__(self, in_features: int, linen_cell: fused_cell.FusedCell, *,
               rngs: nnx.Rngs):
    deterministic = None
    if linen_cell.has_regularizers:
      cell_regularizers.check_rates(linen_cell)
      if linen_cell.deterministic is not None:
        deterministic = linen_cell.deterministic
        linen_cell = linen_cell.clone(deterministic=None)
    super().__init__(in_features, linen_cell, rngs=rngs)
    if linen_cell.has_regularizers:
      self.deterministic = bool(deterministic)
      self.rngs = rngs['dropout'].fork() if self.random else nnx.data(None)

  def _init_params(self, rngs: nnx.Rngs, feature_shape: tuple[int, ...]) -> Params:
    cell = self.linen_cell
    return cell.init({'params': rngs.params()}, feature_shape[-1],
                     method=type(cell).cell_params)['params']

  @property
  def regularized(self) -> bool:
    return self.linen_cell.has_regularizers and cell_regularizers.is_active(self.linen_cell)

  @property
  def random(self) -> bool:
    return self.linen_cell.has_regularizers and cell_regularizers.is_random(self.linen_cell)

  def set_view(self, deterministic: bool | None = None) -> None:
    """`nnx.view(model, deterministic=...)`: the regularisers' mode, on a copy."""
    if deterministic is not None and self.linen_cell.has_regularizers:
      self.deterministic = deterministic

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

  def __call__(self, carry: Carry, inputs: Array, *, deterministic: bool | None = None,
               rngs: regularizers.KeySource = None) -> tuple[Carry, Array]:
    """One step: `carry`, `inputs [*batch, F]` -> `(new_carry, h_t [*batch, H])`; with
    regularisers `deterministic` overrides the attribute and `rngs` gives the key (see the
    class docstring; a weight-drop mask is drawn per call)."""
    variables = {'params': self.linen_params()}
    if not self.regularized:
      return self.linen_cell.apply(variables, carry, inputs)
    deterministic = self.deterministic if deterministic is None else deterministic
    keys = {}
    if self.random and not deterministic:
      keys = {'dropout': regularizers.dropout_key(rngs, self.rngs,
                                                  what=type(self).__name__)}
    return self.linen_cell.apply(variables, carry, inputs, deterministic=bool(deterministic),
                                 rngs=keys)


class ElmanCell(FusedCell):
  """Elman cell `h_t = φ(W x_t + U h_{t-1} + b)` (see `seqnets.ElmanCell`).

  Params: `input_kernel [F, H]`, `recurrent_kernel [H, H]`, `bias [H]`, and with
  `hidden_bias` also `hidden_bias [H]`. Carry h `[*batch, H]`.

  Regularisers: `update_dropout_rate`, `zoneout_rate`, `weight_drop_rate`, `layer_norm`,
  `deterministic` (see `FusedCell`).
  """

  def __init__(self, in_features: int, hidden_features: int, *,
               activation_fn: Callable[[Array], Array] = jnp.tanh,
               kernel_init: Initializer = elman.ElmanCell.kernel_init,
               recurrent_kernel_init: Initializer = elman.ElmanCell.recurrent_kernel_init,
               bias_init: Initializer = elman.ElmanCell.bias_init,
               hidden_bias: bool = False, dtype: Any = None, param_dtype: Any = jnp.float32,
               update_dropout_rate: float = 0.0, zoneout_rate: float = 0.0,
               weight_drop_rate: float = 0.0, layer_norm: bool = False,
               deterministic: bool = False, rngs: nnx.Rngs):
    super().__init__(in_features, elman.ElmanCell(
        hidden_features, activation_fn=activation_fn, kernel_init=kernel_init,
        recurrent_kernel_init=recurrent_kernel_init, bias_init=bias_init,
        hidden_bias=hidden_bias, dtype=dtype, param_dtype=param_dtype,
        update_dropout_rate=update_dropout_rate, zoneout_rate=zoneout_rate,
        weight_drop_rate=weight_drop_rate, layer_norm=layer_norm,
        deterministic=deterministic), rngs=rngs)


class LSTMCell(FusedCell):
  """LSTM cell with forget gate and optional peepholes (see `seqnets.LSTMCell`).

  Params (gate order i, f, g, o): `input_kernel [F, 4H]`, `recurrent_kernel [H, 4H]`,
  `bias [4H]` (`forget_bias` on the f block, or chrono, unless `bias_init` is given); with
  `hidden_bias` also `hidden_bias [4H]`; with `use_peepholes` `peephole_i`, `peephole_f`,
  `peephole_o [H]`. Carry `(c, h)`, each `[*batch, H]`.

  Regularisers: `update_dropout_rate`, `zoneout_rate`, `weight_drop_rate`, `layer_norm`,
  `deterministic` (see `FusedCell`).
  """

  def __init__(self, in_features: int, hidden_features: int, *,
               use_peepholes: bool = False, forget_bias: float | str = 1.0,
               chrono_max_length: int | None = None,
               kernel_init: Initializer = lstm.LSTMCell.kernel_init,
               recurrent_kernel_init: Initializer = lstm.LSTMCell.recurrent_kernel_init,
               bias_init: Initializer | None = None,
               peephole_init: Initializer = lstm.LSTMCell.peephole_init,
               hidden_bias: bool = False, dtype: Any = None, param_dtype: Any = jnp.float32,
               update_dropout_rate: float = 0.0, zoneout_rate: float = 0.0,
               weight_drop_rate: float = 0.0, layer_norm: bool = False,
               deterministic: bool = False, rngs: nnx.Rngs):
    super().__init__(in_features, lstm.LSTMCell(
        hidden_features, use_peepholes=use_peepholes, forget_bias=forget_bias,
        chrono_max_length=chrono_max_length,
        kernel_init=kernel_init, recurrent_kernel_init=recurrent_kernel_init,
        bias_init=bias_init, peephole_init=peephole_init, hidden_bias=hidden_bias,
        dtype=dtype, param_dtype=param_dtype,
        update_dropout_rate=update_dropout_rate, zoneout_rate=zoneout_rate,
        weight_drop_rate=weight_drop_rate, layer_norm=layer_norm,
        deterministic=deterministic), rngs=rngs)


class GRUCell(FusedCell):
  """GRU cell, reset gate before (Cho et al.) or after the recurrent matmul (`reset_after`,
  as cuDNN and PyTorch); see `seqnets.GRUCell` (z weights the new state there).

  Params (gate order r, z, n): `input_kernel [F, 3H]`, `recurrent_kernel [H, 3H]`,
  `bias [3H]`; with `reset_after` also `recurrent_bias [H]`, or with `hidden_bias`
  `hidden_bias [3H]` instead. Carry h `[*batch, H]`.

  Regularisers: `update_dropout_rate`, `zoneout_rate`, `weight_drop_rate`, `layer_norm`,
  `deterministic` (see `FusedCell`).
  """

  def __init__(self, in_features: int, hidden_features: int, *, reset_after: bool = False,
               hidden_bias: bool = False, update_bias: float | str = 0.0,
               chrono_max_length: int | None = None,
               kernel_init: Initializer = gru.GRUCell.kernel_init,
               recurrent_kernel_init: Initializer = gru.GRUCell.recurrent_kernel_init,
               bias_init: Initializer | None = None,
               dtype: Any = None, param_dtype: Any = jnp.float32,
               update_dropout_rate: float = 0.0, zoneout_rate: float = 0.0,
               weight_drop_rate: float = 0.0, layer_norm: bool = False,
               deterministic: bool = False, rngs: nnx.Rngs):
    super().__init__(in_features, gru.GRUCell(
        hidden_features, reset_after=reset_after, hidden_bias=hidden_bias,
        update_bias=update_bias, chrono_max_length=chrono_max_length,
        kernel_init=kernel_init, recurrent_kernel_init=recurrent_kernel_init,
        bias_init=bias_init, dtype=dtype, param_dtype=param_dtype,
        update_dropout_rate=update_dropout_rate, zoneout_rate=zoneout_rate,
        weight_drop_rate=weight_drop_rate, layer_norm=layer_norm,
        deterministic=deterministic), rngs=rngs)


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
