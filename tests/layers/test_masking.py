import jax
import numpy as np
import pytest

import seqnets as sn
from seqnets.layers.masking import check_lengths


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


def test_flip_sequences_checks_concrete_lengths():
  x = np.arange(8.0).reshape(2, 4, 1)
  with pytest.raises(ValueError, match=r'must lie in \[0, T\] = \[0, 4\], got lengths\[1\] = 6'):
    sn.flip_sequences(x, np.array([3, 6]))
  with pytest.raises(ValueError, match=r'lengths must be integers, got dtype float32'):
    sn.flip_sequences(x, np.array([3, 2], np.float32))
  with pytest.raises(ValueError, match=r'lengths must have shape \[B\] = \(2,\).*got shape \(3,\)'):
    sn.flip_sequences(x, np.array([3, 2, 1]))


def test_flip_sequences_clips_traced_lengths_never_nan():
  x = np.arange(12.0).reshape(3, 4, 1)
  flipped = jax.jit(sn.flip_sequences)(x, np.array([6, -1, 2]))       # as [4, 0, 2]
  np.testing.assert_array_equal(flipped[..., 0], [[3, 2, 1, 0], [4, 5, 6, 7], [9, 8, 10, 11]])


def test_check_lengths_returns_the_lengths():
  np.testing.assert_array_equal(check_lengths([2, 0, 3], 3, 3), [2, 0, 3])
  assert check_lengths(None, 3, 3) is None
