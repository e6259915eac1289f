"""LSTM cell with forget gate and optional peepholes.

Hochreiter & Schmidhuber (1997), "Long short-term memory"; forget gate: Gers,
Schmidhuber & Cummins (2000); peepholes: Gers & Schmidhuber (2000), "Recurrent
nets that time and count". Neither flax, Keras nor PyTorch ships peepholes,
which the classic aⁿbⁿ results used; that is why this cell is written here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import cell_regularizers
from seqnets.layers import fused_cell
from seqnets.layers import fused_scan
from seqnets.layers import initializers

Array = jax.Array
LSTMCarry = tuple[Array, Array]
Params = dict[str, Array]


def default_bias_init(forget_bias: float | str, chrono_max_length: int | None,
                      input_bias: float = 0.0, output_bias: float = 0.0
                      ) -> initializers.Initializer:
  """The LSTM's bias `[4H]` (gates i, f, g, o): `(input_bias, forget_bias, 0, output_bias)`,
  or with `forget_bias='chrono'` b_f = log u, b_i = −b_f, u ~ U(1, chrono_max_length − 1).
  ValueError for a chrono setting without the other, or an input bias beside chrono."""
  if initializers.uses_chrono('forget_bias', forget_bias, chrono_max_length):
    if input_bias != 0.0:
      raise ValueError("input_bias cannot be set with forget_bias='chrono', which sets "
                       'b_i = -b_f')
    return initializers.chrono_gate_bias_init(
        ('-' + initializers.CHRONO, initializers.CHRONO, 0.0, output_bias), chrono_max_length)
  return initializers.gate_bias_init((input_bias, forget_bias, 0.0, output_bias))


class LSTMCell(fused_cell.RegularizedCell):
  """LSTM cell, carry `(c, h)`:

    i = σ(W_i x_t + U_i h_{t-1} + b_i [+ p_i ⊙ c_{t-1}])
    f = σ(W_f x_t + U_f h_{t-1} + b_f [+ p_f ⊙ c_{t-1}])
    g = tanh(W_g x_t + U_g h_{t-1} + b_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    o = σ(W_o x_t + U_o h_{t-1} + b_o [+ p_o ⊙ c_t])
    h_t = o ⊙ tanh(c_t)

  The bracketed peephole terms are present when `use_peepholes=True`.

  Parameter layout (gate order i, f, g, o, as PyTorch: `input_kernel =
  weight_ih_l0.T`, `recurrent_kernel = weight_hh_l0.T`, `bias = bias_ih_l0 +
  bias_hh_l0`):
    input_kernel      [F, 4H]   columns [i | f | g | o]
    recurrent_kernel  [H, 4H]
    bias              [4H]      default: 0 except `forget_bias` on the f block (chrono: b_f,
                                and b_i = −b_f, drawn per unit, see below)
    hidden_bias       [4H]      only with `hidden_bias=True`: the step uses bias + hidden_bias
    peephole_i, peephole_f, peephole_o   [H] each (only with peepholes)

  The step is `scan_kernel()`'s (see `_LSTMKernel`, `fused_cell.FusedCell`): one
  `[x_t, h] @ [W_g; U_g]` matmul per gate; inside `sn.RNN` it runs through `fused_scan`
  with a hand-written backward pass, on accelerators with the input projection hoisted
  out of the loop (`sn.RNN`'s `implementation`).

  Regularisers (all off by default; `cell_regularizers` has the shared pieces):
    update dropout (Semeniuta et al. 2016)   c_t = f ⊙ c_{t-1} + i ⊙ d(g)
    zoneout (Krueger et al. 2017)            c_t = m_c ⊙ c_{t-1} + (1 − m_c) ⊙ c̃_t,
                                             h_t = m_h ⊙ h_{t-1} + (1 − m_h) ⊙ h̃_t
                                             (c̃_t, h̃_t: the step above)
    weight drop (Merity et al. 2018)         U ⊙ M, one M per call (per sequence in sn.RNN)
    layer norm (Ba et al. 2016)              z = LN(W x_t) + LN(U h_{t-1}) + b, each gate's
                                             block apart, gains `input_norm_scale` and
                                             `recurrent_norm_scale` [4H] (b is the shift of
                                             both); h_t = o ⊙ tanh(LN(c_t)) with
                                             `cell_norm_scale`, `cell_norm_bias` [H]
  Dropout and zoneout draw from the 'dropout' rng stream and need
  `deterministic` (attribute or call argument, exactly one); `masks` (given by
  `sn.RNN`) holds masks drawn once per sequence: 'state' `[B, H]` multiplies
  h_{t-1} where it enters U (variational dropout), 'recurrent_kernel' is M.

  Attributes:
    features: hidden size H.
    use_peepholes: add the diagonal peephole connections p_i, p_f, p_o.
    forget_bias: initial value of b_f, or 'chrono' (Tallec & Ollivier 2018): b_f = log u,
      b_i = −b_f, u ~ U(1, chrono_max_length − 1) per unit (`initializers.
      chrono_gate_bias_init`). Ignored when `bias_init` is given.
    chrono_max_length: T_max of the chrono initialisation (only with forget_bias='chrono'):
      the longest dependency the cell should start able to hold.
    hidden_bias: a second bias on the recurrent side, initialised to 0, as PyTorch and
      cuDNN keep (`bias_hh`); the same function class, kept so that imported weights
      go back unchanged (`seqnets.interop`).
    kernel_init / recurrent_kernel_init / bias_init / peephole_init: initialisers.
    dtype / param_dtype: computation and parameter dtypes (see `fused_cell.FusedCell`).
    update_dropout_rate / zoneout_rate / weight_drop_rate / layer_norm / deterministic:
      the regularisers and their evaluation mode (`cell_regularizers`).

  Dtypes: as every `FusedCell`.
  """

  features: int
  use_peepholes: bool = False
  forget_bias: float | Literal['chrono'] = 1.0
  chrono_max_length: int | None = None
  kernel_init: initializers.Initializer = nn.initializers.lecun_normal()
  recurrent_kernel_init: initializers.Initializer = nn.initializers.orthogonal()
  bias_init: initializers.Initializer | None = None
  peephole_init: initializers.Initializer = nn.initializers.zeros_init()
  hidden_bias: bool = False
  dtype: Any = None
  param_dtype: Any = jnp.float32

  gates = 4

  @nn.compact
  def cell_params(self, num_features: int) -> Params:
    """Declares (at init) and returns the parameters for `F = num_features` inputs."""
    hidden = self.features
    bias_init = self.bias_init or default_bias_init(self.forget_bias, self.chrono_max_length)
    params = fused_cell.affine_params(self, num_features, self.gates, bias_init)
    if self.hidden_bias:
      params['bias'] = params['bias'] + self.param(
          'hidden_bias', nn.initializers.zeros_init(), (4 * hidden,), self.param_dtype)
    if self.use_peepholes:
      for gate in 'ifo':
        params[f'peephole_{gate}'] = self.param(
            f'peephole_{gate}', initializers.in_float32(self.peephole_init), (hidden,),
            self.param_dtype)
    if self.layer_norm:
      params.update(cell_regularizers.norm_params(self, self.gates))
      params['cell_norm_scale'] = self.param('cell_norm_scale', nn.initializers.ones_init(),
                                             (hidden,), self.param_dtype)
      params['cell_norm_bias'] = self.param('cell_norm_bias', nn.initializers.zeros_init(),
                                            (hidden,), self.param_dtype)
    return params

  @nn.nowrap
  def scan_kernel(self) -> _LSTMKernel:
    """Step, reverse step and gradients (see `fused_scan.fused_scan`). Carry: `(c, h)`,
    each `[B, H]`."""
    return _LSTMKernel(self.use_peepholes)

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> LSTMCarry:
    """Zeros `(c, h)`, each `[*batch, H]` in the carry dtype, for inputs `[*batch, F]`."""
    del rng
    return fused_cell.zero_carry(self, input_shape), fused_cell.zero_carry(self, input_shape)

  def _regularized_step(self, params: Params, carry: LSTMCarry, x: Array,
                        deterministic: bool | None, masks: dict[str, Array] | None):
    """The step with the regularisers (plain autodiff), see the class docstring."""
    regs = cell_regularizers
    deterministic, masks = regs.prepare_step(self, deterministic, masks)
    c, h = carry
    h_in, u = regs.masked_recurrence(params, h, masks)
    a_x, a_h = x @ params['input_kernel'], h_in @ u
    if self.layer_norm:
      a_x = regs.layer_norm(a_x, params['input_norm_scale'], groups=4)
      a_h = regs.layer_norm(a_h, params['recurrent_norm_scale'], groups=4)
    z_i, z_f, z_g, z_o = jnp.split(a_x + a_h + params['bias'], 4, axis=-1)
    if self.use_peepholes:
      z_i = z_i + params['peephole_i'] * c
      z_f = z_f + params['peephole_f'] * c
    i, f, g = jax.nn.sigmoid(z_i), jax.nn.sigmoid(z_f), jnp.tanh(z_g)
    g = regs.dropout(self, g, self.update_dropout_rate, deterministic, 'update_mask')
    new_c = f * c + i * g
    if self.use_peepholes:
      z_o = z_o + params['peephole_o'] * new_c
    squashed = new_c
    if self.layer_norm:
      squashed = regs.layer_norm(new_c, params['cell_norm_scale'], params['cell_norm_bias'])
    new_h = jax.nn.sigmoid(z_o) * jnp.tanh(squashed)
    new_c = regs.zoneout(self, c, new_c, self.zoneout_rate, deterministic, 'zoneout_c_mask')
    new_h = regs.zoneout(self, h, new_h, self.zoneout_rate, deterministic, 'zoneout_h_mask')
    return (new_c, new_h), new_h


@dataclasses.dataclass(frozen=True)
class _LSTMKernel:
  """LSTM step, reverse step and gradients for `fused_scan.fused_scan`.

  Forward: one matmul per gate, `[x_t, h_{t-1}] @ [W_g; U_g]` (`[F + H, H]`).
  Measured on a 2-core CPU (benchmarks/README.md), this beats a single
  `[F + H, 4H]` matmul by 15–20 % (inference and training, shapes a and c):
  each gate's pre-activation arrives as its own `[B, H]` array, so the
  elementwise gate fusions read whole arrays instead of slices of a
  `[B, 4H]` one (XLA:CPU emits slower loops for those), and the four matmuls
  are independent. A single logistic over the whole `[B, 4H]` (tanh(z) =
  2σ(2z) − 1) was no faster: its output had to be materialised.
  Residuals per step: i, f, g, o and c_{t-1}, each `[B, H]` (kept as
  separate arrays for the same reason); c_t is recomputed in the backward
  step. Reverse step: dz `[B, 4H]` and one `dz Uᵀ` matmul.

  Hoisted (`fused_scan.HoistedScanKernel`): `project` is `X W + b` `[B, T, 4H]`
  for all steps; `forward_projected` adds one `h_{t-1} U` `[B, H] @ [H, 4H]`
  matmul and splits the sum into the gates; the gate maths (`_gates`) and the
  residuals are those of `forward`.
  """

  use_peepholes: bool

  def hidden(self, carry: LSTMCarry) -> Array:
    return carry[1]

  def prepare(self, params: Params) -> Params:
    fused = jnp.concatenate([params['input_kernel'], params['recurrent_kernel']], axis=0)
    return dict(params, gate_kernels=jnp.split(fused, 4, axis=-1),      # 4 × [F + H, H]
                gate_biases=jnp.split(params['bias'], 4))                # 4 × [H]

  def forward(self, consts: Params, carry: LSTMCarry, x_t: Array,
              keep_residuals: bool) -> tuple[LSTMCarry, Array, Any]:
    x_h = jnp.concatenate([x_t, carry[1]], axis=-1)                     # [B, F + H]
    pre_activations = [x_h @ k + b for k, b in zip(consts['gate_kernels'],
                                                    consts['gate_biases'])]
    return self._gates(consts, carry, pre_activations, keep_residuals)

  def project(self, consts: Params, inputs: Array) -> Array:
    return fused_scan.input_projection(consts, inputs)                 # [B, T, 4H]

  def forward_projected(self, consts: Params, carry: LSTMCarry, projected_t: Array,
                        keep_residuals: bool) -> tuple[LSTMCarry, Array, Any]:
    z = projected_t + carry[1] @ consts['recurrent_kernel']            # [B, 4H]
    return self._gates(consts, carry, jnp.split(z, 4, axis=-1), keep_residuals)

  def _gates(self, consts: Params, carry: LSTMCarry, pre_activations: list[Array],
             keep_residuals: bool) -> tuple[LSTMCarry, Array, Any]:
    """The step from the gates' pre-activations `z_i, z_f, z_g, z_o` (`[B, H]` each,
    peepholes not yet added)."""
    c = carry[0]
    z_i, z_f, z_g, z_o = pre_activations
    if self.use_peepholes:
      z_i = z_i + consts['peephole_i'] * c
      z_f = z_f + consts['peephole_f'] * c
    i, f, g = jax.nn.sigmoid(z_i), jax.nn.sigmoid(z_f), jnp.tanh(z_g)
    new_c = f * c + i * g
    if self.use_peepholes:
      z_o = z_o + consts['peephole_o'] * new_c
    o = jax.nn.sigmoid(z_o)
    new_h = o * jnp.tanh(new_c)
    residuals = ((i, f, g, o), c) if keep_residuals else None
    return (new_c, new_h), new_h, residuals

  def backward(self, consts: Params, residuals: Any, y_t: Array, h_prev: Array,
               d_carry: LSTMCarry, d_y: Array) -> tuple[LSTMCarry, Array]:
    del y_t, h_prev
    (i, f, g, o), c_prev = residuals
    d_c, d_h = d_carry
    d_h = d_h + d_y
    c = f * c_prev + i * g
    tanh_c = jnp.tanh(c)
    dz_o = d_h * tanh_c * o * (1 - o)
    d_c = d_c + d_h * o * (1 - tanh_c * tanh_c)
    if self.use_peepholes:
      d_c = d_c + dz_o * consts['peephole_o']
    dz_i = d_c * g * i * (1 - i)
    dz_f = d_c * c_prev * f * (1 - f)
    dz_g = d_c * i * (1 - g * g)
    d_c_prev = d_c * f
    if self.use_peepholes:
      d_c_prev = d_c_prev + dz_i * consts['peephole_i'] + dz_f * consts['peephole_f']
    dz = jnp.concatenate([dz_i, dz_f, dz_g, dz_o], axis=-1)           # [B, 4H]
    return (d_c_prev, dz @ consts['recurrent_kernel'].T), dz

  def input_cotangent(self, dz: Array) -> Array:
    """The cotangent of the input side `x_t W + b` from `backward`'s dz: dz itself."""
    return dz

  def gradients(self, params: Params, consts: Params, inputs: Array, residuals: Any,
                h_prev: Array, dz: Array) -> tuple[Params, Array]:
    (i, f, g, _), c_prev = residuals
    grads, d_inputs = fused_scan.input_gradients(params, inputs, dz)
    grads['recurrent_kernel'] = fused_scan.matmul_tn(h_prev, dz)
    if self.use_peepholes:
      dz_i, dz_f, _, dz_o = jnp.split(dz, 4, axis=-1)                 # [B, T, H] each
      grads['peephole_i'] = fused_scan.sum_bt(dz_i * c_prev)
      grads['peephole_f'] = fused_scan.sum_bt(dz_f * c_prev)
      grads['peephole_o'] = fused_scan.sum_bt(dz_o * (f * c_prev + i * g))
    return grads, d_inputs
