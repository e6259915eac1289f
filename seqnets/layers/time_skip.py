"""Recurrent cell with a skip connection through time (NARX-style delays: Lin, Horne, Tiňo &
Giles 1996, "Learning long-term dependencies in NARX recurrent neural networks")."""

from __future__ import annotations

import numbers
from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import initializers
from seqnets.layers import fused_cell

Array = jax.Array
Params = dict[str, Array]
SkipCarry = tuple[Array, Array]


class SkipRNNCell(nn.RNNCellBase):
  """Elman cell with a k-step skip: `h_t = φ(W x_t + U h_{t-1} + S h_{t-k} + b)`, φ = tanh
  by default, states before the sequence (t ≤ 0) zero unless given as the initial carry.

  The skip gives the gradient a path that crosses k steps per matrix product,
  so it decays over T / k factors instead of T.

  Parameter layout:
    input_kernel      W  [F, H]
    recurrent_kernel  U  [H, H]   orthogonal by default
    skip_kernel       S  [H, H]   orthogonal by default
    bias              b  [H]

  Carry `(past, h)`: `past [*batch, k − 1, H]` holds `h_{t-k+1}, …, h_{t-1}`
  oldest first (`past[..., 0, :]` is the state the next step reaches back to)
  and `h [*batch, H]` is h_t. The final hidden state is the carry's last
  element, as for the LSTM's `(c, h)`: `carry[-1]`, which is what
  `attention.hidden_state` and the models built on it take.
  Output y_t = h_t `[*batch, H]`. The step runs through a plain scan in
  `sn.RNN` (no fused kernel).

  Attributes:
    features: hidden size H.
    skip: the delay k ≥ 2.
    activation_fn: φ.
    kernel_init / recurrent_kernel_init / skip_kernel_init / bias_init: initialisers.
    dtype: computation dtype (None: promoted from inputs, carry and parameters).
    param_dtype: parameter dtype.

  Dtypes as `ElmanCell`: the carry keeps the dtype it is given, outputs are in
  the computation dtype.
  """

  features: int
  skip: int = 2
  activation_fn: Callable[[Array], Array] = jnp.tanh
  kernel_init: initializers.Initializer = nn.initializers.lecun_normal()
  recurrent_kernel_init: initializers.Initializer = nn.initializers.orthogonal()
  skip_kernel_init: initializers.Initializer = nn.initializers.orthogonal()
  bias_init: initializers.Initializer = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, carry: SkipCarry, inputs: Array) -> tuple[SkipCarry, Array]:
    """One step. `carry: (past [..., k − 1, H], h [..., H])`, `inputs: [..., F]` ->
    `((past', h_t), h_t)`."""
    self._check_skip()
    past, h = carry
    shape = (self.features, self.features)
    param = lambda name, init, shape: self.param(name, initializers.in_float32(init), shape,
                                                 self.param_dtype)
    w = param('input_kernel', self.kernel_init, (inputs.shape[-1], self.features))
    u = param('recurrent_kernel', self.recurrent_kernel_init, shape)
    s = param('skip_kernel', self.skip_kernel_init, shape)
    b = param('bias', self.bias_init, (self.features,))
    x, h_prev, past_c, w, u, s, b = nn.dtypes.promote_dtype(inputs, h, past, w, u, s, b,
                                                            dtype=self.dtype)
    new_h = self.activation_fn(x @ w + h_prev @ u + past_c[..., 0, :] @ s + b)
    new_past = jnp.concatenate([past[..., 1:, :], h[..., None, :]], axis=-2)
    return (new_past, new_h.astype(jnp.result_type(h))), new_h

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> SkipCarry:
    """Zeros `(past [*batch, k − 1, H], h [*batch, H])` in the carry dtype for inputs of
    shape `[*batch, F]`."""
    del rng
    self._check_skip()
    dtype = fused_cell.carry_dtype(self)
    batch = input_shape[:-1]
    return (jnp.zeros(batch + (self.skip - 1, self.features), dtype),
            jnp.zeros(batch + (self.features,), dtype))

  @property
  def num_feature_axes(self) -> int:
    return 1

  @nn.nowrap
  def _check_skip(self) -> None:
    if not (isinstance(self.skip, numbers.Integral) and self.skip >= 2):
      raise ValueError(f'SkipRNNCell skip must be an integer >= 2, got {self.skip!r}')
