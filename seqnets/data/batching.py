"""Deterministic minibatches: batch `s` of a run is a pure function of `(seed, s)`.

Each epoch is a fresh permutation drawn from `np.random.default_rng([seed, epoch])`;
the last incomplete batch of an epoch is dropped, so every batch has the same
shape (one compile) and a resumed run replays exactly the batches of an
uninterrupted one.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np


def batch_indices(num_examples: int, batch_size: int, seed: int, step: int) -> np.ndarray:
  """`[batch_size]` example indices of batch `step`.

  Example: with 10 examples and batch size 4, steps 0 and 1 cover 8 distinct
  examples of epoch 0's permutation; step 2 starts epoch 1.
  """
  if not 0 < batch_size <= num_examples:
    raise ValueError(f'batch_size={batch_size} must be in 1..{num_examples} (the number of examples)')
  per_epoch = num_examples // batch_size
  epoch, index = divmod(step, per_epoch)
  order = np.random.default_rng([seed, epoch]).permutation(num_examples)
  return order[index * batch_size:(index + 1) * batch_size]


def epoch_batches(arrays: dict[str, np.ndarray], batch_size: int, seed: int,
                  start_step: int = 0) -> Iterator[dict[str, np.ndarray]]:
  """Endless batches of `arrays` (all with the same leading size) from step `start_step`."""
  num_examples = len(next(iter(arrays.values())))
  batch_indices(num_examples, batch_size, seed, 0)  # checks the sizes now, not at first next()

  def batches():
    step = start_step
    while True:
      rows = batch_indices(num_examples, batch_size, seed, step)
      yield {k: v[rows] for k, v in arrays.items()}
      step += 1

  return batches()
