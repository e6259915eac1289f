"""Classic fixed 3×3 image filters (identity, shifts, blurs, sharpen, edges, Sobel).

Each is a read-only `[3, 3] float32` NumPy array (NumPy, so importing
seqnets does not start a JAX backend), rows top to bottom, meant for
`sn.cross_correlate2d` (the deep-learning convention, kernel not flipped);
shift directions and Sobel signs below are stated for that convention and
reverse under `sn.convolve2d`.

Synopsis:
  edges = sn.cross_correlate2d(image, sn.FILTERS['edge_detection'])   # image: [H, W]
  from seqnets.layers import filters
  blurred = sn.cross_correlate2d(image, filters.gaussian_blur())
  filters.get('sobel_y')           # unknown names raise, listing the valid ones
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Array = np.ndarray


def _matrix(rows, scale: float = 1.0) -> Array:
  matrix = np.asarray(rows, np.float32) * np.float32(scale)
  matrix.flags.writeable = False
  return matrix


def identity() -> Array:
  """Leaves the image unchanged:  [[0, 0, 0], [0, 1, 0], [0, 0, 0]]."""
  return _matrix([[0, 0, 0], [0, 1, 0], [0, 0, 0]])


def shift_left() -> Array:
  """Moves the image one pixel left, `y[i, j] = x[i, j + 1]`:  [[0, 0, 0], [0, 0, 1], [0, 0, 0]]."""
  return _matrix([[0, 0, 0], [0, 0, 1], [0, 0, 0]])


def shift_right() -> Array:
  """Moves the image one pixel right, `y[i, j] = x[i, j − 1]`:  [[0, 0, 0], [1, 0, 0], [0, 0, 0]]."""
  return _matrix([[0, 0, 0], [1, 0, 0], [0, 0, 0]])


def shift_up() -> Array:
  """Moves the image one pixel up, `y[i, j] = x[i + 1, j]`:  [[0, 0, 0], [0, 0, 0], [0, 1, 0]]."""
  return _matrix([[0, 0, 0], [0, 0, 0], [0, 1, 0]])


def shift_down() -> Array:
  """Moves the image one pixel down, `y[i, j] = x[i − 1, j]`:  [[0, 1, 0], [0, 0, 0], [0, 0, 0]]."""
  return _matrix([[0, 1, 0], [0, 0, 0], [0, 0, 0]])


def box_blur() -> Array:
  """Mean of the 3×3 neighbourhood:  1/9 [[1, 1, 1], [1, 1, 1], [1, 1, 1]]."""
  return _matrix([[1, 1, 1], [1, 1, 1], [1, 1, 1]], 1 / 9)


def gaussian_blur() -> Array:
  """Binomial approximation of a Gaussian:  1/16 [[1, 2, 1], [2, 4, 2], [1, 2, 1]]."""
  return _matrix([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 1 / 16)


def sharpen() -> Array:
  """Identity plus a Laplacian:  [[0, −1, 0], [−1, 5, −1], [0, −1, 0]] (entries sum to 1)."""
  return _matrix([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])


def edge_detection() -> Array:
  """Laplacian with diagonals:  [[−1, −1, −1], [−1, 8, −1], [−1, −1, −1]]; 0 on flat regions."""
  return _matrix([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])


def sobel_x() -> Array:
  """Horizontal gradient (vertical edges), positive where x grows to the right:
  [[−1, 0, 1], [−2, 0, 2], [−1, 0, 1]]."""
  return _matrix([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def sobel_y() -> Array:
  """Vertical gradient (horizontal edges), positive where x grows downwards:
  [[−1, −2, −1], [0, 0, 0], [1, 2, 1]]."""
  return _matrix([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])


_BUILDERS: dict[str, Callable[[], Array]] = {
    'identity': identity,
    'shift_left': shift_left,
    'shift_right': shift_right,
    'shift_up': shift_up,
    'shift_down': shift_down,
    'box_blur': box_blur,
    'gaussian_blur': gaussian_blur,
    'sharpen': sharpen,
    'edge_detection': edge_detection,
    'sobel_x': sobel_x,
    'sobel_y': sobel_y,
}

FILTERS: dict[str, Array] = {name: build() for name, build in _BUILDERS.items()}


def get(name: str) -> Array:
  """The filter called `name` (a key of `FILTERS`).

  Raises:
    ValueError: for an unknown name, listing the valid ones.
  """
  if name not in _BUILDERS:
    raise ValueError(f'unknown filter {name!r}; valid: {sorted(_BUILDERS)}')
  return _BUILDERS[name]()
