"""The one place where `config.data` keys become datasets.

`config.data.name` picks the dataset; its other keys:
  formal_language: language ('anbn' | 'anbncn'), train_n / test_n (lo, hi),
    batch_size, full_batch (every n of train_n once per step, as Gers & Schmidhuber)
  digits: test_fraction, split_seed, batch_size           (scikit-learn, offline)
  tfds_images: tfds_name ('mnist' | 'cifar10' | …), train_split, eval_split, data_dir, batch_size
  text_classification: train_path, eval_path, file_format (None: by suffix),
    max_length, min_count, max_vocab_size (0: all), batch_size
  tfds_texts: tfds_name ('glue/sst2'), train_split, eval_split, data_dir, max_length,
    min_count, max_vocab_size, batch_size
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

import ml_collections
import numpy as np

from seqnets.data import batching
from seqnets.data import formal_languages
from seqnets.data import text_classification
from seqnets.data.vocab import Vocabulary, tokenize


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """Values derived from the data that the model and loop need (never written into the config)."""
  vocab_size: int
  num_outputs: int
  objective: str
  pad_id: int = 0


@dataclasses.dataclass(frozen=True)
class DataSource:
  """`train_batches(seed, start_step)` yields numpy batches `{'inputs', ...}`;
  deterministic in (seed, step), so a resumed run replays exactly.
  `eval_sets` maps a split name to one numpy batch (evaluated at the end);
  `periodic_splits` are also evaluated every `train.eval_every_steps`.
  `train_split`, when set, names the eval set covering the training range
  (results then say whether it was learned exactly)."""
  info: DataInfo
  train_batches: Callable[[int, int], Iterator[dict[str, np.ndarray]]]
  eval_sets: dict[str, dict[str, np.ndarray]]
  periodic_splits: tuple[str, ...]
  train_split: str | None = None


def _check_range(field: str, value) -> tuple[int, int]:
  try:
    lo, hi = (int(v) for v in value)
  except (TypeError, ValueError):
    raise ValueError(f'data.{field} must be a pair (lo, hi) of integers, got {value!r}') from None
  if lo < 1 or hi < lo:
    raise ValueError(f'data.{field}=({lo}, {hi}) must satisfy 1 <= lo <= hi')
  return lo, hi


def _validate_formal_language(cfg: ml_collections.ConfigDict) -> None:
  if cfg.get('language') not in formal_languages.LANGUAGES:
    raise ValueError(f'data.language={cfg.get("language")!r}; valid: {sorted(formal_languages.LANGUAGES)}')
  train = _check_range('train_n', cfg.get('train_n'))
  test = _check_range('test_n', cfg.get('test_n'))
  if not (test[0] <= train[0] and train[1] <= test[1]):
    raise ValueError(f'data.test_n={test} must contain data.train_n={train}')
  if not cfg.get('full_batch', False) and (not isinstance(cfg.get('batch_size'), int) or cfg.batch_size <= 0):
    raise ValueError(f'data.batch_size must be a positive integer, got {cfg.get("batch_size")!r}')


def _formal_language(cfg: ml_collections.ConfigDict) -> DataSource:
  language = formal_languages.get_language(cfg.language)
  train_n, test_n = tuple(cfg.train_n), tuple(cfg.test_n)

  def train_batches(seed: int, start_step: int):
    return formal_languages.train_batches(language, train_n, cfg.get('batch_size', 1), seed,
                                          start_step=start_step, full_batch=cfg.get('full_batch', False))

  eval_sets = {
      'train_range': formal_languages.make_batch(language, range(train_n[0], train_n[1] + 1)),
      'test_range': formal_languages.make_batch(language, range(test_n[0], test_n[1] + 1)),
  }
  info = DataInfo(vocab_size=language.vocab_size, num_outputs=language.num_outputs,
                  objective='next_symbol_sets', pad_id=formal_languages.PAD_ID)
  return DataSource(info, train_batches, eval_sets, periodic_splits=('train_range',),
                    train_split='train_range')


def _positive(cfg, field: str) -> None:
  value = cfg.get(field)
  if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
    raise ValueError(f'data.{field} must be a positive integer, got {value!r}')


def _classification_source(train: dict, evals: dict[str, dict], batch_size: int,
                           vocab_size: int = 0) -> DataSource:
  """Arrays `{'inputs', 'labels'[, 'lengths']}` -> a DataSource of shuffled minibatches."""
  mark = lambda arrays: {**arrays, 'valid': np.ones(len(arrays['labels']), np.float32)}
  train, evals = mark(train), {k: mark(v) for k, v in evals.items()}
  num_classes = int(max(train['labels'].max(), *(e['labels'].max() for e in evals.values()))) + 1
  info = DataInfo(vocab_size=vocab_size, num_outputs=num_classes, objective='classification')
  return DataSource(
      info, lambda seed, start: batching.epoch_batches(train, batch_size, seed, start),
      evals, periodic_splits=tuple(evals))


def _validate_digits(cfg) -> None:
  _positive(cfg, 'batch_size')
  if not 0.0 < cfg.get('test_fraction', 0.2) < 1.0:
    raise ValueError(f'data.test_fraction must be in (0, 1), got {cfg.test_fraction!r}')


def _digits(cfg) -> DataSource:
  from seqnets.data import digits
  train, test = digits.load_split(cfg.get('test_fraction', 0.2), cfg.get('split_seed', 0))
  as_arrays = lambda d: {'inputs': d['images'], 'labels': d['labels']}
  return _classification_source(as_arrays(train), {'test': as_arrays(test)}, cfg.batch_size)


def _validate_tfds(cfg) -> None:
  _positive(cfg, 'batch_size')
  if not cfg.get('tfds_name'):
    raise ValueError('data.tfds_name must name a TFDS dataset, e.g. "mnist"')


def _tfds_images(cfg) -> DataSource:
  from seqnets.data import tfds_loaders
  load = lambda split: tfds_loaders.load_images(cfg.tfds_name, split, cfg.get('data_dir'))
  eval_split = cfg.get('eval_split', 'test')
  return _classification_source(load(cfg.get('train_split', 'train')), {eval_split: load(eval_split)},
                                cfg.batch_size)


def _text_source(cfg, train_pairs, eval_pairs: dict[str, list]) -> DataSource:
  tokenized = [tokenize(text) for text, _ in train_pairs]
  vocab = Vocabulary.build(tokenized, min_count=cfg.get('min_count', 1),
                           max_size=cfg.get('max_vocab_size') or None)
  def arrays(tokens, labels):
    return text_classification.make_batch(tokens, labels, vocab, pad_to=cfg.max_length)
  train = arrays(tokenized, [label for _, label in train_pairs])
  evals = {split: arrays([tokenize(t) for t, _ in pairs], [l for _, l in pairs])
           for split, pairs in eval_pairs.items()}
  return _classification_source(train, evals, cfg.batch_size, vocab_size=len(vocab))


def _validate_text(cfg) -> None:
  _positive(cfg, 'batch_size')
  _positive(cfg, 'max_length')
  for field in ('train_path', 'eval_path'):
    if not cfg.get(field):
      raise ValueError(f'data.{field} must name a TSV/CSV file')


def _text_classification(cfg) -> DataSource:
  read = lambda path: text_classification.read_examples(path, cfg.get('file_format'))
  return _text_source(cfg, read(cfg.train_path), {'dev': read(cfg.eval_path)})


def _validate_tfds_text(cfg) -> None:
  _validate_tfds(cfg)
  _positive(cfg, 'max_length')


def _tfds_texts(cfg) -> DataSource:
  from seqnets.data import tfds_loaders
  load = lambda split: tfds_loaders.load_texts(cfg.tfds_name, split, cfg.get('data_dir'))
  eval_split = cfg.get('eval_split', 'validation')
  return _text_source(cfg, load(cfg.get('train_split', 'train')), {eval_split: load(eval_split)})


DATASETS = {
    'formal_language': (_validate_formal_language, _formal_language),
    'digits': (_validate_digits, _digits),
    'tfds_images': (_validate_tfds, _tfds_images),
    'text_classification': (_validate_text, _text_classification),
    'tfds_texts': (_validate_tfds_text, _tfds_texts),
}


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad `data.*` field."""
  if cfg.get('name') not in DATASETS:
    raise ValueError(f'data.name={cfg.get("name")!r}; valid: {sorted(DATASETS)}')
  DATASETS[cfg.name][0](cfg)


def from_config(cfg: ml_collections.ConfigDict) -> DataSource:
  validate(cfg)
  return DATASETS[cfg.name][1](cfg)
