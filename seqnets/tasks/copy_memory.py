"""Copy memory (Hochreiter & Schmidhuber 1997; the setup of Arjovsky et al. 2016): recall 10
symbols after a delay of T steps.

Symbols: 0..7 data, 8 blank, 9 delimiter ("go"). With delay T every sequence has T + 20 steps:

  inputs   d_1 … d_10   T − 1 blanks   delimiter   10 blanks
  targets  T + 10 blanks                            d_1 … d_10

with each d_i uniform over 0..7. Loss: the mean cross-entropy over all T + 20 steps (nats);
`accuracy`: the fraction of recalled symbols (the last 10 steps) right. A model without
memory can do no better than blanks, then the uniform distribution over the data symbols:
`10 log 8 / (T + 20)` nats per step, the data summary's `baseline/loss`.

`config.data`: delay (T), batch_size, eval_size (held-out sequences), eval_seed.
Training batches are drawn afresh for every step from (seed, step); the eval set `test` is
drawn once from eval_seed, on a stream of its own. An evaluation file holds one sequence
per line, its 10 data symbols as digits (`0123456701`).

Batches: `inputs [B, T + 20] int32`, `targets [B, T + 20] int32`, `lengths [B]` (T + 20;
0 on padding rows).
"""

from __future__ import annotations

import pathlib

import jax.numpy as jnp
import numpy as np
import optax

from seqnets.data import text_file
from seqnets.data.copy_memory import (COPY_LENGTH, NUM_DATA_SYMBOLS, VOCAB_SIZE, baseline_loss,
                                      make_batch, random_symbols)
from seqnets.layers import masking
from seqnets.tasks import base
from seqnets.tasks import fields

def validate(cfg) -> None:
  fields.positive_int(cfg, 'delay')
  fields.positive_int(cfg, 'batch_size')
  fields.positive_int(cfg, 'eval_size')
  fields.non_negative_int(cfg, 'eval_seed')


def build_data(cfg) -> base.TaskData:
  return base.generated_data(
      lambda rng, count: make_batch(random_symbols(rng, count), cfg.delay), cfg,
      base.DataInfo(vocab_size=VOCAB_SIZE, num_outputs=VOCAB_SIZE),
      summary={'baseline/loss': baseline_loss(cfg.delay)})


def read_file(cfg, path: str | pathlib.Path) -> np.ndarray:
  """`[N, 10]` data symbols, one sequence per line written as 10 digits in 0..7."""
  del cfg
  rows = []
  for line, text in text_file.read_lines(path):
    text = text.strip()
    if len(text) != COPY_LENGTH or any(c not in '01234567' for c in text):
      raise ValueError(f'{path}:{line}: {text[:40]!r} is not {COPY_LENGTH} data symbols '
                       f'(digits 0..{NUM_DATA_SYMBOLS - 1})')
    rows.append([int(c) for c in text])
  if not rows:
    raise ValueError(f'{path}: no sequences')
  return np.asarray(rows, np.int32)


def encode(cfg, preprocessing: base.Preprocessing, symbols) -> base.Batch:
  del preprocessing
  return make_batch(symbols, cfg.delay)


def _check_outputs(logits) -> None:
  if logits.ndim != 3 or logits.shape[-1] != VOCAB_SIZE:
    raise ValueError(f'copy_memory needs an output per step [B, T + 20, {VOCAB_SIZE}], got shape '
                     f"{tuple(logits.shape)}: set model.readout='every_step'")


def _recalled(logits, batch):
  """`(real steps [B, L], recalled steps [B, L], right [B, L])`: the recalled steps are the
  last 10 real steps of each row."""
  _check_outputs(logits)
  lengths = batch['lengths']
  steps = jnp.arange(logits.shape[1])[None]
  mask = masking.sequence_mask(lengths, logits.shape[1])
  recalled = mask & (steps >= (lengths - COPY_LENGTH)[:, None])
  right = jnp.argmax(logits, -1) == batch['targets']
  return mask, recalled, right


def example_correct(logits, batch):
  """`[B]` bool: all 10 symbols recalled right."""
  _, recalled, right = _recalled(logits, batch)
  return jnp.all(right | ~recalled, axis=-1)


def loss(logits, batch):
  """Mean softmax cross-entropy over the real steps.

  `logits: [B, L, 10]`, `batch['targets']: [B, L]`, `batch['lengths']: [B]`. Sums:
  `loss_sum`, `token_count` (real steps), `recalled_correct`, `recalled_count` (the last
  10 real steps of each row). Rows of length 0 count nowhere.
  """
  mask, recalled, right = _recalled(logits, batch)
  per_step = optax.softmax_cross_entropy_with_integer_labels(logits, batch['targets'])   # [B, L]
  token_count = mask.sum().astype(jnp.float32)
  sums = {
      'loss_sum': jnp.sum(jnp.where(mask, per_step, 0.0)),
      'token_count': token_count,
      'recalled_correct': jnp.sum(right & recalled).astype(jnp.float32),
      'recalled_count': jnp.sum(recalled).astype(jnp.float32),
  }
  return sums['loss_sum'] / jnp.maximum(token_count, 1), sums


def reported_metrics(config: dict) -> list[base.ReportedMetric]:
  metrics = []
  for name in config['evals']:
    metrics += [base.ReportedMetric(f'eval/{name}/loss', f'{name} loss', higher_is_better=False),
                base.ReportedMetric(f'eval/{name}/accuracy', f'{name} recall accuracy')]
  return metrics


TASK = base.Task(
    name='copy_memory',
    data_keys=('batch_size', 'delay', 'eval_seed', 'eval_size'),
    validate=validate,
    build_data=build_data,
    loss=loss,
    example_correct=example_correct,
    read_file=read_file,
    encode=encode,
    evaluator_types=('metrics',),
    reported_metrics=reported_metrics,
)
