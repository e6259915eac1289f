import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from seqnets.data import batching, tfds_loaders


@pytest.mark.parametrize('name,shape', [('mnist', (28, 28, 1)), ('cifar10', (32, 32, 3))])
def test_load_images_with_mock_data(name, shape):
  with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
    data = tfds_loaders.load_images(name, 'train')
  assert data['inputs'].shape == (6, *shape) and data['inputs'].dtype == np.float32
  assert 0.0 <= data['inputs'].min() and data['inputs'].max() <= 1.0
  assert data['labels'].shape == (6,)
  assert 'tensorflow' not in sys.modules


def test_load_glue_sst2_texts_with_mock_data():
  with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
    pairs = tfds_loaders.load_texts('glue/sst2', 'validation')
  assert len(pairs) == 4 and all(isinstance(t, str) and l in (0, 1) for t, l in pairs)


def test_batch_indices_cover_each_epoch_once_and_replay():
  seen = np.concatenate([batching.batch_indices(10, 4, seed=3, step=s) for s in range(2)])
  assert len(set(seen.tolist())) == 8
  np.testing.assert_array_equal(batching.batch_indices(10, 4, 3, 5), batching.batch_indices(10, 4, 3, 5))
  assert not np.array_equal(batching.batch_indices(10, 4, 3, 0), batching.batch_indices(10, 4, 3, 2))
  resumed = batching.epoch_batches({'x': np.arange(10)}, 4, seed=3, start_step=3)
  straight = batching.epoch_batches({'x': np.arange(10)}, 4, seed=3)
  for _ in range(3):
    next(straight)
  np.testing.assert_array_equal(next(resumed)['x'], next(straight)['x'])
  with pytest.raises(ValueError, match='batch_size=11'):
    batching.epoch_batches({'x': np.arange(10)}, 11, seed=0)
