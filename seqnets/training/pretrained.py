"""Pretrained word vectors written into a new run's word embeddings.

Synopsis (what `loop` does):
  settings = model_factory.resolve(config.model)
  check_files(settings)                           # fresh runs: headers only, before the data
  data = build_data(task, config)                 # passes the vectors file to the task when
                                                  # data.vocabulary_from='pretrained'
  params, report = initialise(settings, data.preprocessing, params, data.token_counts)
  summary_items(report)                           # coverage, for the data summary

The keys are init-time keys of `config.model` (declared in `seqnets.models.factory`,
never given to the module), for every model with a word embedding:
  pretrained_embeddings   a vectors file (`seqnets.data.word_vectors`: word2vec text or
                          binary, GloVe, fastText .vec, plain or gzip; a relative name
                          can be a file under the data root); '' for none. Seq2seq
                          models: `source_pretrained_embeddings` and
                          `target_pretrained_embeddings`, each mapped through its own
                          side's vocabulary (name one file twice for a shared one)
  pretrained_lowercase    a word not in the file as written is looked up as its
                          lowercase, then as any file word of the same lowercase
  pretrained_oov          the rows of words not in the file: 'random' (the module's own
                          initialisation) or 'zero'

Every table of the embedding (TextCNN's static and trained channels both) gets, in every
seed, the file's vector in the row of each vocabulary word it has; `<pad>` and `<unk>`
keep the module's initialisation whatever the file holds (padding is masked by every
model, and `<unk>` stands for the rare words of the run's own data). The table's width
must be the file's dimension. This happens once, when a run's parameters are created:
a resumed run takes its checkpoint and never reads the file again; with
`config.init_from` as well, the other run's parameters are transferred on top (words
that run lacks keep their vectors).

Coverage, logged and written into results.json's `data` (and pretrained_embeddings.json):
`<key>/type_coverage`, the share of the vocabulary's words (`<pad>`, `<unk>` aside)
found in the file, and `<key>/token_coverage`, the share of the training tokens whose
id got a vector (tokens read as `<unk>` count as not found), where the task counts them.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import flax
import numpy as np

from seqnets import files
from seqnets.data import word_vectors
from seqnets.data.vocab import PAD, UNK
from seqnets.models import factory as model_factory
from seqnets.tasks import base
from seqnets.training import transfer

REPORT_FILE = 'pretrained_embeddings.json'
RESERVED = (PAD, UNK)


def configured(settings: dict) -> list[tuple[model_factory.WordEmbedding, str]]:
  """`(embedding, file)` for each word embedding of the model that names a vectors file."""
  model = model_factory.MODELS[settings['name']]
  return [(e, settings[e.key]) for e in model.embeddings if settings.get(e.key)]


def _dimension_error(settings: dict, embedding, header: word_vectors.Header) -> ValueError:
  return ValueError(f'model.{embedding.size}={settings[embedding.size]} does not match the '
                    f'{header.dim}-dimensional vectors of {header.path} '
                    f'(model.{embedding.key}); set model.{embedding.size}={header.dim}')


def check_files(settings: dict) -> None:
  """Reads the header of every configured file: ValueError naming the key for a missing or
  unreadable file, or a dimension other than the embedding's width."""
  for embedding, path in configured(settings):
    try:
      header = word_vectors.read_header(path)
    except (OSError, ValueError) as e:
      raise ValueError(f'model.{embedding.key}: {e}') from None
    if header.dim != settings[embedding.size]:
      raise _dimension_error(settings, embedding, header)


def build_data(task: base.Task, config) -> base.TaskData:
  """`task.build_data(config.data)`, given the vectors file (`model.pretrained_embeddings`)
  when `data.vocabulary_from='pretrained'` asks for its words."""
  if config.data.get('vocabulary_from', 'train') != 'pretrained':
    return task.build_data(config.data)
  settings = model_factory.resolve(config.model)
  return task.build_data(config.data, vectors_file=settings.get('pretrained_embeddings'))


def _vocabulary(preprocessing: base.Preprocessing, embedding) -> tuple[str, ...]:
  if embedding.vocabulary == model_factory.TARGET:
    return tuple(preprocessing.target_vocabulary or preprocessing.vocabulary)
  return tuple(preprocessing.vocabulary)


def initialise(settings: dict, preprocessing: base.Preprocessing, params: Any,
               token_counts: dict[str, np.ndarray] | None = None) -> tuple[Any, dict]:
  """`params` (host arrays, a leading seed axis `[S, ...]`) with the configured files'
  vectors in their embeddings' rows, and a report per key: the file, its format and
  dimension, the tables written, the words found and the coverage. ValueError naming the
  key for a file that does not fit (see the module docstring)."""
  chosen = configured(settings)
  lowercase = settings['pretrained_lowercase']
  wanted: dict[str, set[str]] = {}
  for embedding, path in chosen:
    vocabulary = _vocabulary(preprocessing, embedding)
    if len(vocabulary) <= len(RESERVED):
      raise ValueError(f'model.{embedding.key}: this task gives no word vocabulary to map '
                       f'the vectors through')
    wanted.setdefault(path, set()).update(word_vectors.wanted_words(vocabulary, lowercase))
  read = {}
  for path, words in wanted.items():       # each file once, for every embedding naming it
    key = next(e.key for e, p in chosen if p == path)
    try:
      read[path] = word_vectors.read(path, words, fold_case=lowercase)
    except (OSError, ValueError) as e:
      raise ValueError(f'model.{key}: {e}') from None
  flat = {'/'.join(k): v for k, v in flax.traverse_util.flatten_dict(
      flax.serialization.to_state_dict(params)).items()}
  report = {}
  for embedding, path in chosen:
    found = read[path]
    if found.dim != settings[embedding.size]:
      raise _dimension_error(settings, embedding, found.header)
    vocabulary = _vocabulary(preprocessing, embedding)
    rows = word_vectors.lookup(found, vocabulary, lowercase, skip=RESERVED)
    hit = rows >= 0
    oov = ~hit & np.asarray([word not in RESERVED for word in vocabulary])
    tables = [name for name in embedding.params if name in flat]
    if not tables:
      raise ValueError(f'model.{embedding.key}: the model has none of the tables '
                       f'{list(embedding.params)}')
    for name in tables:
      table = np.asarray(flat[name])                           # [S, V, E]
      if table.shape[1:] != (len(vocabulary), found.dim):
        raise ValueError(f'model.{embedding.key}: {name} has shape {table.shape[1:]}, the '
                         f'vocabulary and the file give {(len(vocabulary), found.dim)}')
      table = transfer.copy_rows(table, found.vectors, rows)
      if settings['pretrained_oov'] == 'zero':
        table[:, oov] = 0
      flat[name] = table
    report[embedding.key] = _coverage(path, found, tables, hit, oov, embedding,
                                      (token_counts or {}).get(embedding.vocabulary),
                                      vocabulary, settings['pretrained_oov'])
  restored = flax.traverse_util.unflatten_dict({tuple(k.split('/')): v for k, v in flat.items()})
  return flax.serialization.from_state_dict(params, restored), report


def _coverage(path: str, found: word_vectors.WordVectors, tables: list[str], hit: np.ndarray,
              oov: np.ndarray, embedding, counts: np.ndarray | None,
              vocabulary: tuple[str, ...], oov_rows: str) -> dict:
  words = int(hit.sum() + oov.sum())
  report = {'file': str(path), 'format': found.header.format, 'dim': found.dim,
            'tables': tables, 'vocabulary_words': words, 'found': int(hit.sum()),
            'type_coverage': float(hit.sum() / max(words, 1)), 'oov_rows': oov_rows}
  if counts is not None and len(counts) == len(vocabulary):
    real = np.asarray([word != PAD for word in vocabulary])
    tokens = int(counts[real].sum())
    report.update(training_tokens=tokens,
                  token_coverage=float(counts[hit].sum() / max(tokens, 1)))
  return report


def summary_items(report: dict) -> dict[str, float]:
  """`{'<key>/type_coverage': ..., '<key>/token_coverage': ...}` of an `initialise` report."""
  items = {}
  for key, entry in report.items():
    for name in ('type_coverage', 'token_coverage'):
      if name in entry:
        items[f'{key}/{name}'] = entry[name]
  return items


def save_report(workdir: pathlib.Path, report: dict) -> None:
  files.write_atomically(workdir / REPORT_FILE, json.dumps(report, indent=1) + '\n')


def load_report(workdir: pathlib.Path) -> dict:
  """The report a run wrote when its parameters were created ({} when none)."""
  try:
    return json.loads((workdir / REPORT_FILE).read_text())
  except (OSError, ValueError):
    return {}
