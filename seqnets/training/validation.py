"""Config validation, run before any data load or compile.

Each section is checked by the module that owns its keys (the task checks
`data`, the model factory `model`, the optimizer factory `optim`, the
evaluators `evals`); this module adds the run-level fields. Every key is read or
refused: a key that no code reads is an error naming it and the valid keys, so a
misspelt setting never trains a different experiment in silence.
"""

from __future__ import annotations

import pathlib

import ml_collections

from seqnets.ablation import report_settings
from seqnets.models import factory as model_factory
from seqnets.tasks import factory as task_factory
from seqnets.training import evaluators
from seqnets.training import legacy_config
from seqnets.training import optimizers
from seqnets.training import run_checkpoints

# Top-level keys of a run's config (`launch`: the cluster settings of `experiments.ablate`;
# `report`: what its report tests, `seqnets.ablation.report_settings`).
TOP_LEVEL_KEYS = ('seed', 'num_seeds', 'init_from', 'init_from_checkpoint', 'task', 'data', 'model',
                  'optim', 'train', 'evals', 'launch', 'report')
BEST_MODES = ('max', 'min')


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


def check_keys(path: str, given, valid) -> None:
  """ConfigError naming the first key of `given` that is not in `valid`."""
  unknown = [key for key in given if key not in valid]
  if unknown:
    raise ConfigError(f'{path}.{unknown[0]} is not a setting; valid: {list(valid)}')


def check_sections(config, keys: dict[str, tuple]) -> None:
  """`check_keys` for each dotted section path of `keys` (`'config.data'`: the keys of
  `config.data`) that the config has."""
  for path, valid in keys.items():
    node = config
    for key in path.split('.')[1:]:
      node = node.get(key) if hasattr(node, 'get') else None
    if hasattr(node, 'keys'):
      check_keys(path, node, valid)


def upgraded(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`config` in today's layout (`legacy_config.upgrade`): a new ConfigDict, the given one
  untouched. ConfigError naming a flat-layout key that does not apply."""
  try:
    return ml_collections.ConfigDict(legacy_config.upgrade(config.to_dict()))
  except ValueError as e:
    raise ConfigError(f'config.{e}') from None


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises `ConfigError` naming the first bad field (in today's layout: `upgraded`)."""
  for section in ('task', 'data', 'model', 'optim', 'train', 'evals'):
    if section not in config:
      raise ConfigError(f'config.{section} is missing')
  config = upgraded(config)
  check_keys('config', config, TOP_LEVEL_KEYS)
  try:
    task = task_factory.get(config.task)
  except ValueError as e:
    raise ConfigError(f'config.{e}') from None
  check_keys('config.data', config.data, task.data_keys)
  check_keys('config.optim', config.optim, optimizers.KEYS)
  check_keys('config.train', config.train, legacy_config.TRAIN_KEYS)
  for name, spec in config.evals.items():
    if hasattr(spec, 'keys'):
      check_keys(f'config.evals.{name}', spec, evaluators.keys_of(spec.get('type')))
  try:
    task.validate(config.data)
    model_settings = model_factory.resolve(config.model)
    optimizers.validate(config.optim)
    evaluators.validate(config.evals, task)
    report_settings.from_config(config.get('report'))
  except ValueError as e:
    raise ConfigError(f'config.{e}') from None
  if (config.data.get('vocabulary_from', 'train') == 'pretrained'
      and not model_settings.get('pretrained_embeddings')):
    raise ConfigError("config.data.vocabulary_from='pretrained' needs "
                      "config.model.pretrained_embeddings (the vectors file whose words join "
                      "the vocabulary)")
  _int_at_least(config, 'seed', 0)
  _int_at_least(config, 'num_seeds', 1)
  _int_at_least(config, 'train.num_train_steps', 1)
  every = config.optim.get('accumulate_steps', 1)
  if config.train.num_train_steps % every:
    raise ConfigError(f'config.train.num_train_steps={config.train.num_train_steps} must be a '
                      f'multiple of config.optim.accumulate_steps={every} (it counts micro-batches; '
                      'a last partial accumulation would never update the parameters)')
  for field in ('log_every_steps', 'checkpoint_every_steps', 'max_checkpoints_to_keep'):
    _int_at_least(config, f'train.{field}', 1, optional=True)
  init_from = config.get('init_from')
  if init_from is not None and not isinstance(init_from, str):
    raise ConfigError(f'config.init_from must be a workdir path or empty, got {init_from!r}')
  choice = config.get('init_from_checkpoint')
  if choice is not None:
    if not init_from:
      raise ConfigError(f'config.init_from_checkpoint={choice!r} needs config.init_from (the run '
                        'to read)')
    try:
      run_checkpoints.parse(choice, 'config.init_from_checkpoint')
    except ValueError as e:
      raise ConfigError(str(e)) from None
  _validate_best(config)


def best_metric(config: ml_collections.ConfigDict) -> str | None:
  """`config.train.best_metric` as `<evaluator>/<metric>` (a leading `eval/`, as in
  metrics.jsonl, dropped), or None when it is not set."""
  metric = config.train.get('best_metric')
  if isinstance(metric, str) and metric.startswith('eval/') and metric.count('/') >= 2:
    return metric.removeprefix('eval/')
  return metric


def _validate_best(config: ml_collections.ConfigDict) -> None:
  """`train.best_metric`, `best_mode` and `early_stopping_patience`, and what needs them.

  The evaluator part of `best_metric` is checked here; its metric part once the
  evaluators exist (`check_best_metric`)."""
  train = config.train
  metric = train.get('best_metric')
  if metric is None:
    for field in ('best_mode', 'early_stopping_patience'):
      if train.get(field) is not None:
        raise ConfigError(f'config.train.{field}={train.get(field)!r} needs config.train.best_metric '
                          '(the evaluation it reads)')
    if config.optim.get('schedule') == 'reduce_on_plateau':
      raise ConfigError("config.optim.schedule='reduce_on_plateau' needs config.train.best_metric "
                        '(the evaluation it watches) and config.train.best_mode')
    return
  name = best_metric(config)
  evaluator, _, what = name.partition('/') if isinstance(name, str) else ('', '', '')
  if evaluator not in config.evals or not what:
    raise ConfigError(f"config.train.best_metric={metric!r} names no metric of the run's "
                      f"evaluators; write '<evaluator>/<metric>' with an evaluator of "
                      f'config.evals: {sorted(config.evals)}')
  if not config.evals[evaluator].get('every_steps', 0):
    raise ConfigError(f'config.train.best_metric={metric!r}: evaluator {evaluator!r} runs only at '
                      f'the end (config.evals.{evaluator}.every_steps=0); give it every_steps > 0')
  mode = train.get('best_mode')
  if mode not in BEST_MODES:
    raise ConfigError(f'config.train.best_mode={mode!r}; valid: {list(BEST_MODES)} (required with '
                      'best_metric: whether a higher or a lower value is better)')
  _int_at_least(config, 'train.early_stopping_patience', 1, optional=True)


def check_best_metric(config: ml_collections.ConfigDict, metric_names: dict[str, list[str]]) -> None:
  """ConfigError when `config.train.best_metric` names no metric of its evaluator;
  `metric_names` maps each evaluator's name to its metrics (`evaluators.metric_names`)."""
  name = best_metric(config)
  if name is None:
    return
  evaluator, _, what = name.partition('/')
  if what not in metric_names.get(evaluator, ()):
    valid = [f'{e}/{m}' for e, names in metric_names.items() for m in names]
    raise ConfigError(f"config.train.best_metric={config.train.best_metric!r} names no metric of "
                      f"the run's evaluators; valid: {valid}")


def check_workdir(workdir) -> pathlib.Path:
  """The workdir as a path; an empty one is refused (it would write into the current directory)."""
  if workdir is None or not str(workdir).strip():
    raise ConfigError('--workdir is empty; name a directory for checkpoints, metrics and results')
  return pathlib.Path(workdir)
