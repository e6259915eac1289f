import numpy as np

import seqnets as sn


def test_sequence_mask_worked_example():
  np.testing.assert_array_equal(
      sn.sequence_mask(np.array([2, 0, 3]), 3),
      [[True, True, False], [False, False, False], [True, True, True]])


def test_flip_sequences_keeps_padding_at_end():
  x = np.array([[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9]])[..., None]
  flipped = sn.flip_sequences(x, np.array([3, 2, 4]))
  np.testing.assert_array_equal(flipped[..., 0], [[3, 2, 1, 0], [5, 4, 0, 0], [9, 8, 7, 6]])
  np.testing.assert_array_equal(sn.flip_sequences(flipped, np.array([3, 2, 4])), x)


def test_flip_sequences_without_lengths_reverses_everything():
  x = np.arange(6).reshape(1, 6, 1)
  np.testing.assert_array_equal(sn.flip_sequences(x, None)[0, :, 0], [5, 4, 3, 2, 1, 0])


def test_masked_mean_ignores_padding():
  x = np.array([[[1.0], [3.0], [100.0]], [[2.0], [0.0], [0.0]]])
  mask = sn.sequence_mask(np.array([2, 1]), 3)
  np.testing.assert_allclose(sn.masked_mean(x, mask)[:, 0], [2.0, 2.0])
