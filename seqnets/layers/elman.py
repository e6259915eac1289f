"""Elman (simple) recurrent cell (Elman, 1990, "Finding structure in time")."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import initializers

Array = jax.Array


class ElmanCell(nn.RNNCellBase):
  """Elman cell: `h_t = φ(W x_t + U h_{t-1} + b)`, φ = `activation_fn` (tanh by default).

  Parameter layout (same as `torch.nn.RNN` transposed: `W = weight_ih_l0.T`,
  `U = weight_hh_l0.T`, `b = bias_ih_l0 + bias_hh_l0`):
    input_kernel      W  [F, H]
    recurrent_kernel  U  [H, H]
    bias              b  [H]

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
  def __call__(self, carry: Array, inputs: Array) -> tuple[Array, Array]:
    """One step. `carry: [..., H]`, `inputs: [..., F]` -> `(h_t, h_t)`."""
    h = carry
    w = self.param('input_kernel', self.kernel_init, (inputs.shape[-1], self.features), self.param_dtype)
    u = self.param('recurrent_kernel', self.recurrent_kernel_init, (self.features, self.features), self.param_dtype)
    b = self.param('bias', self.bias_init, (self.features,), self.param_dtype)
    inputs, h, w, u, b = nn.dtypes.promote_dtype(inputs, h, w, u, b, dtype=self.dtype)
    new_h = self.activation_fn(inputs @ w + h @ u + b)
    return new_h, new_h

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Array:
    """Zeros `[*batch, H]` for inputs of shape `[*batch, F]`."""
    del rng
    return jnp.zeros(input_shape[:-1] + (self.features,), self.param_dtype)

  @property
  def num_feature_axes(self) -> int:
    return 1
