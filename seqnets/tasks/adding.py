"""The adding problem (Hochreiter & Schmidhuber 1997; the setup of Le et al. 2015 and
Arjovsky et al. 2016): the sum of two marked numbers of a long sequence, a regression.

Each of the T steps holds two inputs: a number uniform in [0, 1) and a marker, 1 at exactly
two steps (one uniform in the first half, steps 0 .. ⌊T/2⌋ − 1, one in the second half) and
0 elsewhere. The target is the sum of the two marked numbers. The model outputs one real
value per sequence (`[B, 1]`). Loss: the mean squared error, reported as `loss` and `mse`;
`accuracy`: the fraction of sequences with absolute error below 0.04 (the criterion of
Hochreiter & Schmidhuber). Always predicting 1 gives MSE Var(u + v) = 2/12 = 1/6 ≈ 0.167,
the data summary's `baseline/loss`.

`config.data`: length (T ≥ 2), batch_size, eval_size (held-out sequences), eval_seed.
Training batches are drawn afresh for every step from (seed, step); the eval set `test` is
drawn once from eval_seed, on a stream of its own. An evaluation file (.npz) holds
`inputs [N, T, 2]` float32 and `targets [N]`.

Batches: `inputs [B, T, 2] float32`, `targets [B] float32`, `lengths [B]` (T; 0 on padding rows).
"""

from __future__ import annotations

import pathlib

import jax.numpy as jnp
import numpy as np

from seqnets import files
from seqnets.data.adding import make_batch
from seqnets.tasks import base
from seqnets.tasks import fields

BASELINE_MSE = 1.0 / 6.0          # E[(u + v − 1)²] for u, v uniform in [0, 1)
TOLERANCE = 0.04


def validate(cfg) -> None:
  length = fields.positive_int(cfg, 'length')
  if length < 2:
    raise ValueError(f'data.length must be at least 2 (a marker in each half), got {length}')
  fields.positive_int(cfg, 'batch_size')
  fields.positive_int(cfg, 'eval_size')
  fields.non_negative_int(cfg, 'eval_seed')


def build_data(cfg) -> base.TaskData:
  return base.generated_data(lambda rng, count: make_batch(rng, count, cfg.length), cfg,
                             base.DataInfo(vocab_size=0, num_outputs=1),
                             summary={'baseline/loss': BASELINE_MSE})


def read_file(cfg, path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """`{'inputs' [N, T, 2], 'targets' [N]}` from an .npz file."""
  arrays = files.read_npz(path, {'inputs': '[N, T, 2]', 'targets': '[N]'})
  inputs, targets = arrays['inputs'], arrays['targets']
  if inputs.ndim != 3 or inputs.shape[-1] != 2 or inputs.shape[1] != cfg.length:
    raise ValueError(f'{path}: inputs have shape {inputs.shape}, expected [N, {cfg.length}, 2] '
                     f'(data.length={cfg.length})')
  if targets.shape != inputs.shape[:1] or not len(targets):
    raise ValueError(f'{path}: {len(inputs)} inputs and targets of shape {targets.shape}')
  return arrays


def encode(cfg, preprocessing: base.Preprocessing, arrays) -> base.Batch:
  del preprocessing
  inputs = np.asarray(arrays['inputs'], np.float32)
  return {'inputs': inputs, 'targets': np.asarray(arrays['targets'], np.float32),
          'lengths': np.full(len(inputs), cfg.length, np.int32)}


def _predictions(outputs):
  if outputs.ndim != 2 or outputs.shape[-1] != 1:
    raise ValueError(f'adding needs one output per sequence [B, 1], got shape '
                     f"{tuple(outputs.shape)}: set model.readout='final'")
  return outputs[:, 0]


def example_correct(outputs, batch):
  """`[B]` bool: absolute error below 0.04."""
  return jnp.abs(_predictions(outputs) - batch['targets']) < TOLERANCE


def loss(outputs, batch):
  """Mean squared error. `outputs: [B, 1]`, `batch['targets']: [B]`; rows of length 0
  (padding) count nowhere. Sums: `loss_sum` and `squared_error_sum` (the same),
  `examples_correct`, `example_count`."""
  weights = base.example_weights(batch)
  squared = (_predictions(outputs) - batch['targets']) ** 2
  count = weights.sum()
  sums = {
      'loss_sum': jnp.sum(squared * weights),
      'squared_error_sum': jnp.sum(squared * weights),
      'examples_correct': jnp.sum(example_correct(outputs, batch) * weights),
      'example_count': count,
  }
  return sums['loss_sum'] / jnp.maximum(count, 1), sums


def reported_metrics(config: dict) -> list[base.ReportedMetric]:
  return [base.ReportedMetric(f'eval/{name}/mse', f'{name} mse', higher_is_better=False)
          for name in config['evals']]


TASK = base.Task(
    name='adding',
    data_keys=('batch_size', 'eval_seed', 'eval_size', 'length'),
    validate=validate,
    build_data=build_data,
    loss=loss,
    example_correct=example_correct,
    read_file=read_file,
    encode=encode,
    evaluator_types=('metrics',),
    reported_metrics=reported_metrics,
)
