"""Where an ablation's variants train: one after another in this process (`inline`), or each
as its own submitit job (`local`: subprocesses on this machine; `slurm`: a SLURM cluster,
with the partition, time and resources of the config's `launch` section).

  complete = run_variants(variants, 'inline', config.get('launch'), root / 'jobs')

A variant is `(name, config, workdir)` (`sweeps.pending_variants`); progress and
job outcomes are printed on stderr, job logs go to the jobs folder.
"""

import pathlib
import sys
import time

from seqnets.training import loop

# submitit parameters taken from `config.launch` (SLURM names; `local` uses the generic ones).
LAUNCH_DEFAULTS = dict(timeout_min=60, cpus_per_task=2, mem_gb=8, gpus_per_node=0,
                       slurm_partition=None, slurm_account=None, slurm_qos=None, max_parallel_jobs=None)


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


def run_variants(variants, kind: str, launch, jobs_dir: pathlib.Path) -> bool:
  """Trains `variants` with executor `kind` ('inline' | 'local' | 'slurm'; `launch`: the
  config's launch section or None); False when a stop request, Ctrl-C or a crashed job
  ended the ablation before every variant finished."""
  if not variants:
    return True
  try:
    if kind == 'inline':
      return run_inline(variants)
    return run_submitit(variants, kind, dict(launch or {}), jobs_dir)
  except KeyboardInterrupt:  # Ctrl-C while waiting for jobs: they got it too and save
    return False
