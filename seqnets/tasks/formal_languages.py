"""Counter languages (aⁿbⁿ, aⁿbⁿcⁿ) as next-symbol-set prediction (Gers & Schmidhuber 2001).

`config.data`: language ('anbn' | 'anbncn'), train_n / test_n (lo, hi),
batch_size, full_batch (every n of train_n once per step). Eval sets:
`train_range` (every n of train_n) and `test_range` (every n of test_n).
An evaluation file holds one string per line, letters only (`aabb` for n = 2).
"""

from __future__ import annotations

import pathlib

import jax.numpy as jnp
import optax

from seqnets.data import formal_languages
from seqnets.layers import masking
from seqnets.tasks import base
from seqnets.data import text_file
from seqnets.tasks import fields


def validate(cfg) -> None:
  if cfg.get('language') not in formal_languages.LANGUAGES:
    raise ValueError(f'data.language={cfg.get("language")!r}; valid: {sorted(formal_languages.LANGUAGES)}')
  train = fields.positive_range(cfg, 'train_n')
  test = fields.positive_range(cfg, 'test_n')
  if not (test[0] <= train[0] and train[1] <= test[1]):
    raise ValueError(f'data.test_n={test} must contain data.train_n={train}')
  if not isinstance(cfg.get('full_batch', False), bool):
    raise ValueError(f'data.full_batch must be True or False, got {cfg.full_batch!r}')
  if not cfg.get('full_batch', False):
    fields.positive_int(cfg, 'batch_size')


def build_data(cfg) -> base.TaskData:
  language = formal_languages.get_language(cfg.language)
  train_n, test_n = tuple(cfg.train_n), tuple(cfg.test_n)

  def train_batches(seed: int, start_step: int):
    return formal_languages.train_batches(language, train_n, cfg.get('batch_size', 1), seed,
                                          start_step=start_step, full_batch=cfg.get('full_batch', False))

  eval_sets = {
      'train_range': formal_languages.make_batch(language, range(train_n[0], train_n[1] + 1)),
      'test_range': formal_languages.make_batch(language, range(test_n[0], test_n[1] + 1)),
  }
  info = base.DataInfo(vocab_size=language.vocab_size, num_outputs=language.num_outputs,
                       pad_id=formal_languages.PAD_ID)
  return base.TaskData(base.Preprocessing(info), train_batches, eval_sets)


def read_file(cfg, path: str | pathlib.Path) -> list[int]:
  """The n of every string in `path` (one string per line, letters only: `aabb`)."""
  language = formal_languages.get_language(cfg.language)
  ns = []
  for line, text in text_file.read_lines(path):
    text = text.strip()
    letters = len(language.symbols) - 2
    n = len(text) // letters
    if not text or n < language.min_n or language.string_fn(n)[1:-1] != text:
      raise ValueError(f'{path}:{line}: {text[:40]!r} is not a string of {language.name}')
    ns.append(n)
  if not ns:
    raise ValueError(f'{path}: no strings')
  return ns


def encode(cfg, preprocessing: base.Preprocessing, ns) -> base.Batch:
  del preprocessing
  return formal_languages.make_batch(formal_languages.get_language(cfg.language), ns)


def _steps_right(logits, batch):
  mask = masking.sequence_mask(batch['lengths'], logits.shape[1])           # [B, T]
  step_right = jnp.all((logits > 0) == (batch['targets'] > 0.5), axis=-1)   # [B, T]
  return mask, step_right


def example_correct(logits, batch):
  """`[B]` bool: every real step fully right."""
  mask, step_right = _steps_right(logits, batch)
  return jnp.all(step_right | ~mask, axis=-1)


def loss(logits, batch):
  """Multi-label next-symbol prediction.

  `logits: [B, T, V]`, `batch['targets']: [B, T, V]` multi-hot,
  `batch['lengths']: [B]`. Loss: sigmoid cross-entropy summed over V, averaged
  over real steps. A step is correct when every output thresholded at 0.5
  (logit > 0) equals its target; a string when every real step is. Rows of
  length 0 (padding rows) count nowhere.
  """
  mask, step_right = _steps_right(logits, batch)
  per_step = optax.sigmoid_binary_cross_entropy(logits, batch['targets']).sum(-1)   # [B, T]
  token_count = mask.sum()
  loss_sum = jnp.sum(jnp.where(mask, per_step, 0.0))
  real_rows = batch['lengths'] > 0
  sums = {
      'loss_sum': loss_sum,
      'token_count': token_count.astype(jnp.float32),
      'tokens_correct': jnp.sum(step_right & mask).astype(jnp.float32),
      'sequences_correct': jnp.sum(jnp.all(step_right | ~mask, -1) & real_rows).astype(jnp.float32),
      'sequence_count': jnp.sum(real_rows).astype(jnp.float32),
  }
  return loss_sum / jnp.maximum(token_count, 1), sums


def finalize(record: dict) -> dict:
  """`learned_training_range`: every string of the training range exactly right."""
  accuracy = record.get('eval/train_range/accuracy')
  return {} if accuracy is None else {'learned_training_range': bool(accuracy == 1.0)}


TASK = base.Task(
    name='formal_language',
    data_keys=('batch_size', 'full_batch', 'language', 'test_n', 'train_n'),
    validate=validate,
    build_data=build_data,
    loss=loss,
    example_correct=example_correct,
    read_file=read_file,
    encode=encode,
    evaluator_types=('metrics', 'accuracy_by_n'),
    reported_metrics=lambda config: (
        base.ReportedMetric('learned_training_range', 'seeds that learned the training range',
                            aggregate='count_true'),
        base.ReportedMetric('eval/test_range/max_correct_n', 'largest all-correct n'),
    ),
    finalize=finalize,
    time_keys=('inputs', 'targets'),
)
