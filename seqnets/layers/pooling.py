"""Pooling: max / average / sum windows in 1D/2D/3D, global pooling, pooling over time.

Synopsis:
  y = sn.pool(x, 'max', window=2)                        # x: [B, H, W, C] -> [B, H/2, W/2, C]
  y = sn.pool(x, 'avg', (3,), strides=1, padding='SAME')  # 1D: [B, T, C]
  y = sn.pool(x, 'max', (2, 2), (2, 1), padding=((0, 1), (0, 1)))   # explicit zeros
  v = sn.global_pool(x, 'avg')                           # [B, C]
  v = sn.max_over_time(h, lengths)                       # h: [B, T, F] -> [B, F]
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers.masking import masked_mean, sequence_mask
from seqnets.layers.padding import Padding, explicit_padding, normalize_padding

Array = jax.Array

KINDS = ('max', 'avg', 'sum')


def _check_kind(kind: str) -> None:
  if kind not in KINDS:
    raise ValueError(f'pooling kind={kind!r}; valid: {list(KINDS)}')


def _per_axis(value: int | Sequence[int], rank: int, name: str) -> tuple[int, ...]:
  values = (value,) * rank if isinstance(value, int) else tuple(value)
  if len(values) != rank or any(not isinstance(v, int) or v < 1 for v in values):
    raise ValueError(f'pooling {name}={value!r} must be a positive int or {rank} of them')
  return values


def _sum_pool(x: Array, window: tuple[int, ...], strides: tuple[int, ...], padding) -> Array:
  return nn.pooling.pool(x, 0.0, jax.lax.add, window, strides, padding)


def pool(x: Array, kind: str = 'max', window: int | Sequence[int] = 2,
         strides: int | Sequence[int] | None = None, padding: Padding = 'VALID',
         pad_value: float | None = 0.0) -> Array:
  """Max, average or sum over sliding windows of the spatial axes.

    y[b, p, c] = reduce_{k ∈ window} x̃[b, S·p + k, c]

  where x̃ is x padded by `padding`. Output size per axis:
  ⌊(N + P_lo + P_hi − K) / S⌋ + 1 ('SAME': ⌈N / S⌉). Built on
  `flax.linen.max_pool`, `avg_pool` and `pooling.pool` (with `lax.add` for sum).

  What a padded position holds is `pad_value`, the same for every kind and
  padding mode:
    0.0 (default)  zero padding, as in the textbook: a padded 0 can win a max
                   (over negative inputs) and counts in an average's
                   denominator, which is always the window size K₁·K₂·…
                   (flax `avg_pool(count_include_pad=True)`, PyTorch `AvgPool`).
    None           padding is ignored: max never picks it (flax `max_pool`,
                   TF, PyTorch `MaxPool`, which pad with −∞) and an average
                   divides by the number of real inputs in the window (flax
                   `count_include_pad=False`, TF 'SAME'). A window holding no
                   real input (explicit padding at least a window wide) gives
                   0 for every kind, as an empty row of `max_over_time` /
                   `mean_over_time` does, never −∞ or NaN; its gradient is 0.
    other float    that constant (a window wholly in padding gives it for max
                   and avg, K₁·K₂·… times it for sum).
  Sum pooling ignores zero padding either way.

  Example (the 5×5 matrix padded with one zero row at the bottom and one zero
  column at the right, 2×2 max windows, strides (2, 1)):

    x = np.array([[1, 2, 3, 4, 5], [9, 8, 7, 6, 0], [0, 2, 4, 6, 8], [2, 3, 4, 5, 1],
                  [6, 7, 8, 9, 0]], np.float32)[None, :, :, None]           # [1, 5, 5, 1]
    pool(x, 'max', (2, 2), (2, 1), ((0, 1), (0, 1)))[0, :, :, 0]
      == [[9, 8, 7, 6, 5], [3, 4, 6, 8, 8], [7, 8, 9, 9, 0]]

  Args:
    x: `[B, *spatial, C]` with 1, 2 or 3 spatial axes.
    kind: 'max', 'avg' or 'sum'.
    window: window size, an int for every spatial axis or one per axis.
    strides: likewise; None means `strides = window` (non-overlapping windows,
      as PyTorch and Keras; flax's default is 1).
    padding: 'VALID', 'SAME', an int, per-axis ints, or per-axis `(low, high)` pairs.
    pad_value: see above.

  Returns:
    `[B, *spatial', C]`.

  Raises:
    ValueError: for an unknown kind, a malformed window/stride/padding, or a
      window larger than the padded input (naming the shapes).
  """
  _check_kind(kind)
  rank = x.ndim - 2
  if rank < 1:
    raise ValueError(f'pool expects x [B, *spatial, C]; got shape {x.shape}')
  window = _per_axis(window, rank, 'window')
  strides = window if strides is None else _per_axis(strides, rank, 'strides')
  padding = normalize_padding(padding, rank)
  pads = explicit_padding(padding, x.shape[1:-1], window, strides)
  if pad_value is None:
    # Real inputs per window; 0 only where explicit padding is at least a window wide.
    count = _sum_pool(jnp.ones((1, *x.shape[1:-1], 1), x.dtype), window, strides, pads)
    if kind == 'max':
      y = jnp.where(count > 0, nn.max_pool(x, window, strides, pads), 0)
    elif kind == 'avg':
      y = _sum_pool(x, window, strides, pads) / jnp.maximum(count, 1)
    else:
      y = _sum_pool(x, window, strides, pads)
  else:
    if any(p for pair in pads for p in pair):
      x = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=pad_value)
    reduce: dict[str, Callable[..., Array]] = {
        'max': nn.max_pool, 'avg': nn.avg_pool, 'sum': _sum_pool}
    y = reduce[kind](x, window, strides, 'VALID')
  if 0 in y.shape[1:-1]:
    raise ValueError(f'pool window={window} with strides={strides}, padding={padding} does not fit '
                     f'input {x.shape}: output {y.shape}')
  return y


def global_pool(x: Array, kind: str = 'avg') -> Array:
  """Max, mean or sum over all spatial axes: `[B, *spatial, C]` -> `[B, C]`."""
  _check_kind(kind)
  axes = tuple(range(1, x.ndim - 1))
  return {'max': jnp.max, 'avg': jnp.mean, 'sum': jnp.sum}[kind](x, axis=axes)


def max_over_time(x: Array, lengths: Array | None = None) -> Array:
  """Max over the time axis of `x: [B, T, F]` using only steps `t < lengths[b]`.

  Padding never wins the max, whatever its values: padded steps are replaced
  by −∞ before the max. A row with `lengths[b] == 0` has no steps and gives 0
  (not −∞), so downstream layers stay finite. The gradient flows to the
  arg-max step only (ties share it, as in `jnp.max`).

  Example: `max_over_time([[[1], [-5], [9]]], lengths=[2]) == [[1]]`.

  Args:
    x: `[B, T, F]`.
    lengths: `[B]` int, or None for all T steps.

  Returns:
    `[B, F]`.
  """
  if lengths is None:
    return jnp.max(x, axis=1)
  mask = sequence_mask(lengths, x.shape[1])[:, :, None]            # [B, T, 1]
  masked = jnp.where(mask, x, -jnp.inf)
  return jnp.where(jnp.asarray(lengths)[:, None] > 0, jnp.max(masked, axis=1), 0)


def mean_over_time(x: Array, lengths: Array | None = None) -> Array:
  """Mean over the steps `t < lengths[b]` of `x: [B, T, F]` -> `[B, F]`; 0 for empty rows."""
  if lengths is None:
    return jnp.mean(x, axis=1)
  return masked_mean(x, sequence_mask(lengths, x.shape[1]), axis=1)
