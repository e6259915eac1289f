"""Builds an ablation report from run directories: `report.md`, `results.json` and plots.

  python -m experiments.report --workdir=DIR

Reads every finished run `DIR/*/` (see `seqnets.ablation.report` for the
table, the tests and the plots; what it tests is the runs' saved `report`
section), writes `DIR/report.md`, `DIR/results.json` and the plots, and prints
the table. An ablation that added seeds in rounds (`DIR/seed_rounds.json`) keeps
its account of them.
"""

from absl import app
from absl import flags

import pathlib

from seqnets.ablation import report
from seqnets.ablation import seed_rounds

_WORKDIR = flags.DEFINE_string('workdir', None, 'Ablation directory holding one sub-directory per run.')
flags.mark_flag_as_required('workdir')


def main(argv):
  del argv
  workdir = pathlib.Path(_WORKDIR.value)
  print(report.write_report(workdir, rounds_note=seed_rounds.saved_outcome(workdir)))


if __name__ == '__main__':
  app.run(main)
