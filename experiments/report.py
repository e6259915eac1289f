"""Builds an ablation report from run directories: `report.md`, `results.json` and plots.

  python -m experiments.report --workdir=DIR

Reads every finished run `DIR/*/` (see `seqnets.ablation.report` for the
table and plots), writes `DIR/report.md`, `DIR/results.json` and the plots,
and prints the table.
"""

from absl import app
from absl import flags

from seqnets.ablation import report

_WORKDIR = flags.DEFINE_string('workdir', None, 'Ablation directory holding one sub-directory per run.')
flags.mark_flag_as_required('workdir')


def main(argv):
  del argv
  print(report.write_report(_WORKDIR.value))


if __name__ == '__main__':
  app.run(main)
