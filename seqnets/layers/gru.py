"""Gated recurrent unit (Cho et al., 2014, arXiv:1406.1078)."""

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
Params = dict[str, Array]


def default_bias_init(update_bias: float | str, chrono_max_length: int | None
                      ) -> initializers.Initializer:
  """The GRU's bias `[3H]` (gates r, z, n): `(0, update_bias, 0)`, or with
  `update_bias='chrono'` b_z = −log u, u ~ U(1, chrono_max_length − 1).
  ValueError for a chrono setting without the other."""
  if initializers.uses_chrono('update_bias', update_bias, chrono_max_length):
    return initializers.chrono_gate_bias_init((0.0, '-' + initializers.CHRONO, 0.0),
                                              chrono_max_length)
  return initializers.gate_bias_init((0.0, update_bias, 0.0))


class GRUCell(fused_cell.RegularizedCell):
  """GRU cell:

    r = σ(W_r x_t + U_r h_{t-1} + b_r)
    z = σ(W_z x_t + U_z h_{t-1} + b_z)
    h̃ = tanh(W_n x_t + U_n (r ⊙ h_{t-1}) + b_n)          reset_after=False (Cho et al.)
    h̃ = tanh(W_n x_t + b_n + r ⊙ (U_n h_{t-1} + b_u))    reset_after=True (cuDNN, Keras,
                                                          PyTorch, flax.linen.GRUCell)
    h_t = (1 − z) ⊙ h_{t-1} + z ⊙ h̃

  Note z weights the *new* state here, as in Cho et al. (2014); PyTorch
  and flax write `h_t = (1 − z) ⊙ h̃ + z ⊙ h_{t-1}`, so their z is our 1 − z
  (negate the z block of the kernels and bias to move weights across).

  Parameter layout (gate order r, z, n, as PyTorch):
    input_kernel      [F, 3H]   columns [r | z | n]
    recurrent_kernel  [H, 3H]
    bias              [3H]      default: 0 except `update_bias` on the z block (chrono: b_z
                                drawn per unit, see below)
    recurrent_bias    [H]       b_u, only with reset_after
    hidden_bias       [3H]      only with `hidden_bias=True`, in place of recurrent_bias:
                                [b_hr | b_hz | b_u]; the step uses bias + [b_hr | b_hz | 0]
                                (reset_after) or bias + hidden_bias (reset_before)

  The step is `scan_kernel()`'s (see `_GRUKernel`, `fused_cell.FusedCell`); inside
  `sn.RNN` it runs through `fused_scan` with a hand-written backward pass.

  Regularisers (all off by default; papers, `deterministic` and `masks` as in `LSTMCell`):
    update dropout   h_t = (1 − z) ⊙ h_{t-1} + z ⊙ d(h̃)
    zoneout          h_t = m ⊙ h_{t-1} + (1 − m) ⊙ h̃_t (h̃_t: the step above)
    weight drop      U ⊙ M, one M per call (per sequence in sn.RNN)
    layer norm       W x_t, U_{r,z} h_{t-1} and U_n h_{t-1} (or U_n (r ⊙ h_{t-1})) each
                     through LN per gate block before b (b_u) is added; gains
                     `input_norm_scale`, `recurrent_norm_scale` [3H]

  Attributes:
    features: hidden size H.
    reset_after: apply the reset gate after the recurrent matmul (see above).
    hidden_bias: a second bias on the recurrent side, initialised to 0, as PyTorch and
      cuDNN keep (`bias_hh`); the same function class, kept so that imported weights
      go back unchanged (`seqnets.interop`).
    update_bias: initial value of b_z, or 'chrono' (the GRU's form of Tallec & Ollivier's
      chrono initialisation): b_z = −log u, u ~ U(1, chrono_max_length − 1) per unit, so
      unit j starts by keeping about 1 − 1/u_j of its state each step. Ignored when
      `bias_init` is given.
    chrono_max_length: T_max of the chrono initialisation (only with update_bias='chrono').
    kernel_init / recurrent_kernel_init / bias_init: initialisers (`bias_init` None: the
      biases above; `recurrent_bias` starts at 0).
    dtype / param_dtype: computation and parameter dtypes (see `fused_cell.FusedCell`).
    update_dropout_rate / zoneout_rate / weight_drop_rate / layer_norm / deterministic:
      the regularisers and their evaluation mode (`cell_regularizers`).

  Dtypes: as every `FusedCell`.
  """

  features: int
  reset_after: bool = False
  hidden_bias: bool = False
  kernel_init: initializers.Initializer = nn.initializers.lecun_normal()
  recurrent_kernel_init: initializers.Initializer = nn.initializers.orthogonal()
  update_bias: float | Literal['chrono'] = 0.0
  chrono_max_length: int | None = None
  bias_init: initializers.Initializer | None = None
  dtype: Any = None
  param_dtype: Any = jnp.float32

  gates = 3

  @nn.compact
  def cell_params(self, num_features: int) -> Params:
    """Declares (at init) and returns the parameters for `F = num_features` inputs."""
    hidden = self.features
    params = fused_cell.affine_params(self, num_features, self.gates,
                                      self.bias_init or default_bias_init(self.update_bias,
                                                                          self.chrono_max_length))
    if self.hidden_bias:
      b_h = self.param('hidden_bias', nn.initializers.zeros_init(), (3 * hidden,),
                       self.param_dtype)
      if self.reset_after:
        params['bias'] = params['bias'] + jnp.concatenate([b_h[:2 * hidden],
                                                           jnp.zeros_like(b_h[2 * hidden:])])
        params['recurrent_bias'] = b_h[2 * hidden:]
      else:
        params['bias'] = params['bias'] + b_h
    elif self.reset_after:
      params['recurrent_bias'] = self.param(
          'recurrent_bias', initializers.in_float32(self.bias_init or nn.initializers.zeros_init()),
          (hidden,), self.param_dtype)
    if self.layer_norm:
      params.update(cell_regularizers.norm_params(self, self.gates))
    return params

  @nn.nowrap
  def scan_kernel(self) -> _GRUKernel:
    """Step, reverse step and gradients (see `fused_scan.fused_scan`). Carry: h `[B, H]`."""
    return _GRUKernel(self.reset_after)

  def _regularized_step(self, params: Params, h: Array, x: Array, deterministic: bool | None,
                        masks: dict[str, Array] | None) -> tuple[Array, Array]:
    """The step with the regularisers (plain autodiff), see the class docstring."""
    regs = cell_regularizers
    deterministic, masks = regs.prepare_step(self, deterministic, masks)
    two = 2 * self.features                           # the r and z blocks
    rz, n = slice(None, two), slice(two, None)

    def norm(a, gains, blocks):                        # LN per gate block of H units
      if not self.layer_norm:
        return a
      return regs.layer_norm(a, params[gains][blocks], groups=a.shape[-1] // self.features)

    h_in, u = regs.masked_recurrence(params, h, masks)
    a_x = norm(x @ params['input_kernel'], 'input_norm_scale', slice(None)) + params['bias']
    a_rz = norm(h_in @ u[:, rz], 'recurrent_norm_scale', rz)                  # [B, 2H]
    r, z = jnp.split(jax.nn.sigmoid(a_x[..., rz] + a_rz), 2, axis=-1)
    if self.reset_after:
      a_n = r * (norm(h_in @ u[:, n], 'recurrent_norm_scale', n) + params['recurrent_bias'])
    else:
      a_n = norm((r * h_in) @ u[:, n], 'recurrent_norm_scale', n)
    candidate = jnp.tanh(a_x[..., n] + a_n)
    candidate = regs.dropout(self, candidate, self.update_dropout_rate, deterministic,
                             'update_mask')
    new_h = (1 - z) * h + z * candidate
    new_h = regs.zoneout(self, h, new_h, self.zoneout_rate, deterministic, 'zoneout_h_mask')
    return new_h, new_h


@dataclasses.dataclass(frozen=True)
class _GRUKernel:
  """GRU step, reverse step and gradients for `fused_scan.fused_scan`.

  Forward: one matmul per gate, as for the LSTM (see
  `_LSTMKernel`): `[x_t, h] @ [W_r; U_r]`, `[x_t, h] @ [W_z; U_z]`,
  `x_t @ W_n`, and `h @ U_n` (reset_after) or `(r ⊙ h) @ U_n`.
  Residuals per step, each `[B, H]`: r, z, h̃, and for reset_after also
  `U_n h_{t-1} + b_u`.

  Hoisted (`fused_scan.HoistedScanKernel`): `project` is `X W + b` `[B, T, 3H]`
  for all steps; per step, reset_after does one `h_{t-1} U` `[B, H] @ [H, 3H]`
  matmul, reset_before one `h_{t-1} [U_r | U_z]` `[H, 2H]` matmul and, once r is
  known, `(r ⊙ h_{t-1}) U_n`. The rest of the step (`_update`) and the residuals
  are those of `forward`.
  """

  reset_after: bool

  def hidden(self, carry: Array) -> Array:
    return carry

  def prepare(self, params: Params) -> Params:
    w_r, w_z, w_n = jnp.split(params['input_kernel'], 3, axis=-1)
    u_r, u_z, u_n = jnp.split(params['recurrent_kernel'], 3, axis=-1)
    b_r, b_z, b_n = jnp.split(params['bias'], 3)
    return dict(params, gate_kernels=(jnp.concatenate([w_r, u_r], axis=0),
                                      jnp.concatenate([w_z, u_z], axis=0), w_n, u_n),
                gate_biases=(b_r, b_z, b_n),
                recurrent_kernel_rz=jnp.concatenate([u_r, u_z], axis=-1))      # [H, 2H]

  def forward(self, consts: Params, carry: Array, x_t: Array,
              keep_residuals: bool) -> tuple[Array, Array, Any]:
    h = carry
    k_r, k_z, w_n, u_n = consts['gate_kernels']
    b_r, b_z, b_n = consts['gate_biases']
    x_h = jnp.concatenate([x_t, h], axis=-1)                            # [B, F + H]
    h_n = h @ u_n + consts['recurrent_bias'] if self.reset_after else None
    return self._update(consts, h, x_h @ k_r + b_r, x_h @ k_z + b_z, x_t @ w_n + b_n, h_n,
                        keep_residuals)

  def project(self, consts: Params, inputs: Array) -> Array:
    return fused_scan.input_projection(consts, inputs)                 # [B, T, 3H]

  def forward_projected(self, consts: Params, carry: Array, projected_t: Array,
                        keep_residuals: bool) -> tuple[Array, Array, Any]:
    h = carry
    x_r, x_z, x_n = jnp.split(projected_t, 3, axis=-1)
    if self.reset_after:
      h_r, h_z, h_n = jnp.split(h @ consts['recurrent_kernel'], 3, axis=-1)   # [B, 3H]
      h_n = h_n + consts['recurrent_bias']
    else:
      h_r, h_z = jnp.split(h @ consts['recurrent_kernel_rz'], 2, axis=-1)     # [B, 2H]
      h_n = None
    return self._update(consts, h, x_r + h_r, x_z + h_z, x_n, h_n, keep_residuals)

  def _update(self, consts: Params, h: Array, a_r: Array, a_z: Array, x_n: Array,
              h_n: Array | None, keep_residuals: bool) -> tuple[Array, Array, Any]:
    """The step from the pre-activations of r and z, the input side of h̃'s
    (`x_t W_n + b_n`) and, for reset_after, `h_{t-1} U_n + b_u` (all `[B, H]`)."""
    r, z = jax.nn.sigmoid(a_r), jax.nn.sigmoid(a_z)
    if self.reset_after:
      candidate = jnp.tanh(x_n + r * h_n)
    else:
      candidate = jnp.tanh(x_n + (r * h) @ consts['gate_kernels'][3])
    new_h = (1 - z) * h + z * candidate
    residuals = (r, z, candidate, h_n) if keep_residuals else None
    return new_h, new_h, residuals

  def backward(self, consts: Params, residuals: Any, y_t: Array, h_prev: Array,
               d_carry: Array, d_y: Array) -> tuple[Array, Any]:
    del y_t
    r, z, candidate, h_n = residuals
    hidden = h_prev.shape[-1]
    u = consts['recurrent_kernel']
    d_h = d_carry + d_y
    d_h_prev = d_h * (1 - z)
    dz_z = d_h * (candidate - h_prev) * z * (1 - z)
    dz_n = d_h * z * (1 - candidate * candidate)       # d(pre-activation of h̃)
    if self.reset_after:
      dz_r = dz_n * h_n * r * (1 - r)
      d_h_n = dz_n * r                                 # d(U_n h + b_u)
      dz_h = jnp.concatenate([dz_r, dz_z, d_h_n], axis=-1)            # [B, 3H]
      return d_h_prev + dz_h @ u.T, (dz_h, dz_n)
    d_rh = dz_n @ u[:, 2 * hidden:].T                  # d(r ⊙ h)
    dz_r = d_rh * h_prev * r * (1 - r)
    dz_rz = jnp.concatenate([dz_r, dz_z], axis=-1)                    # [B, 2H]
    d_h_prev = d_h_prev + d_rh * r + dz_rz @ u[:, :2 * hidden].T
    return d_h_prev, (dz_rz, dz_n)

  def input_cotangent(self, dz: Any) -> Array:
    """The cotangent of the input side `x_t W + b` `[..., 3H]` from `backward`'s dz (one
    step's or stacked)."""
    if self.reset_after:
      dz_h, dz_n = dz
      return jnp.concatenate([dz_h[..., :2 * dz_n.shape[-1]], dz_n], axis=-1)
    return jnp.concatenate(dz, axis=-1)

  def gradients(self, params: Params, consts: Params, inputs: Array, residuals: Any,
                h_prev: Array, dz: Any) -> tuple[Params, Array]:
    del consts
    r = residuals[0]
    hidden = h_prev.shape[-1]
    dz_x = self.input_cotangent(dz)                                    # [B, T, 3H]
    grads, d_inputs = fused_scan.input_gradients(params, inputs, dz_x)
    if self.reset_after:
      dz_h, _ = dz
      grads['recurrent_kernel'] = fused_scan.matmul_tn(h_prev, dz_h)
      grads['recurrent_bias'] = fused_scan.sum_bt(dz_h[..., 2 * hidden:])
      return grads, d_inputs
    dz_rz, dz_n = dz
    grads['recurrent_kernel'] = jnp.concatenate(                       # [H, 3H]
        [fused_scan.matmul_tn(h_prev, dz_rz), fused_scan.matmul_tn(r * h_prev, dz_n)], axis=-1)
    return grads, d_inputs
