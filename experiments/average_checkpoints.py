"""Averages the parameters of a run's last checkpoints into one checkpoint.

  python -m experiments.average_checkpoints --workdir=DIR --last=N

Writes the mean of the parameters (and of the floating-point model state) of the newest N
checkpoints of DIR/checkpoints/ into DIR/checkpoints_average/<newest step>/, replacing an
earlier average; `experiments.evaluate`, `generate` and `decode` read it with
--checkpoint=average. Prints one JSON line: the directory written and the steps averaged.
Exit status 2 with one line on stderr for a bad flag or workdir, or fewer than N
checkpoints.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app
from absl import flags

from experiments import runtime
from seqnets.training import averaging

_WORKDIR = flags.DEFINE_string('workdir', None, 'A run directory written by experiments.main.')
_LAST = flags.DEFINE_integer('last', None, 'How many of the newest checkpoints to average.',
                             lower_bound=1)
flags.mark_flags_as_required(['workdir', 'last'])


def main(argv):
  del argv
  runtime.configure()
  workdir = runtime.checked_workdir(_WORKDIR.value)
  with runtime.one_line_errors():
    step, steps = averaging.average_checkpoints(workdir, _LAST.value)
  print(averaging.describe(workdir, step, steps))
  sys.stdout.flush()


if __name__ == '__main__':
  app.run(main, flags_parser=runtime.parse_flags)
