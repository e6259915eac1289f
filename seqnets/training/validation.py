"""Config validation, run before any data load or compile.

Each section is checked by the module that owns its keys (data, model and
optimizer factories); this module adds the run-level fields.
"""

from __future__ import annotations

import ml_collections

from seqnets.data import factory as data_factory
from seqnets.models import factory as model_factory
from seqnets.training import optimizers


class ConfigError(ValueError):
  """A config value is wrong; the message names the field."""


def _positive_int(config, path: str, optional: bool = False) -> None:
  node = config
  for key in path.split('.'):
    node = node.get(key) if node is not None else None
  if node is None and optional:
    return
  if not isinstance(node, int) or isinstance(node, bool) or node <= 0:
    raise ConfigError(f'config.{path} must be a positive integer, got {node!r}')


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises `ConfigError` naming the first bad field."""
  for section in ('data', 'model', 'optim', 'train'):
    if section not in config:
      raise ConfigError(f'config.{section} is missing')
  for owner, section in ((data_factory.validate, 'data'), (model_factory.validate, 'model'),
                         (optimizers.validate, 'optim')):
    try:
      owner(config[section])
    except ValueError as e:
      raise ConfigError(f'config.{e}') from None
  if not isinstance(config.get('seed'), int) or config.seed < 0:
    raise ConfigError(f'config.seed must be a non-negative integer, got {config.get("seed")!r}')
  _positive_int(config, 'num_seeds')
  _positive_int(config, 'train.num_train_steps')
  for field in ('log_every_steps', 'eval_every_steps', 'checkpoint_every_steps', 'max_checkpoints_to_keep'):
    _positive_int(config, f'train.{field}', optional=True)
  _positive_int(config, 'eval.batch_size', optional=True)
