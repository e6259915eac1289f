"""Length buckets: every example once per epoch, close lengths in a batch, replay from any
step, and the padding fraction counted by hand."""

import numpy as np

from seqnets.data import batching

RNG = np.random.default_rng(0)
LENGTHS = RNG.integers(1, 40, 500)


def test_an_epoch_covers_every_example_once_with_close_lengths():
  batches = batching.bucket_epoch(LENGTHS, batch_size=16, bucket_width=8, seed=0, epoch=0)
  assert sorted(np.concatenate(batches).tolist()) == list(range(500))
  assert all(len(b) <= 16 and len(set(LENGTHS[b] // 8)) == 1 for b in batches)
  again = batching.bucket_epoch(LENGTHS, 16, 8, seed=0, epoch=0)
  assert all(np.array_equal(a, b) for a, b in zip(batches, again))
  other = batching.bucket_epoch(LENGTHS, 16, 8, seed=0, epoch=1)
  assert len(other) == len(batches) and not all(np.array_equal(a, b)
                                                for a, b in zip(batches, other))


def test_steps_replay_from_any_start_and_cross_epochs():
  per_epoch = len(batching.bucket_epoch(LENGTHS, 16, 8, 3, 0))
  steps = batching.bucketed_steps(LENGTHS, 16, 8, seed=3)
  first = [next(steps) for _ in range(per_epoch + 5)]
  for rows, width in first:
    assert width % 8 == 0 and LENGTHS[rows].max() < width <= LENGTHS[rows].max() + 8
  assert sorted(np.concatenate([r for r, _ in first[:per_epoch]]).tolist()) == list(range(500))
  resumed = batching.bucketed_steps(LENGTHS, 16, 8, seed=3, start_step=per_epoch - 2)
  for expected_rows, expected_width in first[per_epoch - 2:]:
    rows, width = next(resumed)
    assert np.array_equal(rows, expected_rows) and width == expected_width


def test_padding_fraction_by_hand():
  lengths = np.array([1, 2, 3, 9])
  # Buckets of width 4: {1, 2, 3} -> width 4, {9} -> width 12; batches of 2 rows.
  # Batches: two from the first bucket (2 rows + 1 row), one from the second.
  real = 1 + 2 + 3 + 9
  total = 2 * 4 + 2 * 4 + 2 * 12
  assert np.isclose(batching.padding_fraction(lengths, 2, 4), 1 - real / total)
