"""Elman (simple) recurrent cell (Elman, 1990, "Finding structure in time")."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import initializers
from seqnets.layers import rnn

Array = jax.Array
Params = dict[str, Array]


class ElmanCell(nn.RNNCellBase):
  """Elman cell: `h_t = φ(W x_t + U h_{t-1} + b)`, φ = `activation_fn` (tanh by default).

  Parameter layout (same as `torch.nn.RNN` transposed: `W = weight_ih_l0.T`,
  `U = weight_hh_l0.T`, `b = bias_ih_l0 + bias_hh_l0`):
    input_kernel      W  [F, H]
    recurrent_kernel  U  [H, H]
    bias              b  [H]

  Inside `sn.RNN` the cell runs through `scan_kernel()` (see `_ElmanKernel`)
  with a hand-written backward pass.

  Attributes:
    features: hidden size H.
    activation_fn: φ, e.g. `jnp.tanh` or `jax.nn.relu`.
    kernel_init / recurrent_kernel_init / bias_init: initialisers.
    dtype: computation dtype (None: from inputs); param_dtype: parameter dtype.
  """

  features: int
  activation_fn: Callable[[Array], Array] = jnp.tanh
  kernel_init: initializers.Initializer = nn.initializers.lecun_normal()
  recurrent_kernel_init: initializers.Initializer = nn.initializers.orthogonal()
  bias_init: initializers.Initializer = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def cell_params(self, num_features: int) -> Params:
    """Declares (at init) and returns the parameters for `F = num_features` inputs."""
    return {
        'input_kernel': self.param('input_kernel', self.kernel_init,
                                   (num_features, self.features), self.param_dtype),
        'recurrent_kernel': self.param('recurrent_kernel', self.recurrent_kernel_init,
                                       (self.features, self.features), self.param_dtype),
        'bias': self.param('bias', self.bias_init, (self.features,), self.param_dtype),
    }

  def __call__(self, carry: Array, inputs: Array) -> tuple[Array, Array]:
    """One step. `carry: [..., H]`, `inputs: [..., F]` -> `(h_t, h_t)`."""
    params = self.cell_params(inputs.shape[-1])
    names = sorted(params)
    inputs, h, *values = nn.dtypes.promote_dtype(
        inputs, carry, *(params[n] for n in names), dtype=self.dtype)
    new_h, _, _ = self.scan_kernel().forward(dict(zip(names, values)), h, inputs, False)
    return new_h, new_h

  @nn.nowrap
  def scan_kernel(self) -> _ElmanKernel:
    """Step, reverse step and gradients for `sn.RNN` (see `rnn.fused_scan`)."""
    return _ElmanKernel(self.activation_fn)

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Array:
    """Zeros `[*batch, H]` for inputs of shape `[*batch, F]`."""
    del rng
    return jnp.zeros(input_shape[:-1] + (self.features,), self.param_dtype)

  @property
  def num_feature_axes(self) -> int:
    return 1


@dataclasses.dataclass(frozen=True)
class _ElmanKernel:
  """Elman step, reverse step and gradients for `rnn.fused_scan`.

  Forward: `x_t W + h U + b` as two matmuls (one `[x_t, h] @ [W; U]` matmul
  measured the same). Residuals per step: none for tanh (tanh' = 1 − h_t², and
  h_t is the output), otherwise the pre-activation a_t.
  """

  activation_fn: Callable[[Array], Array]

  def hidden(self, carry: Array) -> Array:
    return carry

  def prepare(self, params: Params) -> Params:
    return params

  def forward(self, consts: Params, carry: Array, x_t: Array,
              keep_residuals: bool) -> tuple[Array, Array, Any]:
    h = carry
    a = x_t @ consts['input_kernel'] + h @ consts['recurrent_kernel'] + consts['bias']
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

  def gradients(self, params: Params, consts: Params, inputs: Array, residuals: Any,
                h_prev: Array, dz: Array) -> tuple[Params, Array]:
    del consts, residuals
    grads, d_inputs = rnn.input_gradients(params, inputs, dz)
    grads['recurrent_kernel'] = rnn.matmul_tn(h_prev, dz)
    return grads, d_inputs
