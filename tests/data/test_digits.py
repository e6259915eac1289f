import numpy as np
import pytest

from seqnets.data import digits


def test_stratified_split_keeps_class_proportions_and_is_a_partition():
  labels = np.repeat(np.arange(3), [10, 20, 5])
  train, test = digits.stratified_split(labels, 0.2, seed=0)
  assert sorted(np.concatenate([train, test]).tolist()) == list(range(35))
  assert np.bincount(labels[test]).tolist() == [2, 4, 1]
  again, _ = digits.stratified_split(labels, 0.2, seed=0)
  np.testing.assert_array_equal(train, again)


def test_bad_fraction_is_named():
  with pytest.raises(ValueError, match='test_fraction'):
    digits.stratified_split(np.zeros(4), 1.5, seed=0)


def test_load_split_shapes_and_ranges():
  pytest.importorskip('sklearn')
  train, test = digits.load_split()
  assert train['images'].shape[1:] == (8, 8, 1) and len(train['images']) + len(test['images']) == 1797
  counts = np.bincount(np.concatenate([train['labels'], test['labels']]))
  np.testing.assert_array_equal(np.bincount(test['labels']), np.round(0.2 * counts).astype(int))
  assert train['images'].max() == 1.0 and train['images'].min() == 0.0
  assert set(np.unique(test['labels'])) == set(range(10))
