"""Image classification: `[B, H, W, C]` images -> one of C classes.

`config.data.source`:
  'digits': scikit-learn's 8×8 digits (offline), stratified split; test_fraction, split_seed
  'tfds': a TFDS catalogue dataset (online); tfds_name ('mnist' | 'cifar10' | …),
    train_split, eval_split, data_dir
and batch_size. An evaluation file (`eval_file_format='npz'`) holds `inputs`
`[N, H, W, C]` float32 and `labels` `[N]` int.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np

from seqnets import files
from seqnets.tasks import base
from seqnets.tasks import classification
from seqnets.tasks import fields

SOURCES = ('digits', 'tfds')
EVAL_FILE_FORMATS = ('npz',)


def validate(cfg) -> None:
  source = fields.one_of(cfg, 'source', SOURCES)
  fields.positive_int(cfg, 'batch_size')
  fields.one_of(cfg, 'eval_file_format', EVAL_FILE_FORMATS, default='npz')
  if source == 'digits':
    fraction = cfg.get('test_fraction', 0.2)
    if not isinstance(fraction, (int, float)) or not (math.isfinite(fraction) and 0.0 < fraction < 1.0):
      raise ValueError(f'data.test_fraction must be in (0, 1), got {fraction!r}')
    fields.non_negative_int(cfg, 'split_seed')
  else:
    fields.non_empty_string(cfg, 'tfds_name', 'a TFDS dataset, e.g. "mnist"')


def build_data(cfg) -> base.TaskData:
  if cfg.source == 'digits':
    from seqnets.data import digits
    train, test = digits.load_split(cfg.get('test_fraction', 0.2), cfg.get('split_seed', 0))
    as_arrays = lambda d: {'inputs': d['images'], 'labels': d['labels']}
    return classification.make_data(as_arrays(train), {'test': as_arrays(test)}, cfg.batch_size)
  from seqnets.data import tfds_loaders
  load = lambda split: tfds_loaders.load_images(cfg.tfds_name, split, cfg.get('data_dir'))
  eval_split = cfg.get('eval_split', 'test')
  return classification.make_data(load(cfg.get('train_split', 'train')), {'test': load(eval_split)},
                                   cfg.batch_size)


def read_file(cfg, path: str | pathlib.Path) -> dict[str, np.ndarray]:
  """`{'inputs', 'labels'}` from an .npz file (the format `data.eval_file_format` names)."""
  del cfg
  arrays = files.read_npz(path, {'inputs': '[N, H, W, C]', 'labels': '[N]'})
  if len(arrays['inputs']) != len(arrays['labels']) or not len(arrays['labels']):
    raise ValueError(f'{path}: {len(arrays["inputs"])} inputs and {len(arrays["labels"])} labels')
  return arrays


def encode(cfg, preprocessing: base.Preprocessing, arrays) -> base.Batch:
  del cfg
  labels = np.asarray(arrays['labels']).astype(np.int32)
  if preprocessing.labels:
    classification.check_known_labels(labels, preprocessing.labels, 'evaluation data')
  return classification.with_valid({'inputs': np.asarray(arrays['inputs'], np.float32), 'labels': labels})


TASK = base.Task(
    name='image_classification',
    data_keys=('batch_size', 'data_dir', 'eval_file_format', 'eval_split', 'source',
               'split_seed', 'test_fraction', 'tfds_name', 'train_split'),
    validate=validate,
    build_data=build_data,
    read_file=read_file,
    encode=encode,
    **classification.TASK_PARTS,
    model_inputs=base.array_inputs,
)
