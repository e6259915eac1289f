"""Echo state network on Mackey-Glass: one-step prediction with a trained linear readout.

  python -m experiments.echo_state --config=configs/echo_state.py --workdir=DIR

Runs `seqnets.analysis.echo_state_study` (data, readouts and NRMSE are
described there) and writes to DIR: results.json (every number) and
prediction.png; prints a summary, and a line per stage on stderr. Exit status
2 with one line on stderr for a bad flag or config field.
"""

import os
import pathlib
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app
from absl import flags
from ml_collections import config_flags

from experiments import runtime
from seqnets.analysis import echo_state_study

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config file (configs/echo_state.py[:mode]).', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for results.json and prediction.png.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  runtime.configure()
  workdir = pathlib.Path(runtime.checked_workdir(_WORKDIR.value))
  with runtime.one_line_errors():
    _, summary = echo_state_study.run_and_write(
        _CONFIG.value, workdir, log=lambda m: print(m, file=sys.stderr, flush=True))
  print(summary, end='')
  sys.stdout.flush()


if __name__ == '__main__':
  app.run(main, flags_parser=runtime.parse_flags)
