"""Strings of handwritten digits: 8×8 digits side by side, for image-to-sequence models.

Synopsis:
  data = digits.load()
  train, test = split()                                   # disjoint index pools of the 1,797
  images, widths, targets = make_strings(data['images'][train], data['labels'][train],
                                         np.random.default_rng(0), count=100, lengths=(1, 5))
  # images [100, 8, 40, 1] float32, widths [100] (digits), targets ['3917', '05', ...]

An image of n digits holds them left-aligned, each in its own 8-column cell, and
zeros to the right up to `8 · lengths[1]` columns. The strings (how many digits,
which ones) come only from `rng`, so the same rng gives the same strings.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from seqnets.data import digits

DIGIT = 8                  # side of one digit, pixels
TEST_FRACTION = 0.2        # the evaluation pool: unseen handwriting
SPLIT_SEED = 0


def split(labels: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Disjoint `(train, eval)` index pools into `digits.load()` (stratified, 80 / 20)."""
  if labels is None:
    labels = digits.load()['labels']
  return digits.stratified_split(labels, TEST_FRACTION, SPLIT_SEED)


def sample_strings(pool_size: int, rng: np.random.Generator, count: int,
                   lengths: tuple[int, int] = (1, 5)) -> list[np.ndarray]:
  """`count` strings, each an index array into a pool of `pool_size` digits, of
  lo..hi digits (uniform length, uniform digits)."""
  lo, hi = lengths
  if not 1 <= lo <= hi:
    raise ValueError(f'lengths=({lo}, {hi}) must satisfy 1 <= lo <= hi')
  sizes = rng.integers(lo, hi + 1, count)
  picks = rng.integers(0, pool_size, (count, hi))
  return [picks[row, :size] for row, size in enumerate(sizes)]


def compose(images: np.ndarray, strings: Sequence[np.ndarray], max_digits: int
            ) -> tuple[np.ndarray, np.ndarray]:
  """`images [M, 8, 8, 1]` and index strings -> (`[N, 8, 8 · max_digits, 1]` float32,
  widths `[N]` int32): each string's digits side by side from the left, zeros after."""
  height, width = images.shape[1:3]
  out = np.zeros((len(strings), height, width * max_digits, images.shape[3]), np.float32)
  widths = np.zeros(len(strings), np.int32)
  for row, string in enumerate(strings):
    if len(string) > max_digits:
      raise ValueError(f'string {row} has {len(string)} digits; an image holds {max_digits}')
    for position, index in enumerate(string):
      out[row, :, position * width:(position + 1) * width] = images[index]
    widths[row] = len(string)
  return out, widths


def make_strings(images: np.ndarray, labels: np.ndarray, rng: np.random.Generator, count: int,
                 lengths: tuple[int, int] = (1, 5)) -> tuple[np.ndarray, np.ndarray, list[str]]:
  """`count` images of lo..hi digits drawn from `images [M, 8, 8, 1]`, `labels [M]`:
  (images `[N, 8, 8 · hi, 1]` float32, widths `[N]` = digits, target strings)."""
  strings = sample_strings(len(images), rng, count, lengths)
  out, widths = compose(images, strings, lengths[1])
  return out, widths, [''.join(str(int(labels[i])) for i in s) for s in strings]
