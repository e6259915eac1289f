"""Output sizes of convolution and pooling layers.

  N' = ⌊(N + P_lo + P_hi − D(K − 1) − 1) / S⌋ + 1

which for symmetric padding P and no dilation is the textbook
`(N − K + 2P) / S + 1`. 'SAME' gives ⌈N / S⌉ and 'VALID' uses P = 0, as XLA.

Synopsis:
  conv_output_size(227, 11, stride=4)                  # 55   (AlexNet conv1)
  conv_output_size(27, 5, padding=2)                   # 27
  conv_output_shape((227, 227), (11, 11), stride=4)    # (55, 55)
"""

from __future__ import annotations

import math
from typing import Sequence

from seqnets.layers.padding import Padding, normalize_padding


def conv_output_size(n: int, kernel: int, stride: int = 1,
                     padding: str | int | tuple[int, int] = 0, dilation: int = 1) -> int:
  """Output length of one axis of a convolution or pooling window.

  Args:
    n: input length N.
    kernel: window K.
    stride: S.
    padding: P on both sides, a `(low, high)` pair, 'VALID' (0) or 'SAME'.
    dilation: D (1: contiguous window).

  Returns:
    N' ≥ 1.

  Raises:
    ValueError: naming the values when an argument is out of range or the
      (dilated) window does not fit the padded input.
  """
  values = f'n={n}, kernel={kernel}, stride={stride}, padding={padding!r}, dilation={dilation}'
  if min(n, kernel, stride, dilation) < 1:
    raise ValueError(f'n, kernel, stride and dilation must be positive: {values}')
  pad = normalize_padding(padding if isinstance(padding, str) else [padding], 1)
  if pad == 'SAME':
    return math.ceil(n / stride)
  low, high = (0, 0) if pad == 'VALID' else pad[0]
  if n + low + high < dilation * (kernel - 1) + 1:
    raise ValueError(f'window larger than the padded input, no output: {values}')
  return (n + low + high - dilation * (kernel - 1) - 1) // stride + 1


def conv_output_shape(spatial_shape: Sequence[int], kernel: int | Sequence[int],
                      stride: int | Sequence[int] = 1, padding: Padding = 0,
                      dilation: int | Sequence[int] = 1) -> tuple[int, ...]:
  """`conv_output_size` per spatial axis; ints broadcast to every axis.

  `padding` takes every form `sn.Conv` / `sn.pool` accept ('VALID', 'SAME',
  int, per-axis ints, per-axis pairs).
  """
  rank = len(spatial_shape)

  def per_axis(value, name):
    values = (value,) * rank if isinstance(value, int) else tuple(value)
    if len(values) != rank:
      raise ValueError(f'{name}={value!r} needs {rank} entries for spatial shape {tuple(spatial_shape)}')
    return values

  pads = normalize_padding(padding, rank)
  pads = (pads,) * rank if isinstance(pads, str) else pads
  return tuple(conv_output_size(n, k, s, p, d) for n, k, s, p, d in zip(
      spatial_shape, per_axis(kernel, 'kernel'), per_axis(stride, 'stride'), pads,
      per_axis(dilation, 'dilation')))
