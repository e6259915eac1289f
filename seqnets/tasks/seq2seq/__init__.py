"""Sequence to sequence: read a source sequence, write the target sequence.

`config.data.source`: 'synthetic' (below), 'files' (parallel text: `files`) or
'digit_images' (images of handwritten digit strings -> the string: `digit_images`).
All take `batch_size`, `label_smoothing` and the teacher-forcing schedule.

`config.data` of source 'synthetic' (problems generated on the fly,
`seqnets.data.seq2seq.synthetic`):
  problem              'copy' | 'reverse' | 'sort' | 'addition'
  num_symbols          alphabet size of copy / reverse / sort
  train_lengths        (lo, hi): sizes of the training pairs
  eval_lengths         (lo, hi): sizes of the 'lengths' evaluation set (e.g. beyond training)
  eval_examples        pairs in the 'validation' set (training sizes)
  examples_per_length  pairs of every size in the 'lengths' set
  batch_size           pairs per step
  label_smoothing      ε of the training loss (evaluation reports the true cross-entropy)
  teacher_forcing_schedule, teacher_forcing_ratio, teacher_forcing_decay
                       scheduled sampling (`training.teacher_forcing`; constant 1.0 = always
                       teacher forcing)
No training pair has the source of an evaluation pair, so evaluation is on new strings.
Tokens are characters (spaces ignored); `<pad> <unk> <s> </s>` then the symbols.

Batches: source `[B, S]`, source_lengths `[B]`, target_inputs `[B, T]` (`<s> y`),
targets `[B, T]` (`y </s>`), weights `[B, T]`, n `[B]` (the size), valid `[B]`.
Evaluation sets 'validation' and 'lengths' (synthetic) or 'validation' (files, digit_images).
`accuracy` is exact match: every target token and the `</s>` predicted right
under teacher forcing, which is exactly when greedy decoding gives the target.
Evaluator type 'bleu' decodes and scores against the untokenised references.
An evaluation file holds one pair per line, `source<TAB>target`.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import pathlib

import jax.numpy as jnp
import numpy as np
import optax

from seqnets.data.seq2seq import batches as seq2seq_batches
from seqnets.data.seq2seq import synthetic
from seqnets.training import teacher_forcing
from seqnets.data import text_file
from seqnets.data.vocab import Vocabulary
from seqnets.tasks import base
from seqnets.tasks import fields
from seqnets.tasks.seq2seq import digit_images as seq2seq_digit_images
from seqnets.tasks.seq2seq import files as seq2seq_files

BOS, EOS = '<s>', '</s>'
BOS_ID, EOS_ID = 2, 3              # every vocabulary here: <pad> <unk> <s> </s> first
SOURCES = ('synthetic', 'files', 'digit_images')
VALIDATION_SEED = 10 ** 6          # evaluation pairs come from seeds no training step uses
LENGTHS_SEED = 10 ** 6 + 1


def validate(cfg) -> None:
  source = fields.one_of(cfg, 'source', SOURCES, 'synthetic')
  smoothing = cfg.get('label_smoothing', 0.0)
  if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 <= smoothing < 1:
    raise ValueError(f'data.label_smoothing must be in [0, 1), got {smoothing!r}')
  teacher_forcing.validate(*_schedule(cfg))
  if source == 'files':
    seq2seq_files.validate(cfg)
    return
  if source == 'digit_images':
    seq2seq_digit_images.validate(cfg)
    return
  fields.one_of(cfg, 'problem', synthetic.PROBLEMS)
  if cfg.problem != 'addition':
    symbols = cfg.get('num_symbols')
    if not isinstance(symbols, int) or isinstance(symbols, bool) or not 1 <= symbols <= 26:
      raise ValueError(f'data.num_symbols must be an integer in [1, 26], got {symbols!r}')
  fields.positive_range(cfg, 'train_lengths')
  fields.positive_range(cfg, 'eval_lengths')
  for field in ('eval_examples', 'examples_per_length', 'batch_size'):
    fields.positive_int(cfg, field)


def _schedule(cfg) -> tuple[str, float, float]:
  return (cfg.get('teacher_forcing_schedule', 'constant'), cfg.get('teacher_forcing_ratio', 1.0),
          cfg.get('teacher_forcing_decay', 0.0))


def vocabulary(cfg) -> Vocabulary:
  return Vocabulary(('<pad>', '<unk>', BOS, EOS,
                     *synthetic.symbols(cfg.problem, cfg.get('num_symbols', 10))))


def tokenize(text: str) -> list[str]:
  """The characters of `text`, whitespace dropped."""
  return [c for c in text if not c.isspace()]


def detokenize(tokens) -> str:
  return ''.join(t for t in tokens if t not in ('<pad>', BOS, EOS))


def _widths(cfg, longest: int) -> tuple[int, int]:
  """(source, target) widths that hold every pair of size <= `longest`."""
  if cfg.problem == 'addition':
    return 2 * longest + 1, longest + 2           # x+y; the sum's digits + </s>
  return longest, longest + 1


def encode_pairs(pairs, vocab: Vocabulary, sizes, widths: tuple[int, int] | None = None
                 ) -> base.Batch:
  """(source, target) strings -> a batch (`seq2seq_batches.pair_batch`); `widths` pads to
  fixed `(S, T)` (default: the longest here)."""
  return seq2seq_batches.pair_batch(
      [vocab.encode(tokenize(s)) for s, _ in pairs], [vocab.encode(tokenize(t)) for _, t in pairs],
      bos_id=vocab.id(BOS), eos_id=vocab.id(EOS), widths=widths, sizes=sizes)


def _sized(cfg, pairs) -> list[int]:
  return [synthetic.size_of(cfg.problem, source) for source, _ in pairs]


def _with_training_options(cfg, train_batches):
  """Adds the scheduled-sampling probability and the label smoothing of each step."""
  smoothing = float(cfg.get('label_smoothing', 0.0))
  schedule = _schedule(cfg)

  def batches(seed: int, start: int):
    for step, batch in enumerate(train_batches(seed, start), start):
      rows = len(batch['source'])
      sampling = 1.0 - teacher_forcing.true_token_probability(*schedule, step)
      if sampling > 0:
        batch['sampling_probability'] = np.full(rows, sampling, np.float32)
      if smoothing > 0:
        batch['label_smoothing'] = np.full(rows, smoothing, np.float32)
      yield batch
  return batches


def build_data(cfg) -> base.TaskData:
  source = cfg.get('source', 'synthetic')
  data = (seq2seq_files.build_data(cfg) if source == 'files'
          else seq2seq_digit_images.build_data(cfg) if source == 'digit_images'
          else _synthetic_data(cfg))
  return dataclasses.replace(data, train_batches=_with_training_options(cfg, data.train_batches))


def _synthetic_data(cfg) -> base.TaskData:
  vocab = vocabulary(cfg)
  symbols = cfg.get('num_symbols', 10)
  train_lengths = fields.positive_range(cfg, 'train_lengths')
  eval_lengths = fields.positive_range(cfg, 'eval_lengths')
  validation = synthetic.sample_pairs(cfg.problem, np.random.default_rng(VALIDATION_SEED),
                                      cfg.eval_examples, train_lengths, symbols)
  rng = np.random.default_rng(LENGTHS_SEED)
  by_length = [pair for n in range(eval_lengths[0], eval_lengths[1] + 1)
               for pair in synthetic.sample_pairs(cfg.problem, rng, cfg.examples_per_length,
                                                  (n, n), symbols)]
  held_out = frozenset(source for source, _ in validation + by_length)
  held_by_size = collections.Counter(synthetic.size_of(cfg.problem, s) for s in held_out)
  for n in range(train_lengths[0], train_lengths[1] + 1):
    space = synthetic.num_sources(cfg.problem, (n, n), symbols)
    if 2 * held_by_size[n] > space:
      raise ValueError(f'the evaluation sets hold {held_by_size[n]} of the {space} sources of size '
                       f'{n}, which training never sees: lower data.eval_examples and '
                       f'data.examples_per_length, or raise data.train_lengths')
  widths = _widths(cfg, train_lengths[1])

  def train_batches(seed: int, start: int):
    for step in itertools.count(start):
      pairs = synthetic.sample_pairs(cfg.problem, np.random.default_rng([seed, step]),
                                     cfg.batch_size, train_lengths, symbols, held_out)
      yield encode_pairs(pairs, vocab, _sized(cfg, pairs), widths)

  info = base.DataInfo(vocab_size=len(vocab), num_outputs=len(vocab), pad_id=vocab.pad_id,
                       unit='char')
  eval_sets = {'validation': encode_pairs(validation, vocab, _sized(cfg, validation)),
               'lengths': encode_pairs(by_length, vocab, _sized(cfg, by_length))}
  return base.TaskData(base.Preprocessing(info, vocab.tokens), train_batches, eval_sets,
                       {'validation': validation, 'lengths': by_length})


def model_inputs(batch: base.Batch) -> tuple[tuple, dict]:
  """`(source, source_lengths, target_inputs, target_lengths)`, and the scheduled-sampling
  probability of a training batch."""
  kwargs = {}
  if 'sampling_probability' in batch:
    kwargs['sampling_probability'] = batch['sampling_probability'][:, None]
  return (batch['source'], batch['source_lengths'], batch['target_inputs'],
          batch['target_lengths']), kwargs


def loss(logits, batch):
  """Mean cross-entropy per target token (`</s>` included); with `label_smoothing` in
  the batch, against the smoothed distribution (1 − ε) onehot + ε / V."""
  weights = batch['weights']
  labels = optax.smooth_labels(jnp.eye(logits.shape[-1], dtype=jnp.float32)[batch['targets']],
                               batch['label_smoothing'][:, None, None]
                               ) if 'label_smoothing' in batch else None
  if labels is None:
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch['targets'])
  else:
    losses = optax.softmax_cross_entropy(logits, labels)
  hits = jnp.argmax(logits, -1) == batch['targets']
  right = hits | (weights == 0)
  real = base.example_weights(batch)
  count = weights.sum()
  sums = {'loss_sum': jnp.sum(losses * weights), 'token_count': count,
          'tokens_correct': jnp.sum(hits * weights),
          'sequences_correct': jnp.sum(jnp.all(right, -1) * real), 'sequence_count': jnp.sum(real)}
  return sums['loss_sum'] / jnp.maximum(count, 1), sums


def example_correct(logits, batch):
  """`[B]`: the whole target and its `</s>` right (= greedy decoding gives the target)."""
  return jnp.all((jnp.argmax(logits, -1) == batch['targets']) | (batch['weights'] == 0), -1)


def read_file(cfg, path: str | pathlib.Path) -> list[tuple[str, str]]:
  """`source<TAB>target` per non-blank line; ValueError naming file and line."""
  pairs = []
  for line, text in text_file.read_lines(path):
    if not text.strip():
      continue
    parts = text.rstrip('\n').split('\t')
    if len(parts) != 2 or not tokenize(parts[0]) or not tokenize(parts[1]):
      raise ValueError(f'{path}:{line}: expected "source<TAB>target", got {text.strip()[:60]!r}')
    pairs.append((parts[0], parts[1]))
  if not pairs:
    raise ValueError(f'{path}: no pairs')
  return pairs


def encode(cfg, preprocessing: base.Preprocessing, pairs) -> base.Batch:
  if cfg.get('source', 'synthetic') == 'files':
    return seq2seq_files.encode_pairs(*seq2seq_files.tokenizers(preprocessing), pairs)
  if cfg.get('source', 'synthetic') == 'digit_images':
    return seq2seq_digit_images.encode_pairs(cfg, preprocessing, pairs)
  vocab = Vocabulary(tuple(preprocessing.vocabulary))
  return encode_pairs(pairs, vocab, _sized(cfg, pairs))


def encode_sources(cfg, preprocessing: base.Preprocessing, lines) -> tuple[np.ndarray, np.ndarray]:
  """Untokenised source lines -> (source `[N, S]`, source_lengths `[N]`), for decoding."""
  if cfg.get('source', 'synthetic') == 'digit_images':
    raise ValueError(seq2seq_digit_images.NO_TEXT_INPUT)
  if cfg.get('source', 'synthetic') == 'files':
    source_tok = seq2seq_files.tokenizers(preprocessing)[0]
    ids = [source_tok.encode(line) for line in lines]
  else:
    vocab = Vocabulary(tuple(preprocessing.vocabulary))
    ids = [vocab.encode(tokenize(line)) for line in lines]
  width = max([len(i) for i in ids] + [1])
  source = np.zeros((len(ids), width), np.int32)
  for row, i in enumerate(ids):
    source[row, :len(i)] = i
  return source, np.asarray([len(i) for i in ids], np.int32)


def decode_targets(cfg, preprocessing: base.Preprocessing, ids) -> str:
  """Target ids (up to `</s>`) -> the untokenised text."""
  if cfg.get('source', 'synthetic') == 'files':
    return seq2seq_files.tokenizers(preprocessing)[1].decode(ids)
  vocab = Vocabulary(tuple(preprocessing.target_vocabulary or preprocessing.vocabulary))
  return detokenize(vocab.decode(list(ids)))


def reported_metrics(config: dict) -> list[base.ReportedMetric]:
  if config['data'].get('source', 'synthetic') == 'files':
    return [base.ReportedMetric(f'eval/{name}/bleu_lowercase', f'{name} BLEU (lowercased)')
            for name, spec in config['evals'].items() if spec['type'] == 'bleu']
  return [base.ReportedMetric('eval/validation/accuracy', 'exact match, training lengths'),
          base.ReportedMetric('eval/lengths/max_correct_n', 'largest all-correct n')]


TASK = base.Task(
    name='seq2seq',
    data_keys=('batch_size', 'bucket_width', 'digits_per_image', 'eval_examples', 'eval_lengths',
               'eval_source', 'eval_target', 'examples_per_length', 'label_smoothing',
               'lowercase', 'max_length', 'min_count', 'num_symbols', 'problem', 'source',
               'source_vocab_size', 'target_vocab_size', 'teacher_forcing_decay',
               'teacher_forcing_ratio', 'teacher_forcing_schedule', 'tokenizer', 'train_lengths',
               'train_source', 'train_target'),
    validate=validate,
    build_data=build_data,
    loss=loss,
    example_correct=example_correct,
    read_file=read_file,
    encode=encode,
    evaluator_types=('metrics', 'accuracy_by_n', 'bleu'),
    reported_metrics=reported_metrics,
    model_inputs=model_inputs,
    detokenize=decode_targets,
)
