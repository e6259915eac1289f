"""Tests for seqnets.data.formal_languages_tfds: build and read back, no TF."""

import socket
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from seqnets.data import formal_languages as fl
from seqnets.data import formal_languages_tfds as fl_tfds


@pytest.fixture(scope='module', autouse=True)
def no_network():
  """Any connection attempt fails at once instead of hanging."""

  def refuse(*args, **kwargs):
    raise AssertionError(f'network access attempted: {args!r}')

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(socket.socket, 'connect', refuse)
    patch.setattr(socket, 'create_connection', refuse)
    yield


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory, no_network):
  del no_network  # Built under the network guard.
  return tmp_path_factory.mktemp('tfds')


@pytest.fixture(scope='module')
def anbn_builder(data_dir):
  return fl_tfds.build('anbn', data_dir, train_n=(1, 3), test_n=(2, 6))


def test_builds_and_reads_back_without_tensorflow(anbn_builder):
  sources = anbn_builder.as_data_source()
  assert set(sources) == {'train', 'test'}
  assert (len(sources['train']), len(sources['test'])) == (3, 5)
  assert 'tensorflow' not in sys.modules


@pytest.mark.parametrize('split, first_n', [('train', 1), ('test', 2)])
def test_examples_equal_language_examples(anbn_builder, split, first_n):
  lang = fl.get_language('anbn')
  source = anbn_builder.as_data_source()[split]
  for i in reversed(range(len(source))):  # random access, any order
    record = source[i]
    assert int(record['n']) == first_n + i
    inputs, targets = lang.example(first_n + i)
    np.testing.assert_array_equal(record['inputs'], inputs)
    np.testing.assert_array_equal(record['targets'], targets)
    assert record['inputs'].dtype == np.int32
    assert record['targets'].dtype == np.float32


def test_rebuild_reuses_files_and_reopens_from_directory(anbn_builder, data_dir):
  again = fl_tfds.build('anbn', data_dir, train_n=(1, 3), test_n=(2, 6))
  assert again.data_dir == anbn_builder.data_dir
  reopened = tfds.builder_from_directory(anbn_builder.data_dir)
  assert int(reopened.as_data_source()['test'][4]['n']) == 6


def test_feature_spec_follows_language(tmp_path):
  builder = fl_tfds.build('anbncn', tmp_path, train_n=(1, 1), test_n=(1, 2))
  assert builder.info.features['targets'].shape == (None, 5)
  assert builder.builder_config.name == 'anbncn_train1to1_test1to2'
  record = builder.as_data_source()['test'][1]
  np.testing.assert_array_equal(
      record['targets'], fl.get_language('anbncn').example(2)[1])


def test_registered_configs_one_per_language():
  names = [config.name for config in fl_tfds.FormalLanguages.BUILDER_CONFIGS]
  assert names == list(fl.LANGUAGES)


def test_bad_arguments_fail_before_building(tmp_path):
  with pytest.raises(ValueError, match='valid names'):
    fl_tfds.build('abc', tmp_path, (1, 2), (1, 2))
  with pytest.raises(ValueError, match=r'test_n=\(0, 3\)'):
    fl_tfds.build('anbn', tmp_path, (1, 2), (0, 3))
  assert not list(tmp_path.iterdir())
