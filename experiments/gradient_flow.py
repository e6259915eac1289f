"""Gradient flow study: ‖∂L/∂s_t‖ against the distance to the loss, per recurrent cell.

  python -m experiments.gradient_flow --config=configs/gradient_flow.py --workdir=DIR

Runs `seqnets.analysis.gradient_flow_study` (task, probe and outputs are
described there) and writes to DIR: gradient_norms.png, clipping.png,
summary.md (also printed) and gradient_flow.json. A line per cell goes to
stderr. Exit status 2 with one line on stderr for a bad flag or config field.
"""

import os
import pathlib
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
# The step Jacobians' SVDs run in OpenBLAS, whose threads and XLA's slow each other down: 800
# SVDs of 128 × 128 took 0.3 s with one OpenBLAS thread, 1–50 s with its default (2 cores).
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

from absl import app
from absl import flags
from ml_collections import config_flags

from experiments import runtime
from seqnets.analysis import gradient_flow_study

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config file (configs/gradient_flow.py[:mode]).', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None,
                               'Directory for the plots, summary.md and gradient_flow.json.')
flags.mark_flags_as_required(['config', 'workdir'])


def main(argv):
  del argv
  runtime.configure()
  workdir = pathlib.Path(runtime.checked_workdir(_WORKDIR.value))
  with runtime.one_line_errors():
    results = gradient_flow_study.run_study(
        _CONFIG.value, log=lambda m: print(m, file=sys.stderr, flush=True))
  print(gradient_flow_study.write_outputs(results, workdir), end='')
  sys.stdout.flush()


if __name__ == '__main__':
  app.run(main, flags_parser=runtime.parse_flags)
