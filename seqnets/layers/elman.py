"""Elman (simple) recurrent cell (Elman, 1990, "Finding structure in time")."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import cell_regularizers
from seqnets.layers import fused_cell
from seqnets.layers import fused_scan
from seqnets.layers import initializers

Array = jax.Array
Params = dict[str, Array]


class ElmanCell(fused_cell.RegularizedCell):
  """Elman cell: `h_t = φ(W x_t + U h_{t-1} + b)`, φ = `activation_fn` (tanh by default).

  Parameter layout (same as `torch.nn.RNN` transposed: `W = weight_ih_l0.T`,
  `U = weight_hh_l0.T`, `b = bias_ih_l0 + bias_hh_l0`):
    input_kernel      W  [F, H]
    recurrent_kernel  U  [H, H]
    bias              b  [H]
    hidden_bias          [H]       only with `hidden_bias=True`: the step uses b + hidden_bias

  The step is `scan_kernel()`'s (see `_ElmanKernel`, `fused_cell.FusedCell`); inside
  `sn.RNN` it runs through `fused_scan` with a hand-written backward pass.

  Regularisers (all off by default; papers, `deterministic` and `masks` as in `LSTMCell`):
    update dropout   h_t = d(φ(W x_t + U h_{t-1} + b))
    zoneout          h_t = m ⊙ h_{t-1} + (1 − m) ⊙ h̃_t (h̃_t: the step above)
    weight drop      U ⊙ M, one M per call (per sequence in sn.RNN)
    layer norm       h̃_t = φ(LN(W x_t) + LN(U h_{t-1}) + b), gains `input_norm_scale`,
                     `recurrent_norm_scale` [H]

  Attributes:
    features: hidden size H.
    activation_fn: φ, e.g. `jnp.tanh` or `jax.nn.relu`.
    hidden_bias: a second bias on the recurrent side (PyTorch's `bias_hh`), see `LSTMCell`.
    kernel_init / recurrent_kernel_init / bias_init: initialisers.
    dtype / param_dtype: computation and parameter dtypes (see `fused_cell.FusedCell`).
    update_dropout_rate / zoneout_rate / weight_drop_rate / layer_norm / deterministic:
      the regularisers and their evaluation mode (`cell_regularizers`).

  Dtypes: as every `FusedCell`.
  """

  features: int
  activation_fn: Callable[[Array], Array] = jnp.tanh
  kernel_init: initializers.Initializer = nn.initializers.lecun_normal()
  recurrent_kernel_init: initializers.Initializer = nn.initializers.orthogonal()
  bias_init: initializers.Initializer = nn.initializers.zeros_init()
  hidden_bias: bool = False
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def cell_params(self, num_features: int) -> Params:
    """Declares (at init) and returns the parameters for `F = num_features` inputs."""
    params = fused_cell.affine_params(self, num_features, self.gates)
    if self.hidden_bias:
      params['bias'] = params['bias'] + self.param(
          'hidden_bias', nn.initializers.zeros_init(), (self.features,), self.param_dtype)
    if self.layer_norm:
      params.update(cell_regularizers.norm_params(self, self.gates))
    return params

  @nn.nowrap
  def scan_kernel(self) -> _ElmanKernel:
    """Step, reverse step and gradients (see `fused_scan.fused_scan`). Carry: h `[B, H]`."""
    return _ElmanKernel(self.activation_fn)

  def _regularized_step(self, params: Params, h: Array, x: Array, deterministic: bool | None,
                        masks: dict[str, Array] | None) -> tuple[Array, Array]:
    """The step with the regularisers (plain autodiff), see the class docstring."""
    regs = cell_regularizers
    deterministic, masks = regs.prepare_step(self, deterministic, masks)
    h_in, u = regs.masked_recurrence(params, h, masks)
    a_x, a_h = x @ params['input_kernel'], h_in @ u
    if self.layer_norm:
      a_x = regs.layer_norm(a_x, params['input_norm_scale'])
      a_h = regs.layer_norm(a_h, params['recurrent_norm_scale'])
    new_h = self.activation_fn(a_x + a_h + params['bias'])
    new_h = regs.dropout(self, new_h, self.update_dropout_rate, deterministic, 'update_mask')
    new_h = regs.zoneout(self, h, new_h, self.zoneout_rate, deterministic, 'zoneout_h_mask')
    return new_h, new_h


@dataclasses.dataclass(frozen=True)
class _ElmanKernel:
  """Elman step, reverse step and gradients for `fused_scan.fused_scan`.

  Forward: `x_t W + h U + b` as two matmuls (one `[x_t, h] @ [W; U]` matmul
  measured the same). Residuals per step: none for tanh (tanh' = 1 − h_t², and
  h_t is the output), otherwise the pre-activation a_t. Hoisted
  (`fused_scan.HoistedScanKernel`): `X W + b` `[B, T, H]` before the loop, `h U`
  in it.
  """

  activation_fn: Callable[[Array], Array]

  def hidden(self, carry: Array) -> Array:
    return carry

  def prepare(self, params: Params) -> Params:
    return params

  def forward(self, consts: Params, carry: Array, x_t: Array,
              keep_residuals: bool) -> tuple[Array, Array, Any]:
    a = x_t @ consts['input_kernel'] + carry @ consts['recurrent_kernel'] + consts['bias']
    return self._activate(a, keep_residuals)

  def project(self, consts: Params, inputs: Array) -> Array:
    return fused_scan.input_projection(consts, inputs)                 # [B, T, H]

  def forward_projected(self, consts: Params, carry: Array, projected_t: Array,
                        keep_residuals: bool) -> tuple[Array, Array, Any]:
    return self._activate(projected_t + carry @ consts['recurrent_kernel'], keep_residuals)

  def _activate(self, a: Array, keep_residuals: bool) -> tuple[Array, Array, Any]:
    """The step from its pre-activation `a [B, H]`."""
    new_h = self.activation_fn(a)
    residuals = a if keep_residuals and self.activation_fn is not jnp.tanh else None
    return new_h, new_h, residuals

  def backward(self, consts: Params, residuals: Any, y_t: Array, h_prev: Array,
               d_carry: Array, d_y: Array) -> tuple[Array, Array]:
    del h_prev
    d_h = d_carry + d_y
    if self.activation_fn is jnp.tanh:
      d_a = d_h * (1 - y_t * y_t)
    else:
      _, activation_vjp = jax.vjp(self.activation_fn, residuals)
      (d_a,) = activation_vjp(d_h)
    return d_a @ consts['recurrent_kernel'].T, d_a

  def input_cotangent(self, dz: Array) -> Array:
    """The cotangent of the input side `x_t W + b` from `backward`'s dz: dz itself."""
    return dz

  def gradients(self, params: Params, consts: Params, inputs: Array, residuals: Any,
                h_prev: Array, dz: Array) -> tuple[Params, Array]:
    del consts, residuals
    grads, d_inputs = fused_scan.input_gradients(params, inputs, dz)
    grads['recurrent_kernel'] = fused_scan.matmul_tn(h_prev, dz)
    return grads, d_inputs
