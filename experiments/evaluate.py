"""Evaluates a trained run: its evaluators on its own evaluation data, or on a file.

  python -m experiments.evaluate --workdir=DIR [--eval_file=PATH] [--seed_index=0] \
      [--checkpoint=latest|best|average|STEP]

Restores a checkpoint of DIR (--checkpoint: by default the best when the run has one,
else the newest; one line on stderr says which step was read) and runs the run's
evaluators. With
--eval_file, the file is read in the format the run's config names (never
guessed from the file name) and every evaluator type of the run scores it.
The last line of standard output is one flat JSON object, metric name ->
number (fractions in [0, 1], except BLEU, on sacrebleu's 0–100 scale; a classifier
reports `accuracy`, a sequence-to-sequence model its exact match as `accuracy`). With one
evaluator (or --eval_file) the names are bare (`accuracy`, `loss`); with
several they are `<evaluator>/<metric>`.
"""

import json
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app
from absl import flags

from experiments import runtime
from seqnets.training import saved_run

_WORKDIR = flags.DEFINE_string('workdir', None, 'A run directory written by experiments.main.')
_EVAL_FILE = flags.DEFINE_string('eval_file', None, 'Evaluate on this file instead of the configured data.')
_SEED_INDEX = flags.DEFINE_integer('seed_index', 0, 'Which of the run\'s seeds to evaluate.')
_CHECKPOINT = runtime.define_checkpoint_flag()
flags.mark_flags_as_required(['workdir'])


def main(argv):
  del argv
  runtime.configure()
  with runtime.one_line_errors():
    run = runtime.load_run(_WORKDIR.value, _CHECKPOINT.value)
    results = run.evaluate(_EVAL_FILE.value, _SEED_INDEX.value)
  bare = _EVAL_FILE.value is not None or len(run.config.evals) == 1
  print(json.dumps(saved_run.flat_numbers(results, bare), sort_keys=True))
  sys.stdout.flush()
  runtime.say_checkpoint(run, _SEED_INDEX.value)


if __name__ == '__main__':
  app.run(main, flags_parser=runtime.parse_flags)
