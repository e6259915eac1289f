"""Padding specifications for convolution and pooling, normalised to one form.

Synopsis:
  normalize_padding('same', 2)          # 'SAME'
  normalize_padding(1, 2)               # ((1, 1), (1, 1))
  normalize_padding([2, (0, 1)], 2)     # ((2, 2), (0, 1))
  explicit_padding('SAME', (5, 5), (2, 2), (2, 2))   # ((0, 1), (0, 1)), as XLA pads
"""

from __future__ import annotations

from typing import Sequence, Union

from jax import lax

Padding = Union[str, int, Sequence[Union[int, Sequence[int]]]]
Pairs = tuple[tuple[int, int], ...]


def normalize_padding(padding: Padding, rank: int, *,
                      modes: Sequence[str] = ('VALID', 'SAME')) -> str | Pairs:
  """Returns an upper-case mode from `modes`, or one `(low, high)` pair per spatial axis.

  Accepted forms (`rank` spatial axes):
    'VALID' / 'SAME' (any case)   no padding / output size ⌈N / S⌉ (XLA's rule).
    int P                         P zeros before and after every axis.
    [P_1, …, P_rank]              P_i on both sides of axis i.
    [(lo_1, hi_1), …]             explicit per side; ints and pairs may be mixed.
  Lists are accepted wherever tuples are (configs often hold lists).

  Raises:
    ValueError: naming `padding` when it is none of the above, has the wrong
      number of axes, or holds a negative amount.
  """
  if isinstance(padding, str):
    mode = padding.upper()
    if mode not in modes:
      raise ValueError(f'padding={padding!r}; valid modes: {list(modes)}, an int, '
                       f'or {rank} (low, high) pairs')
    return mode
  if isinstance(padding, int):
    padding = [padding] * rank
  try:
    pairs = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
  except TypeError:
    pairs = ()
  if (len(pairs) != rank or any(len(p) != 2 for p in pairs)
      or not all(isinstance(v, int) for p in pairs for v in p)):
    raise ValueError(f'padding={padding!r} must be one of {list(modes)}, an int, or {rank} '
                     f'entries each an int or a (low, high) pair of ints')
  if any(v < 0 for p in pairs for v in p):
    raise ValueError(f'padding={padding!r} has a negative amount')
  return pairs


def explicit_padding(padding: Padding, spatial_shape: Sequence[int], window: Sequence[int],
                     strides: Sequence[int], dilation: Sequence[int] | None = None) -> Pairs:
  """Like `normalize_padding`, but 'SAME' and 'VALID' become the pairs XLA would use.

  'SAME' pads `max((⌈N/S⌉ − 1)·S + D(K − 1) + 1 − N, 0)` in total per axis, the
  extra one (when odd) at the end, exactly as `jax.lax.padtype_to_pads`.
  """
  rank = len(spatial_shape)
  mode = normalize_padding(padding, rank)
  if not isinstance(mode, str):
    return mode
  dilation = dilation or (1,) * rank
  dilated = [d * (k - 1) + 1 for k, d in zip(window, dilation)]
  return tuple(tuple(p) for p in lax.padtype_to_pads(tuple(spatial_shape), dilated, tuple(strides), mode))
