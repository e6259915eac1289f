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
_TEXTBOOK_MODES = ('VALID', 'SAME', 'FULL')


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


def _textbook_pads(padding: Padding, kernel_shape: tuple[int, int], flipped: bool):
  """Explicit `((top, bottom), (left, right))` zeros for the 2D textbook functions.

  'SAME' centres the kernel on its element c = ⌊(K − 1)/2⌋ (the upper/left of
  the two middle ones for even K): cross-correlation pads c zeros before and
  K − 1 − c after; convolution reads the kernel flipped, so the two swap.
  """
  mode = normalize_padding(padding, 2, modes=_TEXTBOOK_MODES)
  if not isinstance(mode, str):
    return mode
  if mode == 'VALID':
    return ((0, 0), (0, 0))
  if mode == 'FULL':
    return tuple((k - 1, k - 1) for k in kernel_shape)
  pads = tuple(((k - 1) // 2, k // 2) for k in kernel_shape)
  return tuple(p[::-1] for p in pads) if flipped else pads


def _correlate_valid(image: Array, kernel: Array, pads, name: str) -> Array:
  """Zero-pads `image` by `pads`, then slides the unflipped `kernel` where it fits."""
  dtype = jnp.promote_types(jnp.result_type(image, kernel), jnp.float32)
  out_shape = tuple(n + lo + hi - k + 1 for n, (lo, hi), k in zip(image.shape, pads, kernel.shape))
  if min(out_shape) < 1:
    raise ValueError(f'{name}: kernel {kernel.shape} does not fit image {image.shape} padded by '
                     f'{pads}: output would be {out_shape}')
  out = jax.lax.conv_general_dilated(
      image.astype(dtype)[None, None],                       # [1, 1, H, W]  (N, C, H, W)
      kernel.astype(dtype)[None, None],                      # [1, 1, K_h, K_w]  (O, I, H, W)
      window_strides=(1, 1), padding=pads)
  return out[0, 0]


def _check_2d(image: Array, kernel: Array) -> None:
  if image.ndim != 2 or kernel.ndim != 2:
    raise ValueError(f'expected image [H, W] and kernel [K_h, K_w]; got {image.shape}, {kernel.shape}')


def cross_correlate2d(image: Array, kernel: Array, padding: Padding = 'SAME') -> Array:
  """Slides `kernel` over `image` without flipping it (a deep-learning "convolution").

    y[i, j] = Σ_{m, n} kernel[m, n] · x[i + m − P_top, j + n − P_left]

  with x read as zero outside the image. Matches
  `scipy.signal.correlate2d(image, kernel, mode)` for 'SAME', 'VALID' and 'FULL'.

  Example (rows top to bottom; 'SAME' pads one zero on every side):

    x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    cross_correlate2d(x, [[1, 2, 1], [0, 0, 0], [-1, -2, -1]])
      == [[-13, -20, -17], [-18, -24, -18], [13, 20, 17]]

  Args:
    image: `[H, W]`.
    kernel: `[K_h, K_w]`, any size for 'SAME' and 'FULL'.
    padding: one of
      'SAME'   output `[H, W]`; per axis ⌊(K − 1)/2⌋ zeros before and the rest
               after (for even K the extra one after, as XLA's 'SAME');
      'VALID'  output `[H − K_h + 1, W − K_w + 1]`, no padding;
      'FULL'   output `[H + K_h − 1, W + K_w − 1]`, every overlap (K − 1 zeros
               on each side);
      an int (zeros on every side) or `((top, bottom), (left, right))`.

  Returns:
    `[H', W']` in the promoted dtype of `image` and `kernel` (at least float32).

  Raises:
    ValueError: for inputs not 2D, a malformed padding, or a kernel larger
      than the padded image (naming the shapes).
  """
  image, kernel = jnp.asarray(image), jnp.asarray(kernel)
  _check_2d(image, kernel)
  return _correlate_valid(image, kernel, _textbook_pads(padding, kernel.shape, flipped=False),
                          'cross_correlate2d')


def convolve2d(image: Array, kernel: Array, padding: Padding = 'SAME') -> Array:
  """True 2D convolution, as in signal processing: the kernel is flipped.

    y[i, j] = Σ_{m, n} kernel[m, n] · x[i − m + K_h − 1 − P_top, j − n + K_w − 1 − P_left]
            = cross_correlate2d(x, kernel[::-1, ::-1], ((P_top, P_bottom), (P_left, P_right)))[i, j]

  with x read as zero outside the image. Matches
  `scipy.signal.convolve2d(image, kernel, mode)` for 'SAME', 'VALID' and 'FULL'.
  'SAME' is the centre of 'FULL', `y[i, j] = Σ kernel[m, n] · x[i − m + c_h, j − n + c_w]`
  with c = ⌊(K − 1)/2⌋; for an even K that puts the extra zero before the
  image, not after as in `cross_correlate2d` (flipping the kernel flips the
  side). Explicit paddings mean the same zeros for both functions.

  Convolution is commutative and associative (blur then sharpen = sharpen then
  blur), which cross-correlation is not; a learned layer does not care, since
  it can learn the flipped kernel.

  Example (Sobel kernel, rows top to bottom, zero padded to the same size):

    x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    convolve2d(x, [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
      == [[-13, -20, -17], [-18, -24, -18], [13, 20, 17]]

  Args, returns and raises as `cross_correlate2d`.
  """
  image, kernel = jnp.asarray(image), jnp.asarray(kernel)
  _check_2d(image, kernel)
  return _correlate_valid(image, kernel[::-1, ::-1],
                          _textbook_pads(padding, kernel.shape, flipped=True), 'convolve2d')
