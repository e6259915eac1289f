"""Runs every override of a config's `sweep()`, seeds side by side, then writes the report.

  python -m experiments.ablate --config=configs/ablate_formal.py[:mode] --workdir=DIR
      [--executor=inline | local | slurm] [--until_significant]

Each variant trains in `DIR/<name>/`; rerunning resumes unfinished variants
and skips finished ones (a `results.json` that parses and reached the step
count). A rerun with a config that differs from a started variant's beyond
`resume.RESUMABLE_FIELDS` is refused before anything trains (exit 2, as
`experiments.main` refuses such a resume), so old results never pass for new
ones. Ctrl-C or SIGTERM stops the whole ablation once the running variant has
saved its checkpoint (exit 130); rerun to go on. The report lands in
`DIR/report.md`, `DIR/results.json` and plots (`seqnets.ablation.report`), with
the intervals and tests that the config's `report` section asks for
(`seqnets.ablation.report_settings`).

`--until_significant` (or `config.report.until_significant=True`) then adds seeds
to the variants of each compared pair that the test has not decided, in rounds,
until it decides or `report.max_seeds` is spent (`seqnets.ablation.seed_rounds`);
the report says which. Rerunning goes on where it stopped.

Executors (`seqnets.ablation.executors`): `inline` trains the variants one
after another in this process; `local` and `slurm` submit each unfinished
variant as its own job through submitit (`local`: subprocesses on this
machine; `slurm`: a SLURM cluster, with the partition, time and resources of
the config's `launch` section) and write the report when every job has ended.
Job logs go to `DIR/jobs/`.
"""

import os
import pathlib
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app
from absl import flags
from ml_collections import config_flags

from experiments import runtime
from seqnets.ablation import executors
import dataclasses

from seqnets.ablation import report
from seqnets.ablation import report_settings
from seqnets.ablation import seed_rounds
from seqnets.ablation import sweeps

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file with get_config and sweep.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for all runs and the report.')
_EXECUTOR = flags.DEFINE_enum('executor', 'inline', ['inline', 'local', 'slurm'],
                              'Where the variants train (see the module docstring).')
_UNTIL_SIGNIFICANT = flags.DEFINE_bool(
    'until_significant', False, 'Add seeds to undecided compared pairs in rounds (the '
    "config's report section names the pairs, level and seed budget).")
flags.mark_flags_as_required(['config', 'workdir'])
INTERRUPTED = 130


def main(argv):
  del argv
  runtime.configure()
  root = pathlib.Path(runtime.checked_workdir(_WORKDIR.value))
  config = _CONFIG.value
  train = lambda variants: executors.run_variants(variants, _EXECUTOR.value,
                                                  config.get('launch'), root / 'jobs')
  with runtime.one_line_errors():
    sweep = sweeps.load_sweep(config_flags.get_config_filename(flags.FLAGS['config']))
    settings = report_settings.from_config(config.get('report'))
    if _UNTIL_SIGNIFICANT.value:
      settings = dataclasses.replace(settings, until_significant=True)
    report_settings.check_names(settings, [overrides['name'] for overrides in sweep])
    complete = train(sweeps.pending_variants(config, sweep, root))
    if complete and settings.until_significant:
      complete = seed_rounds.run(config, sweep, root, settings, train)
  if not complete:
    print('The ablation stopped before every variant finished; rerun the same command to go on.',
          file=sys.stderr)
    sys.exit(INTERRUPTED)
  import jax
  if jax.process_index() == 0:
    with runtime.one_line_errors():
      note = (seed_rounds.outcome(root, settings, seed_rounds.variant_configs(config, sweep))
              if settings.until_significant else '')
      print(report.write_report(root, settings, note))


if __name__ == '__main__':
  app.run(main, flags_parser=runtime.parse_flags)
