"""Gated recurrent unit (Cho et al., 2014, arXiv:1406.1078)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import initializers

Array = jax.Array


class GRUCell(nn.RNNCellBase):
  """GRU cell:

    r = σ(W_r x_t + U_r h_{t-1} + b_r)
    z = σ(W_z x_t + U_z h_{t-1} + b_z)
    h̃ = tanh(W_n x_t + U_n (r ⊙ h_{t-1}) + b_n)          reset_after=False (Cho et al.)
    h̃ = tanh(W_n x_t + b_n + r ⊙ (U_n h_{t-1} + b_u))    reset_after=True (cuDNN, Keras,
                                                          PyTorch, flax.linen.GRUCell)
    h_t = (1 − z) ⊙ h_{t-1} + z ⊙ h̃

  Note z weights the *new* state here, as in Cho et al. and DESIGN.md; PyTorch
  and flax write `h_t = (1 − z) ⊙ h̃ + z ⊙ h_{t-1}`, so their z is our 1 − z
  (negate the z block of the kernels and bias to move weights across).

  Parameter layout (gate order r, z, n, as PyTorch):
    input_kernel      [F, 3H]   columns [r | z | n]
    recurrent_kernel  [H, 3H]
    bias              [3H]
    recurrent_bias    [H]       b_u, only with reset_after

  Attributes:
    features: hidden size H.
    reset_after: apply the reset gate after the recurrent matmul (see above).
    kernel_init / recurrent_kernel_init / bias_init: initialisers.
    dtype: computation dtype (None: from inputs); param_dtype: parameter dtype.
  """

  features: int
  reset_after: bool = False
  kernel_init: initializers.Initializer = nn.initializers.lecun_normal()
  recurrent_kernel_init: initializers.Initializer = nn.initializers.orthogonal()
  bias_init: initializers.Initializer = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, carry: Array, inputs: Array) -> tuple[Array, Array]:
    """One step. `carry: [..., H]`, `inputs: [..., F]` -> `(h_t, h_t)`."""
    h = carry
    hidden = self.features
    w = self.param('input_kernel', self.kernel_init, (inputs.shape[-1], 3 * hidden), self.param_dtype)
    u = self.param('recurrent_kernel', self.recurrent_kernel_init, (hidden, 3 * hidden), self.param_dtype)
    b = self.param('bias', self.bias_init, (3 * hidden,), self.param_dtype)
    if self.reset_after:
      b_u = self.param('recurrent_bias', self.bias_init, (hidden,), self.param_dtype)
      inputs, h, w, u, b, b_u = nn.dtypes.promote_dtype(inputs, h, w, u, b, b_u, dtype=self.dtype)
    else:
      inputs, h, w, u, b = nn.dtypes.promote_dtype(inputs, h, w, u, b, dtype=self.dtype)

    x_proj = inputs @ w + b                                   # [..., 3H]
    x_r, x_z, x_n = jnp.split(x_proj, 3, axis=-1)             # [..., H] each
    if self.reset_after:
      h_proj = h @ u                                          # [..., 3H]
      h_r, h_z, h_n = jnp.split(h_proj, 3, axis=-1)
      r = jax.nn.sigmoid(x_r + h_r)
      z = jax.nn.sigmoid(x_z + h_z)
      candidate = jnp.tanh(x_n + r * (h_n + b_u))
    else:
      h_rz = h @ u[:, : 2 * hidden]                           # [..., 2H]
      h_r, h_z = jnp.split(h_rz, 2, axis=-1)
      r = jax.nn.sigmoid(x_r + h_r)
      z = jax.nn.sigmoid(x_z + h_z)
      candidate = jnp.tanh(x_n + (r * h) @ u[:, 2 * hidden:])
    new_h = (1.0 - z) * h + z * candidate
    return new_h, new_h

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Array:
    """Zeros `[*batch, H]` for inputs of shape `[*batch, F]`."""
    del rng
    return jnp.zeros(input_shape[:-1] + (self.features,), self.param_dtype)

  @property
  def num_feature_axes(self) -> int:
    return 1
