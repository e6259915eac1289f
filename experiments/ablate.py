"""Runs every override of a config's `sweep()`, seeds side by side, then writes the report.

  python -m experiments.ablate --config=configs/ablate_formal.py[:mode] --workdir=DIR
      [--executor=inline | local | slurm]

Each variant trains in `DIR/<name>/`; rerunning resumes unfinished variants
and skips finished ones (a `results.json` that parses and reached the step
count). A rerun with a config that differs from a started variant's beyond
`resume.RESUMABLE_FIELDS` is refused before anything trains (exit 2, as
`experiments.main` refuses such a resume), so old results never pass for new
ones. Ctrl-C or SIGTERM stops the whole ablation once the running variant has
saved its checkpoint (exit 130); rerun to go on. The report lands in
`DIR/report.md`, `DIR/results.json` and plots (`experiments.report`).

Executors: `inline` trains the variants one after another in this process;
`local` and `slurm` submit each unfinished variant as its own job through
submitit (`local`: subprocesses on this machine; `slurm`: a SLURM cluster,
with the partition, time and resources of the config's `launch` section) and
write the report when every job has ended. Job logs go to `DIR/jobs/`.
"""

import importlib.util
import json
import os
import pathlib
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app
from absl import flags
from ml_collections import config_flags

from experiments import report
from experiments import runtime
from seqnets.training import legacy_config
from seqnets.training import loop
from seqnets.training import resume
from seqnets.training import validation

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file with get_config and sweep.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for all runs and the report.')
_EXECUTOR = flags.DEFINE_enum('executor', 'inline', ['inline', 'local', 'slurm'],
                              'Where the variants train (see the module docstring).')
flags.mark_flags_as_required(['config', 'workdir'])
INTERRUPTED = 130
# submitit parameters taken from `config.launch` (SLURM names; `local` uses the generic ones).
LAUNCH_DEFAULTS = dict(timeout_min=60, cpus_per_task=2, mem_gb=8, gpus_per_node=0,
                       slurm_partition=None, slurm_account=None, slurm_qos=None, max_parallel_jobs=None)


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


def is_done(workdir: pathlib.Path, config) -> bool:
  """A variant is done when its results.json parses and either reached the step
  count or records that every seed failed (a half-written file is not done)."""
  try:
    results = json.loads((workdir / 'results.json').read_text())
  except (OSError, ValueError):
    return False
  runs = results.get('runs') or []
  return (results.get('step', -1) >= config.train.num_train_steps
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


def train_variant(config, workdir: str) -> str:
  """Trains one variant; 'done', 'failed' (every seed diverged) or 'interrupted'."""
  try:
    result = loop.train_and_evaluate(config, workdir)
  except FloatingPointError as e:
    print(f'{workdir}: FAILED: {e}', file=sys.stderr)
    return 'failed'
  return 'interrupted' if result.interrupted else 'done'


def run_inline(variants) -> bool:
  """Trains the variants in turn; False when a stop request ended the ablation."""
  for index, (name, config, workdir) in enumerate(variants):
    start = time.time()
    outcome = train_variant(config, workdir)
    print(f'[{index + 1}/{len(variants)}] {name}: {outcome}, {time.time() - start:.0f} s', file=sys.stderr)
    if outcome == 'interrupted':
      return False
  return True


def make_executor(kind: str, launch: dict, folder: pathlib.Path):
  """A submitit executor for `kind` ('local' | 'slurm') with the parameters of `config.launch`."""
  import submitit
  params = {**LAUNCH_DEFAULTS, **launch}
  params.pop('max_parallel_jobs', None)
  if kind == 'local':
    params = {k: v for k, v in params.items() if not k.startswith('slurm_')}
  executor = submitit.AutoExecutor(folder=str(folder), cluster=kind)
  executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
  return executor


def run_submitit(variants, kind: str, launch: dict, jobs_dir: pathlib.Path) -> bool:
  """One job per variant, at most `launch.max_parallel_jobs` at a time; False when any
  was interrupted or crashed (its log in `jobs_dir` says why; the others go on)."""
  executor = make_executor(kind, launch, jobs_dir)
  wave = launch.get('max_parallel_jobs') or len(variants)
  complete = True
  for first in range(0, len(variants), wave):
    jobs = [(name, executor.submit(train_variant, config, workdir))
            for name, config, workdir in variants[first:first + wave]]
    print(f'submitted {len(jobs)} {kind} jobs; logs in {jobs_dir}', file=sys.stderr)
    for name, job in jobs:
      try:
        outcome = job.result()
      except Exception as e:  # a crashed job: the others go on, the ablation is not complete
        outcome = f'crashed ({type(e).__name__}; see {jobs_dir})'
      print(f'{name} (job {job.job_id}): {outcome}', file=sys.stderr)
      complete = complete and outcome in ('done', 'failed')
  return complete


def main(argv):
  del argv
  runtime.configure()
  root = pathlib.Path(runtime.checked_workdir(_WORKDIR.value))
  with runtime.one_line_errors():
    variants = []
    for overrides in load_sweep(flags.FLAGS['config']):
      config, workdir = apply_overrides(_CONFIG.value, overrides), root / overrides['name']
      check_unchanged(workdir, config)
      if is_done(workdir, config):
        print(f'{overrides["name"]}: done before, skipped', file=sys.stderr)
      else:
        variants.append((overrides['name'], config, str(workdir)))
    launch = dict(_CONFIG.value.get('launch') or {})
    try:
      complete = (run_inline(variants) if _EXECUTOR.value == 'inline' else
                  run_submitit(variants, _EXECUTOR.value, launch, root / 'jobs')) if variants else True
    except KeyboardInterrupt:  # Ctrl-C while waiting for jobs: they got it too and save
      complete = False
  if not complete:
    print('The ablation stopped before every variant finished; rerun the same command to go on.',
          file=sys.stderr)
    sys.exit(INTERRUPTED)
  import jax
  if jax.process_index() == 0:
    print(report.write_report(root))


if __name__ == '__main__':
  app.run(main, flags_parser=runtime.parse_flags)
