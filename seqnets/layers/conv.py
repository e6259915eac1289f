"""Convolution: `Conv` (1D/2D/3D, over `flax.linen.Conv`) and textbook 2D convolution.

Synopsis:
  y = sn.Conv(16, (3, 3), strides=2, padding=1).apply(v, x)  # x: [B, H, W, C] -> [B, H', W', 16]
  sn.Conv(8, (5,), kernel_dilation=2, padding='SAME')        # 1D: [B, T, C]
  sn.Conv(4, (3, 3, 3), padding=((1, 0), (1, 0), (0, 0)))    # 3D: [B, D, H, W, C]
  sn.convolve2d(image, kernel)          # signal processing: kernel flipped
  sn.cross_correlate2d(image, kernel)   # what deep-learning "convolution" layers compute

Output size per axis (`seqnets.analysis.conv_output_size`):
  N' = ⌊(N + P_lo + P_hi − D(K − 1) − 1) / S⌋ + 1
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers.padding import Padding, normalize_padding

Array = jax.Array

_CONV_MODES = ('VALID', 'SAME', 'CAUSAL', 'CIRCULAR', 'REFLECT')


class Conv(nn.Conv):
  """`flax.linen.Conv` with stricter shapes and the textbook default of no padding.

  Computes, for every output position p and filter f (deep-learning
  cross-correlation; the kernel is not flipped):

    y[b, p, f] = bias[f] + Σ_{k, c} kernel[k, c, f] · x[b, S·p + D·k − P_lo, c]

  over the kernel offsets k (one index per spatial axis), with x read as zero
  outside the input. The number of spatial axes (1, 2 or 3) is the length of
  `kernel_size`. Parameters: `kernel [*kernel_size, C, features]` and
  `bias [features]`, as in `nn.Conv` (same parameter tree, so weights move freely).

  What this adds to `nn.Conv`:
    - `padding` defaults to 'VALID' (PyTorch, Keras and the textbook formula
      with P = 0) instead of flax's 'SAME'.
    - `padding` also accepts lists, e.g. `[[1, 1], [0, 2]]` from a config;
      flax accepts only tuples of pairs. Bad forms fail at construction with the
      value named.
    - Inputs must be exactly `[B, *spatial, C]` with `len(kernel_size)` spatial
      axes. `nn.Conv(8, 3)` silently treats `[B, H, W, C]` as a batch of B·H
      1D signals; here that raises.
    - An input too small for the (dilated) kernel raises, naming the shapes,
      instead of returning an empty array.

  Attributes: those of `flax.linen.Conv` (`features`, `kernel_size`, `strides`,
  `padding`, `input_dilation`, `kernel_dilation`, `feature_group_count`,
  `use_bias`, `kernel_init`, `bias_init`, `dtype`, `param_dtype`, ...), with
  `padding` one of 'VALID', 'SAME', 'CAUSAL' (1D), 'CIRCULAR', 'REFLECT', an
  int, per-axis ints, or per-axis `(low, high)` pairs.
  """

  padding: Padding = 'VALID'

  def __post_init__(self):
    kernel_size = (self.kernel_size,) if isinstance(self.kernel_size, int) else tuple(self.kernel_size)
    if not kernel_size or any(k < 1 for k in kernel_size):
      raise ValueError(f'Conv kernel_size={self.kernel_size!r} must be positive ints')
    for name in ('strides', 'kernel_dilation', 'input_dilation'):
      value = getattr(self, name)
      values = (value,) if value is None or isinstance(value, int) else tuple(value)
      if len(values) not in (1, len(kernel_size)) or any(v is not None and v < 1 for v in values):
        raise ValueError(f'Conv {name}={value!r} must be a positive int or {len(kernel_size)} of them')
    # Frozen dataclass: normalised values are written the way dataclasses do it.
    object.__setattr__(self, 'kernel_size', kernel_size)
    object.__setattr__(self, 'padding', normalize_padding(self.padding, len(kernel_size),
                                                          modes=_CONV_MODES))
    super().__post_init__()

  def __call__(self, inputs: Array) -> Array:
    """`inputs: [B, *spatial, C]` -> `[B, *spatial', features]`."""
    rank = len(self.kernel_size)
    if inputs.ndim != rank + 2:
      raise ValueError(f'Conv with kernel_size={self.kernel_size} is {rank}D and expects inputs '
                       f'[B, {rank} spatial axes, C]; got shape {inputs.shape}')
    outputs = super().__call__(inputs)
    if 0 in outputs.shape[1:-1]:
      raise ValueError(f'Conv input {inputs.shape} is too small for kernel_size={self.kernel_size}, '
                       f'strides={self.strides}, kernel_dilation={self.kernel_dilation}, '
                       f'padding={self.padding}: output {outputs.shape}')
    return outputs


def cross_correlate2d(image: Array, kernel: Array, padding: Padding = 'SAME') -> Array:
  """Slides `kernel` over `image` without flipping it (a deep-learning "convolution").

    y[i, j] = Σ_{m, n} kernel[m, n] · x[i + m − P_top, j + n − P_left]

  with x read as zero outside the image.

  Example (rows top to bottom; 'SAME' pads one zero on every side):

    x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    cross_correlate2d(x, [[1, 2, 1], [0, 0, 0], [-1, -2, -1]])
      == [[-13, -20, -17], [-18, -24, -18], [13, 20, 17]]

  Args:
    image: `[H, W]`.
    kernel: `[K_h, K_w]`.
    padding: 'SAME' (output `[H, W]`), 'VALID' (`[H − K_h + 1, W − K_w + 1]`),
      an int (zeros on every side), or `((top, bottom), (left, right))`.

  Returns:
    `[H', W']` in the promoted dtype of `image` and `kernel` (at least float32).
  """
  image, kernel = jnp.asarray(image), jnp.asarray(kernel)
  if image.ndim != 2 or kernel.ndim != 2:
    raise ValueError(f'expected image [H, W] and kernel [K_h, K_w]; got {image.shape}, {kernel.shape}')
  dtype = jnp.promote_types(jnp.result_type(image, kernel), jnp.float32)
  padding = normalize_padding(padding, 2)
  out = jax.lax.conv_general_dilated(
      image.astype(dtype)[None, None],                       # [1, 1, H, W]  (N, C, H, W)
      kernel.astype(dtype)[None, None],                      # [1, 1, K_h, K_w]  (O, I, H, W)
      window_strides=(1, 1), padding=padding)
  return out[0, 0]


def convolve2d(image: Array, kernel: Array, padding: Padding = 'SAME') -> Array:
  """True 2D convolution, as in signal processing: the kernel is flipped.

    y[i, j] = Σ_{m, n} kernel[m, n] · x[i − m + c_h, j − n + c_w]
            = cross_correlate2d(x, kernel[::-1, ::-1])

  where (c_h, c_w) is the kernel centre for 'SAME'. It is commutative and
  associative (blur then sharpen = sharpen then blur), which cross-correlation
  is not; a learned layer does not care, since it can learn the flipped kernel.

  Example (Sobel kernel, rows top to bottom, zero padded to the same size):

    x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    convolve2d(x, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
      == [[-13, -20, -17], [-18, -24, -18], [13, 20, 17]]

  Args and returns as `cross_correlate2d`.
  """
  kernel = jnp.asarray(kernel)
  if kernel.ndim != 2:
    raise ValueError(f'expected kernel [K_h, K_w]; got {kernel.shape}')
  return cross_correlate2d(image, kernel[::-1, ::-1], padding)
