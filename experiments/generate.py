"""Samples text from a trained language model.

  python -m experiments.generate --workdir=DIR --prime="ROMEO:" --length=500 --temperature=0.8 \
      [--top_k=0] [--top_p=1.0] [--seed=0] [--num_samples=1] [--seed_index=0] \
      [--checkpoint=latest|best|average|STEP]

Prints the prime followed by the generated text and a newline; `--length` counts generated
tokens (characters or words). A character model writes exactly `--length`
characters; a word model stops early at the end of a line (`</s>`). With
--num_samples above 1, each sample follows a line `----- sample i -----`.
The same flags and seed give the same text. --temperature=0 is greedy.
--checkpoint picks the parameters: by default the best checkpoint when the run has one,
else the newest; one line on stderr says which step was read.
Exit status 2 with one line on stderr for a bad flag or workdir.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app
from absl import flags

from experiments import runtime
from seqnets.decoding import generation

_WORKDIR = flags.DEFINE_string('workdir', None, 'A language-model run written by experiments.main.')
_PRIME = flags.DEFINE_string('prime', '', 'Text to start from (empty: the start symbol <s>).')
_LENGTH = flags.DEFINE_integer('length', 200, 'Tokens to generate.', lower_bound=1)
_TEMPERATURE = flags.DEFINE_float('temperature', 1.0, 'Softmax temperature; 0 is greedy.',
                                  lower_bound=0.0)
_TOP_K = flags.DEFINE_integer('top_k', 0, 'Sample from the k most probable tokens (0: all).',
                              lower_bound=0)
_TOP_P = flags.DEFINE_float('top_p', 1.0, 'Nucleus sampling: the smallest set of tokens with this '
                            'much probability (1: all).', lower_bound=0.0, upper_bound=1.0)
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed of the sampler.')
_NUM_SAMPLES = flags.DEFINE_integer('num_samples', 1, 'Samples to draw.', lower_bound=1)
_SEED_INDEX = flags.DEFINE_integer('seed_index', 0, 'Which of the run\'s seeds to use.')
_CHECKPOINT = runtime.define_checkpoint_flag()
flags.mark_flags_as_required(['workdir'])


def main(argv):
  del argv
  runtime.configure()
  with runtime.one_line_errors():
    run = runtime.load_run(_WORKDIR.value, _CHECKPOINT.value)
    texts = generation.generate_text(
        run, _PRIME.value, _LENGTH.value, temperature=_TEMPERATURE.value, top_k=_TOP_K.value,
        top_p=_TOP_P.value, seed=_SEED.value, num_samples=_NUM_SAMPLES.value,
        seed_index=_SEED_INDEX.value)
  for index, text in enumerate(texts):
    if len(texts) > 1:
      sys.stdout.write(f'----- sample {index} -----\n')
    sys.stdout.write(text + '\n')
  sys.stdout.flush()
  runtime.say_checkpoint(run, _SEED_INDEX.value)


if __name__ == '__main__':
  app.run(main, flags_parser=runtime.parse_flags)
