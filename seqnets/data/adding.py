"""Sequences of the adding problem (Hochreiter & Schmidhuber 1997; Le et al. 2015): T steps
of (a number uniform in [0, 1), a marker), the markers 1 at exactly two steps, one in each
half; the target is the sum of the two marked numbers. The task (objective, metrics,
config) is `seqnets.tasks.adding`.
"""

from __future__ import annotations

import numpy as np


def make_batch(rng: np.random.Generator, count: int, length: int) -> dict[str, np.ndarray]:
  """`count` random sequences of `length` steps of the adding problem: inputs `[B, T, 2]` (a number in
  [0, 1) and a marker, 1 at one step of each half), targets `[B]` the sum of the marked numbers."""
  half = length // 2
  values = rng.uniform(0.0, 1.0, (count, length)).astype(np.float32)
  first = rng.integers(0, half, count)
  second = rng.integers(half, length, count)
  markers = np.zeros((count, length), np.float32)
  rows = np.arange(count)
  markers[rows, first] = 1.0
  markers[rows, second] = 1.0
  return {'inputs': np.stack([values, markers], -1),
          'targets': values[rows, first] + values[rows, second],
          'lengths': np.full(count, length, np.int32)}
