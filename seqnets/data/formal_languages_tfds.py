"""TFDS builder for the counter languages of `seqnets.data.formal_languages`.

Writes each language's examples once, as ``array_record`` files, so that
evaluation sets (up to n = 1000 and beyond) are built once and then read by
random access through ``builder.as_data_source()``. This needs no TensorFlow:
TFDS 4.9 serialises examples with its own copy of the ``tf.train.Example``
proto (``tensorflow_datasets.proto``), writes them with the ``array_record``
package, and decodes them back to NumPy in the data source. The builder has
no URLs and never downloads.

Synopsis:

  builder = build('anbn', data_dir, train_n=(1, 10), test_n=(1, 1000))
  test = builder.as_data_source()['test']   # random access, no TensorFlow
  ex = test[0]            # {'inputs': [L] int32, 'targets': [L, V] float32,
                          #  'n': int32}, equal to language.example(ex['n'])

The class is not put in the global TFDS registry (``skip_registration``):
importing this module has no side effects, and ``build`` is the entry point.
A built dataset can also be reopened with ``tfds.builder_from_directory``.
"""

from __future__ import annotations

import dataclasses
import os

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from seqnets.data import formal_languages

DEFAULT_TRAIN_N = (1, 10)
DEFAULT_TEST_N = (1, 1000)


@dataclasses.dataclass
class FormalLanguagesConfig(tfds.core.BuilderConfig):
  """One language with its train and test ranges of n.

  Attributes:
    language: Key of ``formal_languages.LANGUAGES``, e.g. ``'anbn'``.
    train_n: ``(lo, hi)``, inclusive: the train split has one string per n.
    test_n: ``(lo, hi)``, inclusive: the test split has one string per n.
  """

  language: str = 'anbn'
  train_n: tuple[int, int] = DEFAULT_TRAIN_N
  test_n: tuple[int, int] = DEFAULT_TEST_N


def make_config(
    language: str,
    train_n: tuple[int, int] = DEFAULT_TRAIN_N,
    test_n: tuple[int, int] = DEFAULT_TEST_N,
) -> FormalLanguagesConfig:
  """A config whose name encodes its ranges unless they are the defaults.

  The name decides the directory (``data_dir/formal_languages/<name>/<version>``),
  so two builds with different ranges never share files.

  Raises:
    ValueError: for an unknown language (listing the valid ones) or a bad range.
  """
  lang = formal_languages.get_language(language)
  train_n = _check_range('train_n', train_n, lang.min_n)
  test_n = _check_range('test_n', test_n, lang.min_n)
  name = language
  if (train_n, test_n) != (DEFAULT_TRAIN_N, DEFAULT_TEST_N):
    name += f'_train{train_n[0]}to{train_n[1]}_test{test_n[0]}to{test_n[1]}'
  return FormalLanguagesConfig(
      name=name,
      description=(
          f'{lang.name}: train n in [{train_n[0]}, {train_n[1]}], '
          f'test n in [{test_n[0]}, {test_n[1]}].'),
      language=language,
      train_n=train_n,
      test_n=test_n,
  )


def _check_range(field: str, n_range, min_n: int) -> tuple[int, int]:
  try:
    lo, hi = (int(v) for v in n_range)
  except (TypeError, ValueError):
    raise ValueError(f'{field} must be a pair (lo, hi), got {n_range!r}.') from None
  if not min_n <= lo <= hi:
    raise ValueError(
        f'{field}={n_range!r} must satisfy min_n={min_n} <= lo <= hi.')
  return lo, hi


class FormalLanguages(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """aⁿbⁿ, aⁿbⁿcⁿ, … next-symbol prediction (Gers & Schmidhuber, 2001).

  Features of one example of size n, with ``L = language.input_length(n)``
  and ``V = language.num_outputs``: ``inputs`` ``[L] int32`` symbol ids,
  ``targets`` ``[L, V] float32`` multi-hot legal next symbols, ``n`` int32.
  Splits ``train`` and ``test`` hold one example per n of the config's
  ranges, in increasing n: record i of a split is n = lo + i.
  """

  # TFDS 4.9.10 finds this file through `importlib_resources`, which it does
  # not declare as a dependency on Python >= 3.9 (tensorflow/datasets#11212);
  # giving the path directly avoids that import.
  code_path = epath.Path(__file__)

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  BUILDER_CONFIGS = [make_config(name) for name in formal_languages.LANGUAGES]

  def _info(self) -> tfds.core.DatasetInfo:
    lang = formal_languages.get_language(self.builder_config.language)
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'inputs': tfds.features.Tensor(shape=(None,), dtype=np.int32),
            'targets': tfds.features.Tensor(
                shape=(None, lang.num_outputs), dtype=np.float32),
            'n': tfds.features.Scalar(dtype=np.int32),
        }),
        supervised_keys=('inputs', 'targets'),
        # Keeps generation order, so record i of a split is n = lo + i.
        disable_shuffling=True,
        citation=_CITATION,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Generated, nothing to download.
    return {
        'train': self._generate_examples(self.builder_config.train_n),
        'test': self._generate_examples(self.builder_config.test_n),
    }

  def _generate_examples(self, n_range):
    lang = formal_languages.get_language(self.builder_config.language)
    for n in range(n_range[0], n_range[1] + 1):
      inputs, targets = lang.example(n)
      yield n, {'inputs': inputs, 'targets': targets, 'n': np.int32(n)}


def build(
    language: str,
    data_dir: str | os.PathLike,
    train_n: tuple[int, int] = DEFAULT_TRAIN_N,
    test_n: tuple[int, int] = DEFAULT_TEST_N,
) -> FormalLanguages:
  """Builds (or reopens, if already built) the dataset in ``data_dir``.

  Never touches the network: the examples are generated, and TFDS's
  download of prepared datasets from GCS is switched off.

  Args:
    language: Key of ``formal_languages.LANGUAGES``.
    data_dir: Directory to write to; the files go under
      ``data_dir/formal_languages/<config name>/1.0.0``.
    train_n: ``(lo, hi)`` inclusive range of the train split.
    test_n: ``(lo, hi)`` inclusive range of the test split.

  Returns:
    The prepared builder; ``builder.as_data_source()[split][i]`` is a dict of
    NumPy arrays.

  Raises:
    ValueError: for an unknown language or a bad range.
  """
  config = make_config(language, train_n, test_n)
  builder = FormalLanguages(
      # A registered config is passed by name: TFDS warns about any other.
      config=config.name if config.name == language else config,
      data_dir=os.fspath(data_dir),
      file_format='array_record',
  )
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(try_download_gcs=False),
  )
  return builder


_CITATION = """\
@article{gers2001lstm,
  title={{LSTM} recurrent networks learn simple context-free and
         context-sensitive languages},
  author={Gers, Felix A. and Schmidhuber, J{\\"u}rgen},
  journal={IEEE Transactions on Neural Networks},
  volume={12},
  number={6},
  pages={1333--1340},
  year={2001}
}
"""
