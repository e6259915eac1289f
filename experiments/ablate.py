"""Runs every override of a config's `sweep()`, seeds side by side, then writes the report.

  python -m experiments.ablate --config=configs/ablate_formal.py[:mode] --workdir=DIR

Each run trains in `DIR/<name>/` (rerunning resumes or skips finished runs);
the report lands in `DIR/report.md`, `DIR/results.json`, `DIR/accuracy_vs_n.png`.
"""

import importlib.util
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app
from absl import flags
from ml_collections import config_flags

from experiments import report
from experiments import runtime
from seqnets.training import loop

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file with get_config and sweep.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for all runs and the report.')
flags.mark_flags_as_required(['config', 'workdir'])


def load_sweep(config_flag) -> list[dict]:
  """Calls `sweep(mode)` of the config file behind `--config=path[:mode]`."""
  path, _, mode = config_flags.get_config_filename(config_flag).partition(':')
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


def main(argv):
  del argv
  runtime.configure()
  runs = load_sweep(flags.FLAGS['config'])
  for index, overrides in enumerate(runs):
    workdir = os.path.join(_WORKDIR.value, overrides['name'])
    if os.path.exists(os.path.join(workdir, 'results.json')):
      print(f'[{index + 1}/{len(runs)}] {overrides["name"]}: done before, skipped', file=sys.stderr)
      continue
    start = time.time()
    try:
      loop.train_and_evaluate(apply_overrides(_CONFIG.value, overrides), workdir)
    except FloatingPointError as e:
      print(f'[{index + 1}/{len(runs)}] {overrides["name"]}: FAILED: {e}', file=sys.stderr)
      continue
    print(f'[{index + 1}/{len(runs)}] {overrides["name"]}: {time.time() - start:.0f} s', file=sys.stderr)
  table = report.write_report(_WORKDIR.value)
  print(table)


if __name__ == '__main__':
  app.run(main)
