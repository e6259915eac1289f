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
`DIR/report.md`, `DIR/results.json` and plots (`seqnets.ablation.report`).

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
from seqnets.ablation import report
from seqnets.ablation import sweeps

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file with get_config and sweep.',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for all runs and the report.')
_EXECUTOR = flags.DEFINE_enum('executor', 'inline', ['inline', 'local', 'slurm'],
                              'Where the variants train (see the module docstring).')
flags.mark_flags_as_required(['config', 'workdir'])
INTERRUPTED = 130


def main(argv):
  del argv
  runtime.configure()
  root = pathlib.Path(runtime.checked_workdir(_WORKDIR.value))
  with runtime.one_line_errors():
    sweep = sweeps.load_sweep(config_flags.get_config_filename(flags.FLAGS['config']))
    variants = sweeps.pending_variants(_CONFIG.value, sweep, root)
    complete = executors.run_variants(variants, _EXECUTOR.value, _CONFIG.value.get('launch'),
                                      root / 'jobs')
  if not complete:
    print('The ablation stopped before every variant finished; rerun the same command to go on.',
          file=sys.stderr)
    sys.exit(INTERRUPTED)
  import jax
  if jax.process_index() == 0:
    print(report.write_report(root))


if __name__ == '__main__':
  app.run(main, flags_parser=runtime.parse_flags)
