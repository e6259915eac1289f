"""The sequence-to-sequence task's data from images of handwritten digit strings
(source 'digit_images'): an image of 1–5 digits side by side -> the digit string.

Synopsis:
  data = build_data(ml_collections.ConfigDict(dict(source='digit_images',
      digits_per_image=(1, 5), eval_examples=1000, batch_size=64)))
  batch = next(data.train_batches(seed, 0))   # source [64, 8, 40, 1] float32
  data.texts['validation'][0]                 # ('digits 1203 88 641', '370')

`config.data`:
  digits_per_image   (lo, hi): digits in one image, which is 8 × 8·hi pixels
  eval_examples      strings in the 'validation' split
  batch_size         strings per step
Training strings are drawn afresh at every step, deterministic in (seed, step), from
80% of the 1,797 digits (`digit_strings.split`, stratified); the 'validation'
strings from the other 20%, so evaluation reads handwriting training never saw.

Batches: source `[B, 8, 8·hi, 1]` float32 (digits left-aligned, zeros to the right),
source_lengths `[B]` = the number of digits, and the target side of
`seq2seq_batches.pair_batch`: target_inputs `<s> y`, targets `y </s>`, weights,
target_lengths, n `[B]` = the number of digits, valid. Vocabulary
`<pad> <unk> <s> </s> 0 … 9`. A raw example is `(description, target)`; the
description 'digits 1203 88 641' names the images left to right (indices into
`digits.load()`), so `encode` rebuilds the batch from it.
"""

from __future__ import annotations

import itertools

import numpy as np

from seqnets.data import digit_strings
from seqnets.data import digits
from seqnets.data.seq2seq import batches as seq2seq_batches
from seqnets.data.vocab import Vocabulary
from seqnets.tasks import base
from seqnets.tasks import fields

BOS, EOS = '<s>', '</s>'
TOKENS = ('<pad>', '<unk>', BOS, EOS, *'0123456789')
VALIDATION_SEED = 10 ** 6          # no training step uses this seed
PREFIX = 'digits'
NO_TEXT_INPUT = ('digit images have no text input; evaluate with the configured data '
                 '(or pairs "digits <i> <j> ...<TAB>target" naming images of digits.load())')


def digits_per_image(cfg) -> tuple[int, int]:
  value = cfg.get('digits_per_image')
  try:
    lo, hi = (int(v) for v in value)
  except (TypeError, ValueError):
    raise ValueError(f'data.digits_per_image must be a pair (lo, hi) of integers, '
                     f'got {value!r}') from None
  if lo < 1 or hi < lo:
    raise ValueError(f'data.digits_per_image=({lo}, {hi}) must satisfy 1 <= lo <= hi')
  return lo, hi


def validate(cfg) -> None:
  digits_per_image(cfg)
  for field in ('eval_examples', 'batch_size'):
    fields.positive_int(cfg, field)


def describe(indices) -> str:
  """Indices into `digits.load()` -> 'digits 1203 88 641'."""
  return ' '.join([PREFIX, *(str(int(i)) for i in indices)])


def parse(description: str, count: int) -> list[int]:
  """'digits 1203 88 641' -> [1203, 88, 641]; ValueError unless every index is in [0, count)."""
  parts = description.split()
  try:
    indices = [int(p) for p in parts[1:]]
  except ValueError:
    indices = None
  if not parts or parts[0] != PREFIX or not indices or not all(0 <= i < count for i in indices):
    raise ValueError(f'{description[:60]!r} does not name digit images: expected '
                     f'"{PREFIX} <i> <j> ..." with indices in [0, {count})')
  return indices


def make_batch(images: np.ndarray, strings, targets, vocab: Vocabulary, max_digits: int
               ) -> base.Batch:
  """Index strings into `images [M, 8, 8, 1]` and their target strings -> a batch (see
  the module docstring)."""
  source, widths = digit_strings.compose(images, strings, max_digits)
  batch = seq2seq_batches.pair_batch(
      [np.ones(w, np.int32) for w in widths], [vocab.encode(list(t)) for t in targets],
      bos_id=vocab.id(BOS), eos_id=vocab.id(EOS), widths=(max_digits, max_digits + 1))
  batch['source'] = source
  return batch


def build_data(cfg) -> base.TaskData:
  lo, hi = digits_per_image(cfg)
  data = digits.load()
  images, labels = data['images'], data['labels']
  train, held_out = digit_strings.split(labels)
  vocab = Vocabulary(TOKENS)

  def strings_of(pool, rng, count):
    strings = [pool[s] for s in digit_strings.sample_strings(len(pool), rng, count, (lo, hi))]
    return strings, [''.join(str(int(labels[i])) for i in s) for s in strings]

  def train_batches(seed: int, start: int):
    for step in itertools.count(start):
      strings, targets = strings_of(train, np.random.default_rng([seed, step]), cfg.batch_size)
      yield make_batch(images, strings, targets, vocab, hi)

  strings, targets = strings_of(held_out, np.random.default_rng(VALIDATION_SEED),
                                cfg.eval_examples)
  texts = [(describe(s), t) for s, t in zip(strings, targets)]
  info = base.DataInfo(vocab_size=len(TOKENS), num_outputs=len(TOKENS), pad_id=0, unit='char')
  return base.TaskData(base.Preprocessing(info, TOKENS), train_batches,
                       {'validation': make_batch(images, strings, targets, vocab, hi)},
                       {'validation': texts})


def encode_pairs(cfg, preprocessing: base.Preprocessing, pairs) -> base.Batch:
  """(description, target) pairs -> a batch; ValueError for a description that names
  no digit images or more than the images hold."""
  _, hi = digits_per_image(cfg)
  images = digits.load()['images']
  vocab = Vocabulary(tuple(preprocessing.vocabulary))
  strings = [parse(description, len(images)) for description, _ in pairs]
  for (description, _), string in zip(pairs, strings):
    if len(string) > hi:
      raise ValueError(f'{description[:60]!r} names {len(string)} digits; the images hold '
                       f'data.digits_per_image[1]={hi}')
  targets = [''.join(c for c in target if not c.isspace()) for _, target in pairs]
  return make_batch(images, strings, targets, vocab, hi)
