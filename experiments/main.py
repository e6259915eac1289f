"""Trains one model from a config file.

  python -m experiments.main --config=configs/anbn.py --workdir=runs/anbn \
      [--config.model.cell=gru --config.train.num_train_steps=500 ...]
  # several processes (one per machine, or several on one):
  python -m experiments.main ... --coordinator_address=host0:1234 --num_processes=2 --process_id=0

Rerunning with the same --workdir resumes from its latest checkpoint. Exit
status: 0 done (also when the run had finished before), 2 a usage error (a bad
config field, a busy workdir, a bad data file: one line on stderr), 130
stopped by Ctrl-C/SIGTERM with a checkpoint saved, 1 every seed diverged.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app
from absl import flags
from ml_collections import config_flags

from experiments import runtime
from seqnets.training import loop

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/*.py[:mode]).',
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and results.')
flags.mark_flags_as_required(['config', 'workdir'])
INTERRUPTED = 130


def main(argv):
  del argv
  runtime.configure()
  workdir = runtime.checked_workdir(_WORKDIR.value)
  with runtime.one_line_errors():
    try:
      result = loop.train_and_evaluate(_CONFIG.value, workdir)
    except FloatingPointError as e:
      print(f'error: {e}', file=sys.stderr)
      sys.exit(1)
  if result.interrupted:
    print(f'Stopped at step {result.step}; checkpoint saved. Rerun the same command to resume.',
          file=sys.stderr)
    sys.exit(INTERRUPTED)
  for seed, final in enumerate(result.final):
    summary = {k: v for k, v in final.items() if not isinstance(v, (dict, list))}
    print(f'seed index {seed}: {summary}')


if __name__ == '__main__':
  app.run(main, flags_parser=runtime.parse_flags)
