"""Convolutional LSTM cell (Shi et al. 2015, "Convolutional LSTM network: a machine
learning approach for precipitation nowcasting", arXiv:1506.04214).

Synopsis:
  cell = ConvLSTMCell(32, kernel_size=(3, 3))
  y = sn.RNN(cell).apply(params, x, lengths=lengths)    # x: [B, T, H, W, C] -> [B, T, H, W, 32]
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax import lax

from seqnets.layers import initializers
from seqnets.layers import fused_cell

Array = jax.Array
ConvLSTMCarry = tuple[Array, Array]


class ConvLSTMCell(nn.RNNCellBase):
  """ConvLSTM cell, carry `(c, h)`:

    i_t = σ(W_xi * x_t + W_hi * h_{t-1} + b_i [+ w_ci ⊙ c_{t-1}])
    f_t = σ(W_xf * x_t + W_hf * h_{t-1} + b_f [+ w_cf ⊙ c_{t-1}])
    g_t = tanh(W_xc * x_t + W_hc * h_{t-1} + b_c)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
    o_t = σ(W_xo * x_t + W_ho * h_{t-1} + b_o [+ w_co ⊙ c_t])
    h_t = o_t ⊙ tanh(c_t)

  `*` is a 2-D 'SAME' convolution with stride 1 (`flax.linen.Conv`, i.e. a
  cross-correlation), so every state is an image of the input's size: x_t
  `[*batch, H, W, C_in]`, c and h `[*batch, H, W, C]`. ⊙ is elementwise. The
  bracketed peephole terms are present when `use_peepholes=True`; as in the
  paper, their weights are per position and channel, `[H, W, C]`, which ties
  a cell with peepholes to the image size it was initialised with (without
  peepholes any size works).

  Parameter layout (gate order i, f, g, o, as `LSTMCell`):
    input_conv/kernel      [kh, kw, C_in, 4C]   output channels [i | f | g | o]
    input_conv/bias        [4C]                 default: 0 except `forget_bias` on the f block
    recurrent_conv/kernel  [kh, kw, C, 4C]      (no bias: one b per gate)
    peephole_i, peephole_f, peephole_o   [H, W, C] each (only with peepholes)

  Against `flax.linen.ConvLSTMCell`: flax has no peepholes, orders the gates
  i, g, f, o, keeps a bias in each of its two convolutions (`ih`, `hh`) and
  adds a constant 1 to f's pre-activation at every step instead of
  initialising b_f. With `use_peepholes=False`, `input_conv/kernel` = flax's
  `ih/kernel`, `recurrent_conv/kernel` = `hh/kernel` (both with the channel
  blocks reordered) and `input_conv/bias` = `ih/bias + hh/bias` (reordered,
  + 1 on f) give the same step. The cell also runs in `flax.linen.RNN`
  (`num_feature_axes = 3`).

  Speed: inside `sn.RNN` (or `flax.linen.RNN`) the cell runs step by step, a
  `flax.linen.scan` differentiated by JAX, but both convolutions take their
  gradient from `conv_same`: the kernel gradient as one im2col matmul instead
  of XLA's kernel-gradient convolution, which XLA:CPU runs very slowly inside
  a loop. Measured with benchmarks/conv_lstm_bench.py (2-core CPU, B=8, T=10,
  16×16×1 → 32 features): forward+backward 10–12× faster than with XLA's
  gradient and than `flax.linen.ConvLSTMCell` (6–7× on 64×64 frames), forward
  the same. Computing the input convolution for all steps at once before the
  loop (`input_projection` on `[B, T, H, W, C_in]`, then `projected_step`
  per step) was measured too and is slower (forward 1.5–2.7×,
  forward+backward 1.1–1.3×), so the step does both convolutions.

  Attributes:
    features: channels C of the state (and of the outputs).
    kernel_size: `(kh, kw)` of both convolutions (an int k means `(k, k)`).
    use_peepholes: add the peephole terms w_ci, w_cf, w_co.
    forget_bias: initial value of b_f (ignored when `bias_init` is given).
    im2col_grad: give both convolutions the gradient of `conv_same` (kernel
      gradient as one im2col matmul; reverse mode only); False: XLA's own (forward
      mode works, training ~10× slower on CPU).
    kernel_init / recurrent_kernel_init / bias_init / peephole_init: initialisers.
    dtype: computation dtype (None: promoted from inputs, carry and parameters).
    param_dtype: parameter dtype.

  Dtypes as `LSTMCell`: c and h keep the dtype they are given, `initialize_carry`
  makes them in `dtype` (or `param_dtype`), outputs are in the computation dtype.
  """

  features: int
  kernel_size: Sequence[int] = (3, 3)
  use_peepholes: bool = False
  forget_bias: float = 1.0
  im2col_grad: bool = True
  kernel_init: initializers.Initializer = nn.initializers.lecun_normal()
  recurrent_kernel_init: initializers.Initializer = nn.initializers.lecun_normal()
  bias_init: initializers.Initializer | None = None
  peephole_init: initializers.Initializer = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32

  def __post_init__(self):
    kernel_size = self.kernel_size
    kernel_size = (kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)
    if len(kernel_size) != 2 or any(not isinstance(k, int) or k < 1 for k in kernel_size):
      raise ValueError(f'ConvLSTMCell kernel_size={self.kernel_size!r} must be two positive '
                       'ints (kh, kw) or one')
    object.__setattr__(self, 'kernel_size', kernel_size)
    super().__post_init__()

  def __call__(self, carry: ConvLSTMCarry, inputs: Array) -> tuple[ConvLSTMCarry, Array]:
    """One step. `carry = (c, h)`, each `[*batch, H, W, C]`; `inputs: [*batch, H, W, C_in]`
    -> `((c_t, h_t), h_t)`."""
    return self.projected_step(carry, self.input_projection(inputs))

  def input_projection(self, inputs: Array) -> Array:
    """`W_x * x + b`: `[*batch, H, W, C_in]` -> `[*batch, H, W, 4C]`, any number of leading
    axes (e.g. a whole sequence `[B, T, H, W, C_in]`: one convolution)."""
    self._check_image(inputs, 'inputs')
    bias_init = self.bias_init or initializers.gate_bias_init((0.0, self.forget_bias, 0.0, 0.0))
    return self._conv('input_conv', inputs, True, self.kernel_init, bias_init)

  def projected_step(self, carry: ConvLSTMCarry,
                     projection: Array) -> tuple[ConvLSTMCarry, Array]:
    """The step from `projection = input_projection(x_t)` `[*batch, H, W, 4C]`."""
    c, h = carry
    self._check_image(h, 'carry')
    z = projection + self._conv('recurrent_conv', h, False, self.recurrent_kernel_init)
    z, c_in = nn.dtypes.promote_dtype(z, c, dtype=self.dtype)
    z_i, z_f, z_g, z_o = jnp.split(z, 4, axis=-1)                      # [*batch, H, W, C] each
    if self.use_peepholes:
      p_i, p_f, p_o = nn.dtypes.promote_dtype(*self._peepholes(c.shape[-3:]), dtype=z.dtype)
      z_i = z_i + p_i * c_in
      z_f = z_f + p_f * c_in
    new_c = jax.nn.sigmoid(z_f) * c_in + jax.nn.sigmoid(z_i) * jnp.tanh(z_g)
    if self.use_peepholes:
      z_o = z_o + p_o * new_c
    new_h = jax.nn.sigmoid(z_o) * jnp.tanh(new_c)
    new_carry = (new_c.astype(jnp.result_type(c)), new_h.astype(jnp.result_type(h)))
    return new_carry, new_h

  @nn.compact
  def _conv(self, name: str, x: Array, use_bias: bool, kernel_init, bias_init=None) -> Array:
    """The 'SAME' `nn.Conv` `name` (4C filters) applied to `x [*batch, H, W, channels]`."""
    extra = {} if bias_init is None else dict(bias_init=initializers.in_float32(bias_init))
    if self.im2col_grad:
      extra['conv_general_dilated'] = same_conv
    return nn.Conv(4 * self.features, self.kernel_size, padding='SAME', use_bias=use_bias,
                   kernel_init=initializers.in_float32(kernel_init), dtype=self.dtype,
                   param_dtype=self.param_dtype, name=name, **extra)(x)

  @nn.compact
  def _peepholes(self, shape: tuple[int, ...]) -> tuple[Array, Array, Array]:
    """Declares (at init) and returns `peephole_i, peephole_f, peephole_o`, each `[H, W, C]`."""
    init = initializers.in_float32(self.peephole_init)
    return tuple(self.param(f'peephole_{gate}', init, shape, self.param_dtype) for gate in 'ifo')

  def _check_image(self, x: Array, name: str) -> None:
    if x.ndim < 3:
      raise ValueError(f'ConvLSTMCell {name} must be [*batch, height, width, channels], got '
                       f'shape {x.shape}')

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> ConvLSTMCarry:
    """Zeros `(c, h)`, each `[*batch, H, W, C]` in the carry dtype, for inputs
    `[*batch, H, W, C_in]`."""
    del rng
    shape = tuple(input_shape[:-1]) + (self.features,)
    dtype = fused_cell.carry_dtype(self)
    return jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)

  @property
  def num_feature_axes(self) -> int:
    return 3


_NHWC = ('NHWC', 'HWIO', 'NHWC')


def same_conv(lhs: Array, rhs: Array, window_strides, padding, lhs_dilation=None,
              rhs_dilation=None, dimension_numbers=None, feature_group_count: int = 1,
              precision=None, **kwargs) -> Array:
  """`lax.conv_general_dilated` for `nn.Conv(conv_general_dilated=...)` whose gradient
  `conv_same` gives, for the 2-D 'SAME' stride-1 case; any other call goes to lax as is."""
  spec = (lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC) if lhs.ndim == 4 else None)
  plain = (lhs.ndim == 4 and padding == 'SAME' and not kwargs and feature_group_count == 1
           and all(s == 1 for s in window_strides)
           and all(d is None or tuple(d) == (1, 1) for d in (lhs_dilation, rhs_dilation))
           and lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) == spec)
  if not plain:
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation,
                                    rhs_dilation, dimension_numbers, feature_group_count,
                                    precision=precision, **kwargs)
  return conv_same(lhs, rhs, precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_same(x: Array, kernel: Array, precision=None) -> Array:
  """2-D 'SAME' convolution, stride 1: `x [N, H, W, Ci]`, `kernel [kh, kw, Ci, Co]` ->
  `[N, H, W, Co]`, as `lax.conv_general_dilated`, with a hand-written gradient.

  Gradient: dx is the convolution of dy with the flipped, transposed kernel (what
  autodiff gives too); the kernel gradient is one matmul, `patchesᵀ dy` with the
  `[N·H·W, kh·kw·Ci]` im2col patches of x. XLA:CPU's own kernel-gradient
  convolution is ~10× slower than that inside a loop body (`sn.RNN`,
  `flax.linen.RNN`: measured in benchmarks/conv_lstm_bench.py). Reverse mode only
  (`grad`, `vjp`); for forward mode (`jvp`) use `ConvLSTMCell(im2col_grad=False)`.
  """
  return lax.conv_general_dilated(x, kernel, (1, 1), 'SAME', dimension_numbers=_NHWC,
                                  precision=precision)


def _conv_same_fwd(x, kernel, precision):
  return conv_same(x, kernel, precision), (x, kernel)


def _conv_same_bwd(precision, residuals, d_y):
  x, kernel = residuals
  kh, kw, c_in, c_out = kernel.shape
  height, width = x.shape[1:3]
  # 'SAME' pads ⌊(k − 1)/2⌋ before and ⌊k/2⌋ after; its transpose the other way round.
  flipped = jnp.swapaxes(kernel[::-1, ::-1], 2, 3)                     # [kh, kw, Co, Ci]
  d_x = lax.conv_general_dilated(d_y, flipped, (1, 1), ((kh // 2, (kh - 1) // 2),
                                                        (kw // 2, (kw - 1) // 2)),
                                 dimension_numbers=_NHWC, precision=precision)
  padded = jnp.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
  patches = jnp.concatenate([padded[:, m:m + height, n:n + width]
                             for m in range(kh) for n in range(kw)], axis=-1)
  accumulate = jnp.promote_types(d_y.dtype, jnp.float32)
  d_kernel = jnp.matmul(patches.reshape(-1, kh * kw * c_in).T, d_y.reshape(-1, c_out),
                        precision=precision, preferred_element_type=accumulate)
  return d_x.astype(x.dtype), d_kernel.reshape(kernel.shape).astype(kernel.dtype)


conv_same.defvjp(_conv_same_fwd, _conv_same_bwd)
