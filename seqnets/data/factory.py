"""The one place where `config.data` keys become datasets.

Config (`config.data`) for `name='formal_language'`:
  language: 'anbn' | 'anbncn'
  train_n: (lo, hi) n of the training strings;  test_n: (lo, hi) n evaluated at the end
  batch_size: strings per step (ignored with full_batch)
  full_batch: every n of train_n once per step (Gers & Schmidhuber's training set)
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

import ml_collections
import numpy as np

from seqnets.data import formal_languages


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """Values derived from the data that the model and loop need (never written into the config)."""
  vocab_size: int
  num_outputs: int
  objective: str
  pad_id: int = 0


@dataclasses.dataclass(frozen=True)
class DataSource:
  """`train_batches(seed, start_step)` yields numpy batches `{'inputs', 'targets', 'lengths', ...}`;
  deterministic in (seed, step), so a resumed run replays exactly.
  `eval_sets` maps a split name to one numpy batch; `train_split` names the
  eval set that covers the training range."""
  info: DataInfo
  train_batches: Callable[[int, int], Iterator[dict[str, np.ndarray]]]
  eval_sets: dict[str, dict[str, np.ndarray]]
  train_split: str


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
  return DataSource(info, train_batches, eval_sets, train_split='train_range')


DATASETS = {'formal_language': (_validate_formal_language, _formal_language)}


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad `data.*` field."""
  if cfg.get('name') not in DATASETS:
    raise ValueError(f'data.name={cfg.get("name")!r}; valid: {sorted(DATASETS)}')
  DATASETS[cfg.name][0](cfg)


def from_config(cfg: ml_collections.ConfigDict) -> DataSource:
  validate(cfg)
  return DATASETS[cfg.name][1](cfg)
