"""Config validation, run before any data load or compile.

Each section is checked by the module that owns its keys (the task checks
`data`, the model factory `model`, the optimizer factory `optim`, the
evaluators `evals`); this module adds the run-level fields.
"""

from __future__ import annotations

import pathlib

import ml_collections

from seqnets.models import factory as model_factory
from seqnets.tasks import factory as task_factory
from seqnets.training import evaluators
from seqnets.training import optimizers


class ConfigError(ValueError):
  """A config value is wrong; the message names the field."""


def _int_at_least(config, path: str, lowest: int, optional: bool = False) -> None:
  node = config
  for key in path.split('.'):
    node = node.get(key) if node is not None else None
  if node is None and optional:
    return
  if not isinstance(node, int) or isinstance(node, bool) or node < lowest:
    kind = 'a positive integer' if lowest == 1 else f'an integer >= {lowest}'
    raise ConfigError(f'config.{path} must be {kind}, got {node!r}')


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises `ConfigError` naming the first bad field."""
  for section in ('task', 'data', 'model', 'optim', 'train', 'evals'):
    if section not in config:
      raise ConfigError(f'config.{section} is missing')
  try:
    task = task_factory.get(config.task)
    task.validate(config.data)
    model_factory.validate(config.model)
    optimizers.validate(config.optim)
    evaluators.validate(config.evals, task)
  except ValueError as e:
    raise ConfigError(f'config.{e}') from None
  _int_at_least(config, 'seed', 0)
  _int_at_least(config, 'num_seeds', 1)
  _int_at_least(config, 'train.num_train_steps', 1)
  for field in ('log_every_steps', 'checkpoint_every_steps', 'max_checkpoints_to_keep'):
    _int_at_least(config, f'train.{field}', 1, optional=True)
  init_from = config.get('init_from')
  if init_from is not None and not isinstance(init_from, str):
    raise ConfigError(f'config.init_from must be a workdir path or empty, got {init_from!r}')


def check_workdir(workdir) -> pathlib.Path:
  """The workdir as a path; an empty one is refused (it would write into the current directory)."""
  if workdir is None or not str(workdir).strip():
    raise ConfigError('--workdir is empty; name a directory for checkpoints, metrics and results')
  return pathlib.Path(workdir)
