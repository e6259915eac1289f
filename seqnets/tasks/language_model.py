"""Language modelling: predict every next token of a text, character- or word-level.

`config.data`:
  source         'file': `path` (UTF-8 text); the first `1 − validation_fraction` of its
                 characters train, the rest validate (nanoGPT's split), or `eval_path`
                 names a validation file of its own;
                 'tfds': `tfds_name` ('tiny_shakespeare'), `train_split`, `eval_split`,
                 `data_dir` (online; the examples' 'text' joined in order)
  file_format    'text' (default) | 'conll' | 'conllu' | 'tsv': the sentences of tagging or
                 classification files, one per line (so a language model can learn the
                 text of a task before the task, `config.init_from`)
  level          'char' | 'word' (the words of each line, `</s>` ending each line)
  word_split     'punctuation' (words and punctuation marks, as the classification
                 tasks split text) | 'whitespace' (tokens as written, as taggers read them)
  lowercase, min_count, max_vocab_size (0: all)   the vocabulary, built from the training
                 text (`<pad>`, `<unk>`, `<s>`, `</s>` first) and saved with the run
  batch_size     parallel streams (truncated BPTT) or windows (full BPTT) per step
  bptt           k₂: the window, the steps a gradient goes back
  update_steps   k₁: tokens between updates (0: = bptt); see `lm_text`
  carry_state    True: truncated BPTT, the state carried from window to window;
                 False: full BPTT over independent windows of `bptt` tokens from a zero state
  eval_length, eval_context   evaluation rows (`lm_text.evaluation_rows`)
  document_separator  '': the text is one stream; otherwise the string that ends a
                 document (e.g. '\n\n\n'; a TFDS example is a document too). Each
                 document starts with `<s>` and a zero state, no window holds two
                 documents and none is evaluated with another's context
                 (`lm_documents`); needs update_steps = bptt

Evaluation split 'validation'. Evaluator type 'language_model' reports
`nats_per_token` (= `loss`), `perplexity`, `token_accuracy` and, for characters,
`bits_per_char`. An evaluation file is a text file read like the training one.
"""

from __future__ import annotations

import itertools
import pathlib

import jax.numpy as jnp
import numpy as np
import optax

from seqnets.data import lm_documents
from seqnets.data import lm_text
from seqnets.data import text_file
from seqnets.data.vocab import Vocabulary
from seqnets.tasks import base
from seqnets.tasks import fields

SOURCES = ('file', 'tfds')
FILE_FORMATS = ('text', 'conll', 'conllu', 'tsv')


def validate(cfg) -> None:
  source = fields.one_of(cfg, 'source', SOURCES)
  fields.one_of(cfg, 'level', lm_text.LEVELS)
  fields.one_of(cfg, 'word_split', lm_text.WORD_SPLITS, 'punctuation')
  fields.one_of(cfg, 'file_format', FILE_FORMATS, 'text')
  if source == 'file':
    fields.non_empty_string(cfg, 'path', 'a UTF-8 text file')
    if not cfg.get('eval_path'):
      fraction = cfg.get('validation_fraction')
      if (not isinstance(fraction, (int, float)) or isinstance(fraction, bool)
          or not 0 < fraction < 1):
        raise ValueError(f'data.validation_fraction must be in (0, 1) (or set data.eval_path), '
                         f'got {fraction!r}')
  else:
    fields.non_empty_string(cfg, 'tfds_name', 'a TFDS text dataset, e.g. "tiny_shakespeare"')
  for field in ('batch_size', 'bptt', 'min_count', 'eval_length'):
    fields.positive_int(cfg, field)
  fields.non_negative_int(cfg, 'update_steps')
  fields.non_negative_int(cfg, 'max_vocab_size')
  fields.non_negative_int(cfg, 'eval_context')
  for field in ('carry_state', 'lowercase'):
    if not isinstance(cfg.get(field, False), bool):
      raise ValueError(f'data.{field} must be True or False, got {cfg.get(field)!r}')
  if _update_steps(cfg) > cfg.bptt:
    raise ValueError(f'data.update_steps={cfg.update_steps} must be <= data.bptt={cfg.bptt}')
  separator = cfg.get('document_separator', '')
  if not isinstance(separator, str):
    raise ValueError(f'data.document_separator must be a string (\'\': no documents), '
                     f'got {separator!r}')
  if separator and _update_steps(cfg) != cfg.bptt:
    raise ValueError(f'data.update_steps={cfg.update_steps} must be 0 or data.bptt={cfg.bptt} '
                     f'with data.document_separator set: windows end at document boundaries')


def _update_steps(cfg) -> int:
  return cfg.get('update_steps') or cfg.bptt


def read_text(cfg, path: str | pathlib.Path) -> str:
  """The text of `path` in `data.file_format`: 'text' as it is; the sentences of a
  'conll' / 'conllu' file (tagging data) or the sentences of a 'tsv' classification
  file (`sentence<TAB>label`, a header line), one per line, tokens joined by spaces."""
  file_format = cfg.get('file_format', 'text')
  if file_format == 'text':
    return text_file.read_text(path)
  if file_format == 'tsv':
    from seqnets.data import text_classification
    return ''.join(text + '\n' for text, _ in text_classification.read_examples(path, 'tsv'))
  from seqnets.data import conll
  sentences = conll.read_conllu(path) if file_format == 'conllu' else conll.read_conll(path)
  return ''.join(' '.join(sentence.tokens) + '\n' for sentence in sentences)


def read_texts(cfg) -> tuple[str, str]:
  """(training text, validation text) as the config names them (a TFDS split's
  examples joined by `document_separator`)."""
  if cfg.source == 'file':
    text = read_text(cfg, cfg.path)
    if cfg.get('eval_path'):
      return text, read_text(cfg, cfg.eval_path)
    cut = int(len(text) * (1 - cfg.validation_fraction))
    return text[:cut], text[cut:]
  from seqnets.data import tfds_loaders
  joiner = cfg.get('document_separator', '')
  load = lambda split: joiner.join(tfds_loaders.load_documents(cfg.tfds_name, split,
                                                               cfg.get('data_dir')))
  return load(cfg.get('train_split', 'train')), load(cfg.get('eval_split', 'validation'))


def _tokenize(cfg, text: str) -> list[str]:
  return lm_text.tokenize(text, cfg.level, cfg.get('lowercase', False),
                          cfg.get('word_split', 'punctuation'))


def _documents(cfg, vocab: Vocabulary, text: str) -> list[np.ndarray]:
  return [lm_documents.encode_document(vocab, _tokenize(cfg, document))
          for document in lm_documents.split_documents(text, cfg.get('document_separator', ''))]


def _eval_rows(cfg, vocab: Vocabulary, text: str) -> base.Batch:
  length, context = cfg.eval_length, cfg.get('eval_context', 0)
  if cfg.get('document_separator'):
    return lm_documents.document_rows(_documents(cfg, vocab, text), length, context)
  return lm_text.evaluation_rows(vocab.encode(_tokenize(cfg, text)), length, context)


def build_data(cfg) -> base.TaskData:
  train_text, eval_text = read_texts(cfg)
  train_tokens = _tokenize(cfg, train_text)
  vocab = lm_text.build_vocabulary([train_tokens], cfg.get('min_count', 1),
                                   cfg.get('max_vocab_size') or None)
  k1, k2, batch_size = _update_steps(cfg), cfg.bptt, cfg.batch_size
  where = cfg.path if cfg.source == 'file' else f'TFDS {cfg.tfds_name}'
  carry = cfg.get('carry_state', True)
  info = base.DataInfo(vocab_size=len(vocab), num_outputs=len(vocab), pad_id=vocab.pad_id,
                       unit=cfg.level, carry_steps=k1 if carry and k1 < k2 else 0)
  eval_sets = {'validation': _eval_rows(cfg, vocab, eval_text)}
  preprocessing = base.Preprocessing(info, vocab.tokens)
  train_ids = vocab.encode(train_tokens)
  counts = {'source': np.bincount(train_ids, minlength=len(vocab)).astype(np.int64)}
  if cfg.get('document_separator'):
    streams = lm_documents.DocumentStreams(_documents(cfg, vocab, train_text), batch_size, k2,
                                           f'the training text of {where}')
    def document_batches(seed: int, start: int):
      for step in itertools.count(start):
        batch = streams.batch(step)
        if not carry:                              # full BPTT: every window from a zero state
          batch.pop('reset')
        yield batch
    return base.TaskData(preprocessing, document_batches, eval_sets, token_counts=counts)

  if carry:
    lm_text.check_stream_size(len(train_ids), batch_size, k1, k2, f'the training text of {where}')
  elif len(train_ids) < k2 + 1:
    raise ValueError(f'the training text of {where} has {len(train_ids)} tokens, fewer than '
                     f'data.bptt + 1 = {k2 + 1}')

  def train_batches(seed: int, start: int):
    for step in itertools.count(start):
      yield (lm_text.stream_batch(train_ids, batch_size, k1, k2, step) if carry
             else random_windows(train_ids, batch_size, k2, seed, step))

  return base.TaskData(preprocessing, train_batches, eval_sets, token_counts=counts)


def random_windows(ids: np.ndarray, batch_size: int, length: int, seed: int,
                   step: int) -> base.Batch:
  """Full BPTT: `batch_size` windows of `length` tokens at random places, from
  `default_rng([seed, step])`; every token scored."""
  starts = np.random.default_rng([seed, step]).integers(0, len(ids) - length, batch_size)
  positions = starts[:, None] + np.arange(length)
  return {'inputs': ids[positions].astype(np.int32), 'targets': ids[positions + 1].astype(np.int32),
          'weights': np.ones((batch_size, length), np.float32),
          'lengths': np.full(batch_size, length, np.int32)}


def model_inputs(batch: base.Batch) -> tuple[tuple, dict]:
  """`(inputs, lengths=)`, plus `reset=` when the batch carries state across windows."""
  kwargs = {'lengths': batch['lengths']}
  if 'reset' in batch:
    kwargs['reset'] = batch['reset']
  return (batch['inputs'],), kwargs


def loss(logits, batch):
  """Mean cross-entropy (nats) over the scored tokens. `logits: [B, T, V]`,
  targets and weights `[B, T]`."""
  weights = batch['weights']
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch['targets'])   # [B, T]
  count = weights.sum()
  sums = {'loss_sum': jnp.sum(losses * weights), 'token_count': count,
          'tokens_correct': jnp.sum((jnp.argmax(logits, -1) == batch['targets']) * weights)}
  return sums['loss_sum'] / jnp.maximum(count, 1), sums


def example_correct(logits, batch):
  """`[B]`: every scored token of the row predicted (arg-max) right."""
  wrong = (jnp.argmax(logits, -1) != batch['targets']) & (batch['weights'] > 0)
  return ~jnp.any(wrong, axis=-1)


def read_file(cfg, path: str | pathlib.Path) -> str:
  return read_text(cfg, path)


def encode(cfg, preprocessing: base.Preprocessing, text: str) -> base.Batch:
  """A text -> evaluation rows, tokenised with the run's vocabulary (unknown tokens `<unk>`)."""
  vocab = Vocabulary(tuple(preprocessing.vocabulary))
  return _eval_rows(cfg, vocab, text)


def reported_metrics(config: dict) -> list[base.ReportedMetric]:
  metrics = []
  for name in config['evals']:
    metrics.append(base.ReportedMetric(f'eval/{name}/nats_per_token', f'{name} nats/token',
                                       higher_is_better=False))
    metrics.append(base.ReportedMetric(f'eval/{name}/perplexity', f'{name} perplexity',
                                       higher_is_better=False))
  return metrics


TASK = base.Task(
    name='language_model',
    data_keys=('batch_size', 'bptt', 'carry_state', 'data_dir', 'document_separator',
               'eval_context', 'eval_length', 'eval_path', 'eval_split', 'file_format', 'level',
               'lowercase', 'max_vocab_size', 'min_count', 'path', 'source', 'tfds_name',
               'train_split', 'update_steps', 'validation_fraction', 'word_split'),
    validate=validate,
    build_data=build_data,
    loss=loss,
    example_correct=example_correct,
    read_file=read_file,
    encode=encode,
    evaluator_types=('language_model', 'metrics'),
    reported_metrics=reported_metrics,
    model_inputs=model_inputs,
    time_keys=('inputs', 'targets', 'weights'),
)
