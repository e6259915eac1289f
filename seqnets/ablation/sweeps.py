"""A config file's sweep: its variants, each variant's config, and which variants still train.

  sweep = load_sweep('configs/ablate_formal.py:smoke')      # [{'name': ..., 'model.cell': ...}]
  variants = pending_variants(config, sweep, root)          # [(name, config, workdir)] to train

Each variant trains in `root/<name>/`. A variant is done when its results.json
parses and reached the step count (or records that every seed failed, or that
early stopping ended it); a
started variant whose saved config differs from the new one beyond
`resume.RESUMABLE_FIELDS` is refused with `validation.ConfigError`.
"""

import importlib.util
import json
import pathlib
import sys

from seqnets.training import legacy_config
from seqnets.training import resume
from seqnets.training import validation


def load_sweep(config_file: str) -> list[dict]:
  """Calls `sweep(mode)` of the config file `path[:mode]` (as `--config` names it)."""
  path, _, mode = config_file.partition(':')
  spec = importlib.util.spec_from_file_location('sweep_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'sweep'):
    raise ValueError(f'{path} has no sweep() function')
  return module.sweep(mode or None)


def apply_overrides(config, overrides: dict):
  """A copy of `config` with dotted-key overrides (the original is not touched)."""
  config = config.copy_and_resolve_references()
  with config.unlocked():
    for key, value in overrides.items():
      if key == 'name':
        continue
      *parents, leaf = key.split('.')
      node = config
      for parent in parents:
        node = node[parent]
      if leaf not in node:
        raise KeyError(f'sweep override {key!r}: the config has no such field')
      node[leaf] = value
  return config


def is_done(workdir: pathlib.Path, config) -> bool:
  """A variant is done when its results.json parses and either reached the step
  count or records that every seed failed or that early stopping ended the run
  (a half-written file is not done)."""
  try:
    results = json.loads((workdir / 'results.json').read_text())
  except (OSError, ValueError):
    return False
  runs = results.get('runs') or []
  return (results.get('step', -1) >= config.train.num_train_steps
          or results.get('early_stopped') is True
          or bool(runs) and all(r.get('failed') for r in runs))


def check_unchanged(workdir: pathlib.Path, config) -> None:
  """Raises ConfigError when `workdir` holds a started run (a checkpoint or a results.json)
  whose saved config differs from `config` in a field that may not change (`resume.check`)."""
  steps = workdir / 'checkpoints'
  started = (workdir / 'results.json').exists() or (
      steps.is_dir() and any(p.name.isdigit() for p in steps.iterdir()))
  if not started:
    return
  try:
    saved = json.loads((workdir / 'config.json').read_text())
  except (OSError, ValueError):
    return  # The training loop names that problem when the variant runs.
  try:
    resume.check(legacy_config.canonical(saved, saved=True),
                 legacy_config.canonical(json.loads(config.to_json())))
  except ValueError as e:
    raise validation.ConfigError(f'{workdir}: {e}') from None


def pending_variants(config, sweep: list[dict], root: pathlib.Path) -> list[tuple]:
  """`[(name, config, workdir)]` of the variants of `sweep` not yet done, in order; every
  variant is checked first (`check_unchanged`), and each one done before is named on stderr."""
  variants = []
  for overrides in sweep:
    variant, workdir = apply_overrides(config, overrides), root / overrides['name']
    check_unchanged(workdir, variant)
    if is_done(workdir, variant):
      print(f'{overrides["name"]}: done before, skipped', file=sys.stderr)
    else:
      variants.append((overrides['name'], variant, str(workdir)))
  return variants
