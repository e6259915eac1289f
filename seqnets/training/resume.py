"""What may change when a run resumes: an explicit allow-list of config fields.

A resumed run must be the run that was started: a different learning rate,
seed or model would silently mix two experiments in one workdir. Only the
fields below (how long to train and how often to log, evaluate and save) may
differ from the saved `config.json`; every other difference is refused,
naming each field with its old and new value.
"""

from __future__ import annotations

import fnmatch
from typing import Any

RESUMABLE_FIELDS = (
    'train.num_train_steps',
    'train.log_every_steps',
    'train.eval_every_steps',
    'train.checkpoint_every_steps',
    'train.max_checkpoints_to_keep',
    'evals.*.every_steps',
    'evals.*.batch_size',
    'launch.*',
    'report.*',
)


def flatten(config: dict, prefix: str = '') -> dict[str, Any]:
  """`{'a': {'b': 1}}` -> `{'a.b': 1}`; lists stay values."""
  flat = {}
  for key, value in config.items():
    path = f'{prefix}{key}'
    if isinstance(value, dict) and value:
      flat.update(flatten(value, path + '.'))
    else:
      flat[path] = value
  return flat


def differences(saved: dict, new: dict) -> dict[str, tuple[Any, Any]]:
  """Every dotted field whose value differs: `{field: (old, new)}` (missing = None)."""
  old_flat, new_flat = flatten(saved), flatten(new)
  return {field: (old_flat.get(field), new_flat.get(field))
          for field in sorted(set(old_flat) | set(new_flat))
          if old_flat.get(field) != new_flat.get(field)}


def resumable(field: str) -> bool:
  return any(fnmatch.fnmatchcase(field, pattern) for pattern in RESUMABLE_FIELDS)


def check(saved: dict, new: dict) -> dict[str, tuple[Any, Any]]:
  """The accepted differences; raises ValueError naming every field that may not change."""
  changes = differences(saved, new)
  refused = {f: v for f, v in changes.items() if not resumable(f)}
  if refused:
    listed = '; '.join(f'config.{f}: {old!r} -> {new!r}' for f, (old, new) in refused.items())
    raise ValueError(f'the config differs from the one this workdir was started with ({listed}). '
                     f'Only {", ".join(RESUMABLE_FIELDS)} may change when resuming; '
                     'use a new --workdir for a different experiment')
  return changes
