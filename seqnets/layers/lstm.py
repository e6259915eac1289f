"""LSTM cell with forget gate and optional peepholes.

Hochreiter & Schmidhuber (1997), "Long short-term memory"; forget gate: Gers,
Schmidhuber & Cummins (2000); peepholes: Gers & Schmidhuber (2000), "Recurrent
nets that time and count". Neither flax, Keras nor PyTorch ships peepholes,
which the classic aⁿbⁿ results used; that is why this cell is written here.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import initializers

Array = jax.Array
LSTMCarry = tuple[Array, Array]


class LSTMCell(nn.RNNCellBase):
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
    bias              [4H]      default: 0 except `forget_bias` on the f block
    peephole_i, peephole_f, peephole_o   [H] each (only with peepholes)

  Attributes:
    features: hidden size H.
    use_peepholes: add the diagonal peephole connections p_i, p_f, p_o.
    forget_bias: initial value of b_f (ignored when `bias_init` is given).
    kernel_init / recurrent_kernel_init / bias_init / peephole_init: initialisers.
    dtype: computation dtype (None: from inputs); param_dtype: parameter dtype.
  """

  features: int
  use_peepholes: bool = False
  forget_bias: float = 1.0
  kernel_init: initializers.Initializer = nn.initializers.lecun_normal()
  recurrent_kernel_init: initializers.Initializer = nn.initializers.orthogonal()
  bias_init: initializers.Initializer | None = None
  peephole_init: initializers.Initializer = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, carry: LSTMCarry, inputs: Array) -> tuple[LSTMCarry, Array]:
    """One step. `carry = (c, h)`, each `[..., H]`; `inputs: [..., F]` -> `((c_t, h_t), h_t)`."""
    c, h = carry
    hidden = self.features
    bias_init = self.bias_init or initializers.gate_bias_init((0.0, self.forget_bias, 0.0, 0.0))
    w = self.param('input_kernel', self.kernel_init, (inputs.shape[-1], 4 * hidden), self.param_dtype)
    u = self.param('recurrent_kernel', self.recurrent_kernel_init, (hidden, 4 * hidden), self.param_dtype)
    b = self.param('bias', bias_init, (4 * hidden,), self.param_dtype)
    if self.use_peepholes:
      p_i, p_f, p_o = (
          self.param(f'peephole_{gate}', self.peephole_init, (hidden,), self.param_dtype)
          for gate in 'ifo'
      )
      inputs, c, h, w, u, b, p_i, p_f, p_o = nn.dtypes.promote_dtype(
          inputs, c, h, w, u, b, p_i, p_f, p_o, dtype=self.dtype)
    else:
      inputs, c, h, w, u, b = nn.dtypes.promote_dtype(inputs, c, h, w, u, b, dtype=self.dtype)

    z = inputs @ w + h @ u + b                          # [..., 4H]
    z_i, z_f, z_g, z_o = jnp.split(z, 4, axis=-1)       # [..., H] each
    if self.use_peepholes:
      z_i = z_i + p_i * c
      z_f = z_f + p_f * c
    new_c = jax.nn.sigmoid(z_f) * c + jax.nn.sigmoid(z_i) * jnp.tanh(z_g)
    if self.use_peepholes:
      z_o = z_o + p_o * new_c
    new_h = jax.nn.sigmoid(z_o) * jnp.tanh(new_c)
    return (new_c, new_h), new_h

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> LSTMCarry:
    """Zeros `(c, h)`, each `[*batch, H]`, for inputs of shape `[*batch, F]`."""
    del rng
    shape = input_shape[:-1] + (self.features,)
    return jnp.zeros(shape, self.param_dtype), jnp.zeros(shape, self.param_dtype)

  @property
  def num_feature_axes(self) -> int:
    return 1
