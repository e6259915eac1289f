"""Sequence labelling: a tag for every word (parts of speech, named entities in BIO).

`config.data`:
  format            'conllu' (Universal Dependencies) | 'conll' (token and tag columns)
  train_path, eval_path   plain or gzip files in `format`
  label_column      conllu: a column name ('upos', 'xpos', 'deprel', ...) or index;
                    conll: the tag column's index (-1: the last)
  token_column      conll: the token column's index
  lowercase         word ids from the lowercased word (characters keep their case)
  min_count, max_vocab_size   the word vocabulary (0: every word seen in training)
  vocabulary_from, pretrained_max_words   'pretrained': the words of the model's vectors
                    file join the vocabulary (lowercased with `lowercase`;
                    `seqnets.tasks.word_vocabulary`)
  max_word_length   characters kept of each word for the character encoder
  word_dropout      in training, each word id becomes `<unk>` with this probability (its
                    characters stay), so the model learns what to do with unknown words
  unknown_labels    'error': a tag of the evaluation data never seen in training is an
                    error naming file and line | 'unk': it becomes the tag `<unk>`
  batch_size, bucket_width    batches hold sentences whose lengths differ by < bucket_width

Batches: inputs `[B, T]` word ids, chars `[B, T, C]`, char_lengths `[B, T]`,
labels `[B, T]` tag ids, lengths `[B]`. The model returns a dict with
`logits [B, T, K]`, `predictions [B, T]` and, with a CRF, `log_likelihood [B]`.
The loss is the mean over words of the cross-entropy (or of the CRF's negative
log-likelihood). Metrics: `accuracy` (of the words), `sentence_accuracy`; the
evaluator types 'classification' (per-tag precision, recall, F1 and the confusion
matrix over words) and 'entity_f1' (seqeval's span-level CoNLL F1, BIO tags).
The evaluation split is 'dev'. Tag names are saved with the run (in order of id).
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from seqnets.data import batching
from seqnets.data import conll
from seqnets.data import tagged_batches
from seqnets.data.vocab import Vocabulary
from seqnets.tasks import base
from seqnets.tasks import fields
from seqnets.tasks import word_vocabulary

FORMATS = ('conllu', 'conll')
UNKNOWN_LABELS = ('error', 'unk')
UNK_TAG = '<unk>'
EVAL_SPLIT = 'dev'


def validate(cfg) -> None:
  file_format = fields.one_of(cfg, 'format', FORMATS)
  for field in ('train_path', 'eval_path'):
    fields.non_empty_string(cfg, field, f'a {file_format} file')
  for field in ('batch_size', 'bucket_width', 'min_count', 'max_word_length'):
    fields.positive_int(cfg, field)
  fields.non_negative_int(cfg, 'max_vocab_size')
  fields.one_of(cfg, 'unknown_labels', UNKNOWN_LABELS, 'error')
  rate = cfg.get('word_dropout', 0.0)
  if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
    raise ValueError(f'data.word_dropout must be in [0, 1), got {rate!r}')
  if not isinstance(cfg.get('lowercase', False), bool):
    raise ValueError(f'data.lowercase must be True or False, got {cfg.get("lowercase")!r}')
  column = cfg.get('label_column', 'upos' if file_format == 'conllu' else -1)
  if file_format == 'conll' or not isinstance(column, str):
    if not isinstance(column, int) or isinstance(column, bool):
      raise ValueError(f'data.label_column must be a column index for format {file_format!r}, '
                       f'got {column!r}')
  if file_format == 'conll':
    token_column = cfg.get('token_column', 0)
    if not isinstance(token_column, int) or isinstance(token_column, bool):
      raise ValueError(f'data.token_column must be a column index, got {token_column!r}')
  word_vocabulary.validate(cfg)


def read_file(cfg, path: str | pathlib.Path) -> list[conll.TaggedSentence]:
  """The sentences of `path`, read in `data.format`."""
  if cfg.format == 'conllu':
    return conll.read_conllu(path, column=cfg.get('label_column', 'upos'))
  return conll.read_conll(path, token_column=cfg.get('token_column', 0),
                          label_column=cfg.get('label_column', -1))


def tag_names(sentences, unknown_labels: str) -> tuple[str, ...]:
  """The training tags, most frequent first (ties: alphabetical), then `<unk>` when
  unseen tags map to it."""
  counts = conll.label_counts(sentences)
  names = sorted(counts, key=lambda t: (-counts[t], t))
  return tuple(names) + ((UNK_TAG,) if unknown_labels == 'unk' and UNK_TAG not in counts else ())


def tag_ids(cfg, names: tuple[str, ...], sentences, path) -> list[list[int]]:
  """The tag ids of every sentence; an unseen tag is an error naming file and line, or
  `<unk>` (`data.unknown_labels`)."""
  index = {name: i for i, name in enumerate(names)}
  ids = []
  for sentence in sentences:
    row = []
    for position, label in enumerate(sentence.labels):
      if label not in index:
        if cfg.get('unknown_labels', 'error') == 'unk':
          label = UNK_TAG
        else:
          line = (sentence.token_lines[position] if sentence.token_lines
                  else sentence.line + position)
          raise ValueError(f'{path}:{line}: tag {label!r} never appears in the training data '
                           f'(set data.unknown_labels="unk" to map unseen tags to {UNK_TAG}); '
                           f'training tags: {sorted(index)}')
      row.append(index[label])
    ids.append(row)
  return ids


def _arrays(cfg, preprocessing: base.Preprocessing, sentences, path, **kwargs) -> base.Batch:
  words = Vocabulary(tuple(preprocessing.vocabulary))
  chars = Vocabulary(tuple(preprocessing.char_vocabulary))
  ids = tag_ids(cfg, tuple(preprocessing.target_vocabulary), sentences, path)
  return tagged_batches.tagged_arrays([(s.tokens, i) for s, i in zip(sentences, ids)], words,
                                      chars, max_word_length=cfg.max_word_length,
                                      lowercase=cfg.get('lowercase', False), **kwargs)


def build_data(cfg, vectors_file: str | None = None) -> base.TaskData:
  """The data of `cfg`; `vectors_file`: the file whose words join the vocabulary
  (`data.vocabulary_from='pretrained'`)."""
  train, dev = read_file(cfg, cfg.train_path), read_file(cfg, cfg.eval_path)
  lowercase = cfg.get('lowercase', False)
  word_lists = [tagged_batches.word_keys(s.tokens, lowercase) for s in train]
  words = Vocabulary.build(word_lists, min_count=cfg.min_count,
                           max_size=cfg.get('max_vocab_size') or None)
  words, vocabulary_summary = word_vocabulary.extend(
      cfg, words, vectors_file, lambda word: word.lower() if lowercase else word)
  chars = tagged_batches.char_vocabulary([s.tokens for s in train])
  names = tag_names(train, cfg.get('unknown_labels', 'error'))
  info = base.DataInfo(vocab_size=len(words), num_outputs=len(names), unit='word',
                       char_vocab_size=len(chars), label_names=names)
  preprocessing = base.Preprocessing(info, words.tokens, target_vocabulary=names,
                                     char_vocabulary=chars.tokens)
  train_ids = tag_ids(cfg, names, train, cfg.train_path)
  pairs = [(s.tokens, i) for s, i in zip(train, train_ids)]
  lengths = np.asarray([len(s.tokens) for s in train])
  width, batch_size = cfg.bucket_width, cfg.batch_size

  word_dropout = cfg.get('word_dropout', 0.0)

  def train_batches(seed: int, start: int):
    steps = batching.bucketed_steps(lengths, batch_size, width, seed, start)
    for step, (rows, bucket) in enumerate(steps, start):
      batch = tagged_batches.tagged_arrays(
          [pairs[i] for i in rows], words, chars, max_word_length=cfg.max_word_length,
          lowercase=cfg.get('lowercase', False), width=bucket, rows=batch_size)
      if word_dropout:
        drop = np.random.default_rng([seed, step, 1]).random(batch['inputs'].shape) < word_dropout
        batch['inputs'] = np.where(drop & (batch['inputs'] > 0), words.unk_id, batch['inputs'])
      yield batch

  summary = {'train/sentences': len(train), 'train/words': int(lengths.sum()),
             'train/padding_fraction': batching.padding_fraction(lengths, batch_size, width),
             **vocabulary_summary}
  counts = np.bincount(np.concatenate([words.encode(w) for w in word_lists] + [np.zeros(0, int)]),
                       minlength=len(words))
  return base.TaskData(preprocessing, train_batches,
                       {EVAL_SPLIT: _arrays(cfg, preprocessing, dev, cfg.eval_path)},
                       summary=summary, token_counts={'source': counts})


def encode(cfg, preprocessing: base.Preprocessing, sentences) -> base.Batch:
  """Sentences read by `read_file` -> a batch (unseen tags: see `data.unknown_labels`)."""
  return _arrays(cfg, preprocessing, sentences, cfg.get('eval_path', 'the evaluation file'))


def loss(outputs, batch):
  """Mean over words of the cross-entropy, or of the CRF's negative log-likelihood
  (when `outputs` has `log_likelihood`)."""
  mask = base.label_weights(batch)
  count = mask.sum()
  if 'log_likelihood' in outputs:
    total = -jnp.sum(outputs['log_likelihood'] * (batch['lengths'] > 0))
  else:
    losses = optax.softmax_cross_entropy_with_integer_labels(outputs['logits'], batch['labels'])
    total = jnp.sum(losses * mask)
  right = (outputs['predictions'] == batch['labels']) * mask
  real = (batch['lengths'] > 0).astype(jnp.float32)
  sums = {'loss_sum': total, 'token_count': count, 'tags_correct': right.sum(),
          'sentences_correct': jnp.sum(example_correct(outputs, batch) * real),
          'sentence_count': real.sum()}
  return total / jnp.maximum(count, 1), sums


def example_correct(outputs, batch) -> jax.Array:
  """`[B]` bool: every word of the sentence tagged right."""
  wrong = (outputs['predictions'] != batch['labels']) * base.label_weights(batch)
  return wrong.sum(1) == 0


def predictions(outputs, batch) -> jax.Array:
  """`[B, T]` tag ids (the CRF's Viterbi path, or the arg-max of each word)."""
  del batch
  return outputs['predictions']


def model_inputs(batch) -> tuple[tuple, dict]:
  return (batch['inputs'],), {'lengths': batch['lengths'], 'chars': batch['chars'],
                              'char_lengths': batch['char_lengths'], 'tags': batch['labels']}


def reported_metrics(config: dict) -> list[base.ReportedMetric]:
  metrics = []
  for name, spec in config['evals'].items():
    metrics.append(base.ReportedMetric(f'eval/{name}/accuracy', f'{name} accuracy'))
    if spec.get('type') == 'entity_f1':
      metrics.append(base.ReportedMetric(f'eval/{name}/entity_f1', f'{name} entity F1'))
  return metrics


TASK = base.Task(
    name='tagging',
    data_keys=('batch_size', 'bucket_width', 'eval_path', 'format', 'label_column', 'lowercase',
               'max_vocab_size', 'max_word_length', 'min_count', 'token_column', 'train_path',
               'unknown_labels', 'word_dropout', *word_vocabulary.KEYS),
    validate=validate,
    build_data=build_data,
    loss=loss,
    example_correct=example_correct,
    predictions=predictions,
    read_file=read_file,
    encode=encode,
    model_inputs=model_inputs,
    evaluator_types=('metrics', 'classification', 'entity_f1'),
    reported_metrics=reported_metrics,
    time_keys=tagged_batches.TIME_KEYS,
)
