"""Sentence classification: token ids `[B, T]` with lengths -> one of C classes.

`config.data.source`:
  'files': train_path, eval_path and file_format ('tsv' | 'csv' | 'label_space_text';
    always named, never guessed from a file name)
  'tfds': a TFDS catalogue dataset (online); tfds_name ('glue/sst2'), train_split,
    eval_split, data_dir
and max_length (longer sentences are cut), min_count, max_vocab_size (0: all),
batch_size, bucket_width (0: every batch max_length wide; n > 0: batches of sentences
whose lengths differ by < n, n·k wide, for recurrent models). The vocabulary and the label set come from the training data and
are saved with the run; `vocabulary_from='pretrained'` (and `pretrained_max_words`) adds
the words of the model's pretrained vectors file (`seqnets.tasks.word_vocabulary`; a
file word joins lowercased, when the tokenizer gives it as one token). An evaluation
file is read in `file_format`.
"""

from __future__ import annotations

import dataclasses
import pathlib

from seqnets.data import text_classification as text_data
from seqnets.data.vocab import Vocabulary, tokenize
from seqnets.tasks import base
from seqnets.tasks import classification
from seqnets.tasks import fields
from seqnets.tasks import word_vocabulary

SOURCES = ('files', 'tfds')


def validate(cfg) -> None:
  source = fields.one_of(cfg, 'source', SOURCES)
  fields.positive_int(cfg, 'batch_size')
  fields.positive_int(cfg, 'max_length')
  fields.positive_int(cfg, 'min_count')
  fields.non_negative_int(cfg, 'max_vocab_size')
  fields.non_negative_int(cfg, 'bucket_width')
  fields.one_of(cfg, 'file_format', text_data.FORMATS)
  if source == 'files':
    for field in ('train_path', 'eval_path'):
      fields.non_empty_string(cfg, field, f'a {cfg.file_format} file')
  else:
    fields.non_empty_string(cfg, 'tfds_name', 'a TFDS dataset, e.g. "glue/sst2"')
  word_vocabulary.validate(cfg)


def _encode_pairs(cfg, vocab: Vocabulary, pairs) -> base.Batch:
  return text_data.make_batch([tokenize(text) for text, _ in pairs], [label for _, label in pairs],
                              vocab, pad_to=cfg.max_length)


def _input_word(word: str) -> str | None:
  """`word` as the tokenizer gives it (lowercased), or None when it is not one token."""
  tokens = tokenize(word)
  return tokens[0] if len(tokens) == 1 else None


def build_data(cfg, vectors_file: str | None = None) -> base.TaskData:
  """The data of `cfg`; `vectors_file`: the file whose words join the vocabulary
  (`data.vocabulary_from='pretrained'`)."""
  if cfg.source == 'files':
    read = lambda path: text_data.read_examples_with_lines(path, cfg.file_format)
    train, dev = read(cfg.train_path), read(cfg.eval_path)
    text_data.check_labels_known(cfg.eval_path, dev, {label for _, label, _ in train}, cfg.train_path)
    train_pairs = [(text, label) for text, label, _ in train]
    eval_pairs = {'dev': [(text, label) for text, label, _ in dev]}
  else:
    from seqnets.data import tfds_loaders
    load = lambda split: tfds_loaders.load_texts(cfg.tfds_name, split, cfg.get('data_dir'))
    eval_split = cfg.get('eval_split', 'validation')
    train_pairs, eval_pairs = load(cfg.get('train_split', 'train')), {'dev': load(eval_split)}
  vocab = Vocabulary.build([tokenize(text) for text, _ in train_pairs], min_count=cfg.get('min_count', 1),
                           max_size=cfg.get('max_vocab_size') or None)
  vocab, summary = word_vocabulary.extend(cfg, vocab, vectors_file, _input_word)
  train = _encode_pairs(cfg, vocab, train_pairs)
  data = classification.make_data(
      train, {split: _encode_pairs(cfg, vocab, pairs) for split, pairs in eval_pairs.items()},
      cfg.batch_size, vocabulary=vocab.tokens, bucket_width=cfg.get('bucket_width', 0))
  return dataclasses.replace(
      data, summary={**data.summary, **summary},
      token_counts={'source': base.token_counts(train['inputs'], train['lengths'], len(vocab))})


def read_file(cfg, path: str | pathlib.Path):
  """`[(text, label, line)]` read in `data.file_format`."""
  return text_data.read_examples_with_lines(path, cfg.file_format)


def encode(cfg, preprocessing: base.Preprocessing, examples) -> base.Batch:
  """Examples `[(text, label[, line])]` -> a batch; labels outside the label set are refused."""
  known = set(preprocessing.labels)
  for example in examples:
    if example[1] not in known:
      where = f'line {example[2]}' if len(example) > 2 else f'example {example[0][:30]!r}'
      raise ValueError(f'{where}: label {example[1]} never appears in the training data '
                       f'(training labels: {sorted(known)})')
  vocab = Vocabulary(tuple(preprocessing.vocabulary))
  return classification.with_valid(_encode_pairs(cfg, vocab, [e[:2] for e in examples]))


TASK = base.Task(
    name='text_classification',
    data_keys=('batch_size', 'bucket_width', 'data_dir', 'eval_path', 'eval_split',
               'file_format', 'max_length', 'max_vocab_size', 'min_count', 'source', 'tfds_name',
               'train_path', 'train_split', *word_vocabulary.KEYS),
    validate=validate,
    build_data=build_data,
    read_file=read_file,
    encode=encode,
    **classification.TASK_PARTS,
    time_keys=('inputs',),
)
