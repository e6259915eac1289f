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


def bucket_width_of(lengths: np.ndarray, bucket_width: int) -> int:
  """The padded width of a batch of sequences of `lengths`: the next multiple of
  `bucket_width` above the longest."""
  return (int(np.max(lengths)) // bucket_width + 1) * bucket_width


def bucket_epoch(lengths: np.ndarray, batch_size: int, bucket_width: int, seed: int,
                 epoch: int) -> list[np.ndarray]:
  """One epoch of batches of example indices, each from one length bucket.

  Examples are shuffled (`default_rng([seed, epoch])`), grouped by
  `length // bucket_width`, cut into batches of `batch_size` within each
  bucket, and the batches shuffled; so a batch's lengths differ by less than
  `bucket_width` and padding stays small. The last batch of a bucket may be short.
  """
  rng = np.random.default_rng([seed, epoch])
  order = rng.permutation(len(lengths))
  buckets: dict[int, list[int]] = {}
  for index in order:
    buckets.setdefault(int(lengths[index]) // bucket_width, []).append(int(index))
  batches = [np.asarray(members[i:i + batch_size])
             for _, members in sorted(buckets.items())
             for i in range(0, len(members), batch_size)]
  return [batches[i] for i in rng.permutation(len(batches))]


def bucketed_steps(lengths: np.ndarray, batch_size: int, bucket_width: int, seed: int,
                   start_step: int = 0) -> Iterator[tuple[np.ndarray, int]]:
  """Endless `(example indices, padded width)` of steps `start_step, ...` over epochs of
  `bucket_epoch` (deterministic in (seed, step), so a resumed run replays)."""
  lengths = np.asarray(lengths)
  per_epoch = len(bucket_epoch(lengths, batch_size, bucket_width, 0, 0))
  epoch_batches, current = None, None
  step = start_step
  while True:
    epoch, index = divmod(step, per_epoch)
    if epoch != current:
      epoch_batches, current = bucket_epoch(lengths, batch_size, bucket_width, seed, epoch), epoch
    rows = epoch_batches[index]
    yield rows, bucket_width_of(lengths[rows], bucket_width)
    step += 1


def padding_fraction(lengths: np.ndarray, batch_size: int, bucket_width: int) -> float:
  """The fraction of padded positions in one epoch of `bucket_epoch` batches, each
  `batch_size` rows of its bucket's width."""
  lengths = np.asarray(lengths)
  batches = bucket_epoch(lengths, batch_size, bucket_width, 0, 0)
  real = sum(int(lengths[b].sum()) for b in batches)
  total = sum(batch_size * bucket_width_of(lengths[b], bucket_width) for b in batches)
  return 1 - real / max(total, 1)
