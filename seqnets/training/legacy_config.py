"""Configs in the layout of earlier seqnets versions, rewritten to today's.

Earlier configs spelt the recurrent cell flat, beside the model's own keys, and held
settings for every cell at once (each cell read its own and ignored the rest):

  model = dict(name='recurrent_tagger', cell='lstm', hidden_size=8, forget_bias=1.0,
               activation='tanh', reset_after=False, num_layers=1)
  ->  model = dict(name='recurrent_tagger', num_layers=1,
                   cell=dict(name='lstm', hidden_size=8, forget_bias=1.0))

`upgrade(config, saved=True)` reads a run's `config.json` from before the change: keys
that no code read then (another cell's settings, a recurrent model's keys left in a
Transformer's config, a misspelt key) are dropped, since they never reached the model.
`upgrade(config)` reads a config a person wrote: the flat cell layout is still accepted
(so `--config.model.cell=gru` keeps working on such configs), but a key that does not apply
is an error naming it.
"""

from __future__ import annotations

import copy
import json

from seqnets.models import factory
from seqnets.models import flat_cell
from seqnets.tasks import factory as task_factory
from seqnets.training import evaluators
from seqnets.training import optimizers

TRAIN_KEYS = ('num_train_steps', 'log_every_steps', 'checkpoint_every_steps',
              'max_checkpoints_to_keep', 'best_metric', 'best_mode', 'early_stopping_patience')


def upgrade(config: dict, saved: bool = False) -> dict:
  """A copy of `config` (a plain dict) in today's layout; see the module docstring."""
  config = copy.deepcopy(config)
  model = config.get('model')
  if isinstance(model, dict) and flat_cell.is_flat(model):
    entry = factory.MODELS.get(model.get('name'))
    config['model'] = flat_cell.nest(model, has_cell=entry is None or bool(entry.cells),
                                     saved=saved)
  if saved:
    _drop_unread(config)
  return config


def _drop_unread(config: dict) -> None:
  """Removes the keys of a saved config that no code reads (they never reached a run)."""
  model = config.get('model')
  entry = factory.MODELS.get(model.get('name')) if isinstance(model, dict) else None
  if entry is not None:
    valid = {'name', *entry.fields(), *(['cell'] if entry.cells else [])}
    config['model'] = {k: v for k, v in model.items() if k in valid}
  task = task_factory.TASKS.get(config.get('task'))
  if task is not None and isinstance(config.get('data'), dict):
    config['data'] = {k: v for k, v in config['data'].items() if k in task.data_keys}
  for section, valid in (('optim', optimizers.KEYS), ('train', TRAIN_KEYS)):
    if isinstance(config.get(section), dict):
      config[section] = {k: v for k, v in config[section].items() if k in valid}
  if isinstance(config.get('evals'), dict):
    config['evals'] = {
        name: {k: v for k, v in spec.items() if k in evaluators.keys_of(spec.get('type'))}
        for name, spec in config['evals'].items()}


def canonical(config: dict, saved: bool = False) -> dict:
  """`config` upgraded, with the model's settings complete (defaults filled in), so two
  configs that build the same run compare equal however they were written."""
  config = upgrade(config, saved)
  try:
    settings = factory.resolve(config['model'])
  except (KeyError, TypeError, ValueError):
    return config
  config['model'] = json.loads(json.dumps(settings))     # tuples -> lists, as in config.json
  return config
