"""Sequential digits: scikit-learn's 8×8 digits read one pixel per step, the class at the end
(the small offline counterpart of pixel-by-pixel MNIST, Le et al. 2015).

Each image is read row by row, 64 steps of one pixel in [0, 1] (`inputs [B, 64, 1]`);
with `permute` one fixed random permutation of the 64 pixels, drawn from
`permutation_seed`, reorders every image (the permuted variant). Loss: softmax
cross-entropy of the class after the last pixel; metrics `loss`, `accuracy`. The data
summary's `baseline/loss` is the loss of predicting the training class frequencies.

`config.data`: permute, permutation_seed, test_fraction, split_seed (the stratified split
of the image task, `seqnets.data.digits.load_split`), batch_size. Eval set: `test`. An
evaluation file (.npz) holds `inputs [N, 8, 8, 1]` (or `[N, 64]`) float32 in [0, 1] and
`labels [N]`; the run's permutation is applied to it.

Batches: `inputs [B, 64, 1] float32`, `lengths [B]` (64), `labels [B] int32`, `valid [B]`.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib

import numpy as np

from seqnets.tasks import base
from seqnets.tasks import classification
from seqnets.tasks import fields
from seqnets.tasks import image_classification

NUM_PIXELS = 64


def permutation(cfg) -> np.ndarray:
  """`[64]` pixel order: the identity, or the permutation drawn from `permutation_seed`."""
  if not cfg.get('permute', False):
    return np.arange(NUM_PIXELS)
  return np.random.default_rng(cfg.get('permutation_seed', 0)).permutation(NUM_PIXELS)


def to_sequences(images: np.ndarray, order: np.ndarray) -> dict[str, np.ndarray]:
  """`images [N, 8, 8, 1]` (or `[N, 64]`) -> `inputs [N, 64, 1]` with step t = pixel `order[t]`
  of the row-major image, and `lengths [N]`."""
  flat = np.asarray(images, np.float32).reshape(len(images), -1)
  if flat.shape[1] != NUM_PIXELS:
    raise ValueError(f'images of {flat.shape[1]} pixels; sequential digits reads {NUM_PIXELS}')
  return {'inputs': flat[:, order, None], 'lengths': np.full(len(flat), NUM_PIXELS, np.int32)}


def validate(cfg) -> None:
  if not isinstance(cfg.get('permute', False), bool):
    raise ValueError(f'data.permute must be True or False, got {cfg.permute!r}')
  fields.non_negative_int(cfg, 'permutation_seed')
  fraction = cfg.get('test_fraction', 0.2)
  if (isinstance(fraction, bool) or not isinstance(fraction, (int, float))
      or not (math.isfinite(fraction) and 0.0 < fraction < 1.0)):
    raise ValueError(f'data.test_fraction must be in (0, 1), got {fraction!r}')
  fields.non_negative_int(cfg, 'split_seed')
  fields.positive_int(cfg, 'batch_size')


def build_data(cfg) -> base.TaskData:
  from seqnets.data import digits
  train, test = digits.load_split(cfg.get('test_fraction', 0.2), cfg.get('split_seed', 0))
  order = permutation(cfg)
  as_arrays = lambda d: {**to_sequences(d['images'], order), 'labels': d['labels']}
  data = classification.make_data(as_arrays(train), {'test': as_arrays(test)}, cfg.batch_size)
  frequencies = np.bincount(train['labels']) / len(train['labels'])
  frequencies = frequencies[frequencies > 0]
  prior_loss = float(-np.sum(frequencies * np.log(frequencies)))
  return dataclasses.replace(data, summary={**data.summary, 'baseline/loss': prior_loss})


def read_file(cfg, path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """`{'inputs', 'labels'}` from an .npz file (as the image task reads it)."""
  return image_classification.read_file(cfg, path)


def encode(cfg, preprocessing: base.Preprocessing, arrays) -> base.Batch:
  labels = np.asarray(arrays['labels']).astype(np.int32)
  if preprocessing.labels:
    classification.check_known_labels(labels, preprocessing.labels, 'evaluation data')
  return classification.with_valid({**to_sequences(arrays['inputs'], permutation(cfg)),
                                    'labels': labels})


def _checked(loss_fn):
  def checked(logits, batch):
    if logits.ndim != 2:
      raise ValueError(f'sequential_digits needs one output per sequence [B, C], got shape '
                       f"{tuple(logits.shape)}: set model.readout='final'")
    return loss_fn(logits, batch)
  return checked


TASK = base.Task(
    name='sequential_digits',
    data_keys=('batch_size', 'permutation_seed', 'permute', 'split_seed', 'test_fraction'),
    validate=validate,
    build_data=build_data,
    read_file=read_file,
    encode=encode,
    **dict(classification.TASK_PARTS, loss=_checked(classification.loss)),
)
