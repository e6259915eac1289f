"""Decodes a file of sources with a trained sequence-to-sequence run.

  python -m experiments.decode --workdir=DIR --input=SRC --output=HYP [--beam_size=5] \
      [--length_penalty=0.0] [--max_length=0] [--temperature=0] [--seed=0] [--batch_size=64] \
      [--seed_index=0] [--checkpoint=latest|best|average|STEP] [--attention_dir=DIR] \
      [--attention_examples=5]

Reads one untokenised source sentence per line of SRC (UTF-8), applies the run's
saved tokenisation, and writes to HYP exactly one detokenised hypothesis per
input line, in the same order, each ended by a newline (an empty hypothesis is
an empty line). --beam_size=1 is greedy; --temperature above 0 samples (beam
size 1). HYP is written whole at the end (a temporary file renamed into place),
so an interrupted run never leaves half a file. With --attention_dir, the first
--attention_examples sentences also get an attention heatmap each
(`attention_<i>.png`: output tokens × source tokens). --checkpoint picks the parameters:
by default the best checkpoint when the run has one, else the newest; one line on stderr
says which step was read. Exit status 2 with one line
on stderr for a bad flag, workdir or input file.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

from absl import app
from absl import flags

from experiments import runtime
from seqnets.decoding import encoder_decoder
from seqnets.decoding import sentence_files

_WORKDIR = flags.DEFINE_string('workdir', None, 'A sequence-to-sequence run written by experiments.main.')
_INPUT = flags.DEFINE_string('input', None, 'Source sentences, one per line.')
_OUTPUT = flags.DEFINE_string('output', None, 'Where the hypotheses go, one per line.')
_BEAM_SIZE = flags.DEFINE_integer('beam_size', 1, 'Beam size (1: greedy).', lower_bound=1)
_LENGTH_PENALTY = flags.DEFINE_float('length_penalty', 0.0, 'α of the length normalisation '
                                     '((5 + n) / 6)^α (0: none).', lower_bound=0.0)
_MAX_LENGTH = flags.DEFINE_integer('max_length', 0, 'Most target tokens (0: 2 × the source '
                                   'bucket + 8).', lower_bound=0)
_TEMPERATURE = flags.DEFINE_float('temperature', 0.0, 'Above 0: sample at this temperature '
                                  '(beam size 1).', lower_bound=0.0)
_SEED = flags.DEFINE_integer('seed', 0, 'Random seed of the sampler.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 64, 'Sentences decoded together.', lower_bound=1)
_SEED_INDEX = flags.DEFINE_integer('seed_index', 0, 'Which of the run\'s seeds to use.')
_CHECKPOINT = runtime.define_checkpoint_flag()
_ATTENTION_DIR = flags.DEFINE_string('attention_dir', None, 'Write attention heatmaps here.')
_ATTENTION_EXAMPLES = flags.DEFINE_integer('attention_examples', 5, 'Sentences to draw.',
                                           lower_bound=1)
flags.mark_flags_as_required(['workdir', 'input', 'output'])


def main(argv):
  del argv
  runtime.configure()
  with runtime.one_line_errors():
    run = runtime.load_run(_WORKDIR.value, _CHECKPOINT.value)
    sources = sentence_files.read_lines(_INPUT.value)
    if _TEMPERATURE.value > 0 and _BEAM_SIZE.value != 1:
      raise ValueError(f'--temperature={_TEMPERATURE.value} samples, which needs --beam_size=1')
    hypotheses = encoder_decoder.translate(
        run, sources, beam_size=_BEAM_SIZE.value, length_penalty=_LENGTH_PENALTY.value,
        max_length=_MAX_LENGTH.value, temperature=_TEMPERATURE.value, seed=_SEED.value,
        batch_size=_BATCH_SIZE.value, seed_index=_SEED_INDEX.value)
    sentence_files.write_lines(_OUTPUT.value, hypotheses)
    if _ATTENTION_DIR.value:
      from seqnets.analysis import attention_maps
      attention_maps.save_attention_maps(
          run, sources[:_ATTENTION_EXAMPLES.value], _ATTENTION_DIR.value, beam_size=_BEAM_SIZE.value,
          length_penalty=_LENGTH_PENALTY.value, max_length=_MAX_LENGTH.value,
          seed_index=_SEED_INDEX.value)
  sys.stdout.flush()
  runtime.say_checkpoint(run, _SEED_INDEX.value)


if __name__ == '__main__':
  app.run(main, flags_parser=runtime.parse_flags)
