"""Trains one model from a config file.

  python -m experiments.main --config=configs/anbn.py --workdir=runs/anbn \
      [--config.model.cell=gru --config.train.num_train_steps=500 ...]

Rerunning with the same --workdir resumes from its latest checkpoint.
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


def main(argv):
  del argv
  runtime.configure()
  result = loop.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  if result.interrupted:
    print(f'Stopped at step {result.step}; checkpoint saved. Rerun the same command to resume.',
          file=sys.stderr)
    sys.exit(130)
  for seed, final in enumerate(result.final):
    summary = {k: v for k, v in final.items() if not isinstance(v, dict)}
    print(f'seed index {seed}: {summary}')


if __name__ == '__main__':
  app.run(main)
