"""The cells without a fused kernel as Flax NNX modules: unitary, skip, echo state, ConvLSTM.

Each is a `cells.LinenCell` over its linen twin (`cell.linen_cell`): the twin's params as
`nnx.Param`s of the same names, its step and carry; `snx.RNN` runs the step in a plain
`jax.lax.scan`, as `seqnets.RNN` runs the linen cell.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from seqnets.layers import conv_lstm
from seqnets.layers import echo_state
from seqnets.layers import initializers
from seqnets.layers import time_skip
from seqnets.layers import unitary
from seqnets.nnx.cells import LinenCell

Array = jax.Array
Initializer = initializers.Initializer


class UnitaryRNNCell(LinenCell):
  """Unitary evolution cell (uRNN), complex `h_t = modReLU(W h_{t-1} + V x_t; b)` with
  `W = D3 R2 F⁻¹ D2 Π R1 F D1` (see `seqnets.UnitaryRNNCell`); N = `hidden_features`.

  Params: `input_kernel_re`, `input_kernel_im [F, N]`, `theta1..3 [N]`,
  `reflection{1,2}_{re,im} [N]`, `bias [N]`. Carry and output `[*batch, 2N]`
  (`[Re h, Im h]`).
  """

  def __init__(self, in_features: int, hidden_features: int, *, permutation_seed: int = 0,
               epsilon: float = 1e-5,
               kernel_init: Initializer = unitary.UnitaryRNNCell.kernel_init,
               theta_init: Initializer = unitary.UnitaryRNNCell.theta_init,
               reflection_init: Initializer = unitary.UnitaryRNNCell.reflection_init,
               bias_init: Initializer = unitary.UnitaryRNNCell.bias_init,
               dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
    super().__init__(in_features, unitary.UnitaryRNNCell(
        hidden_features, permutation_seed=permutation_seed, epsilon=epsilon,
        kernel_init=kernel_init, theta_init=theta_init, reflection_init=reflection_init,
        bias_init=bias_init, dtype=dtype, param_dtype=param_dtype), rngs=rngs)


class SkipRNNCell(LinenCell):
  """Elman cell with a k-step skip, `h_t = φ(W x_t + U h_{t-1} + S h_{t-k} + b)` (see
  `seqnets.SkipRNNCell`).

  Params: `input_kernel [F, H]`, `recurrent_kernel [H, H]`, `skip_kernel [H, H]`,
  `bias [H]`. Carry `(past [*batch, k − 1, H], h [*batch, H])`; output h_t `[*batch, H]`.
  """

  def __init__(self, in_features: int, hidden_features: int, *, skip: int = 2,
               activation_fn: Callable[[Array], Array] = jnp.tanh,
               kernel_init: Initializer = time_skip.SkipRNNCell.kernel_init,
               recurrent_kernel_init: Initializer = time_skip.SkipRNNCell.recurrent_kernel_init,
               skip_kernel_init: Initializer = time_skip.SkipRNNCell.skip_kernel_init,
               bias_init: Initializer = time_skip.SkipRNNCell.bias_init,
               dtype: Any = None, param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
    super().__init__(in_features, time_skip.SkipRNNCell(
        hidden_features, skip=skip, activation_fn=activation_fn, kernel_init=kernel_init,
        recurrent_kernel_init=recurrent_kernel_init, skip_kernel_init=skip_kernel_init,
        bias_init=bias_init, dtype=dtype, param_dtype=param_dtype), rngs=rngs)


class EchoStateCell(LinenCell):
  """Echo state reservoir, `h_t = (1 − a) h_{t-1} + a tanh(W_in x_t + W h_{t-1} + b)` (see
  `seqnets.EchoStateCell`): the reservoir is a constant drawn from `reservoir_seed`, not a
  parameter, so the cell has no state (`rngs` is not used). Carry and output h
  `[*batch, H]`; train a readout on the outputs (`nnx.Linear`, or
  `seqnets.layers.ridge_readout`).
  """

  def __init__(self, in_features: int, hidden_features: int, *, spectral_radius: float = 0.9,
               input_scale: float = 1.0, leak: float = 1.0, density: float = 1.0,
               bias_scale: float = 0.0, reservoir_seed: int = 0, dtype: Any = None,
               param_dtype: Any = jnp.float32, rngs: nnx.Rngs | None = None):
    super().__init__(in_features, echo_state.EchoStateCell(
        hidden_features, spectral_radius=spectral_radius, input_scale=input_scale, leak=leak,
        density=density, bias_scale=bias_scale, reservoir_seed=reservoir_seed, dtype=dtype,
        param_dtype=param_dtype), rngs=rngs)

  def reservoir(self) -> dict[str, np.ndarray]:
    """`{'input_kernel': [F, H], 'recurrent_kernel': [H, H], 'bias': [H]}` (float64 NumPy)."""
    return self.linen_cell.reservoir(self.in_features)


class ConvLSTMCell(LinenCell):
  """Convolutional LSTM cell over images (see `seqnets.ConvLSTMCell`): inputs
  `[*batch, height, width, F]` (`num_feature_axes = 3`), so `snx.RNN` takes
  `[B, T, height, width, F]` and gives `[B, T, height, width, H]`; H = `hidden_features`
  channels.

  Params: `input_conv/kernel [kh, kw, F, 4H]`, `input_conv/bias [4H]`,
  `recurrent_conv/kernel [kh, kw, H, 4H]` (`ParamGroup`s `input_conv`, `recurrent_conv`),
  with peepholes `peephole_i`, `peephole_f`, `peephole_o [height, width, H]`: then
  `image_size=(height, width)` is required (peepholes tie the cell to one image size;
  without them any size works). Carry `(c, h)`, each `[*batch, height, width, H]`.
  """

  def __init__(self, in_features: int, hidden_features: int, *,
               kernel_size: Sequence[int] = (3, 3), use_peepholes: bool = False,
               forget_bias: float = 1.0, im2col_grad: bool = True,
               kernel_init: Initializer = conv_lstm.ConvLSTMCell.kernel_init,
               recurrent_kernel_init: Initializer = conv_lstm.ConvLSTMCell.recurrent_kernel_init,
               bias_init: Initializer | None = None,
               peephole_init: Initializer = conv_lstm.ConvLSTMCell.peephole_init,
               dtype: Any = None, param_dtype: Any = jnp.float32,
               image_size: Sequence[int] | None = None, rngs: nnx.Rngs):
    if use_peepholes and image_size is None:
      raise ValueError('ConvLSTMCell with use_peepholes needs image_size=(height, width): '
                       'the peephole weights are per position')
    image_size = (1, 1) if image_size is None else tuple(int(n) for n in image_size)
    kernel_size = (kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)
    super().__init__(in_features, conv_lstm.ConvLSTMCell(
        hidden_features, kernel_size=kernel_size, use_peepholes=use_peepholes,
        forget_bias=forget_bias, im2col_grad=im2col_grad, kernel_init=kernel_init,
        recurrent_kernel_init=recurrent_kernel_init, bias_init=bias_init,
        peephole_init=peephole_init, dtype=dtype, param_dtype=param_dtype),
        rngs=rngs, feature_shape=(*image_size, in_features))
