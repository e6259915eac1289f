"""Sentence classification from a local TSV/CSV file of (text, label) rows.

Reads GLUE-style files (`sentence<TAB>label` with a header line, as in SST-2)
and headerless `label<SPACE>sentence` files (Kim's `stsa.binary.*`). Every
malformed row raises an error naming the file and line.

Synopsis:
  train = read_examples('train.tsv')                 # [(text, label), ...]
  vocab = Vocabulary.build(tokenize(t) for t, _ in train)
  batch = make_batch([tokenize(t) for t, _ in train[:32]], [l for _, l in train[:32]], vocab)
"""

from __future__ import annotations

import csv
import pathlib
from typing import Sequence

import numpy as np

from seqnets.data.vocab import Vocabulary

FORMATS = ('tsv', 'csv', 'label_space_text')


def _format_of(path: pathlib.Path, file_format: str | None) -> str:
  if file_format is None:
    file_format = {'.tsv': 'tsv', '.csv': 'csv'}.get(path.suffix, 'label_space_text')
  if file_format not in FORMATS:
    raise ValueError(f'file_format={file_format!r}; valid: {FORMATS}')
  return file_format


def _label(value: str, path, line: int) -> int:
  try:
    label = int(value.strip())
  except ValueError:
    raise ValueError(f'{path}:{line}: label {value.strip()!r} is not an integer') from None
  if label < 0:
    raise ValueError(f'{path}:{line}: label {label} is negative')
  return label


def read_examples(path: str | pathlib.Path, file_format: str | None = None,
                  text_column: str = 'sentence', label_column: str = 'label') -> list[tuple[str, int]]:
  """Reads `(text, label)` pairs; labels are integers ≥ 0.

  `tsv`/`csv` (chosen by suffix unless `file_format` is given) need a header
  naming `text_column` and `label_column`; otherwise each line is
  `<label> <text>`. Raises ValueError naming `file:line` for a row with the
  wrong number of fields, a non-integer label or an empty text.
  """
  path = pathlib.Path(path)
  kind = _format_of(path, file_format)
  examples = []
  with path.open(encoding='utf-8', newline='') as f:
    if kind == 'label_space_text':
      for line, row in enumerate(f, 1):
        if not row.strip():
          continue
        label, _, text = row.strip().partition(' ')
        if not text.strip():
          raise ValueError(f'{path}:{line}: expected "<label> <text>", got {row.strip()!r}')
        examples.append((text.strip(), _label(label, path, line)))
      return examples
    reader = csv.reader(f, delimiter='\t' if kind == 'tsv' else ',', quoting=(
        csv.QUOTE_NONE if kind == 'tsv' else csv.QUOTE_MINIMAL))
    header = next(reader, None)
    if header is None:
      raise ValueError(f'{path}: empty file')
    header = [h.strip() for h in header]
    for name in (text_column, label_column):
      if name not in header:
        raise ValueError(f'{path}:1: header {header} has no column {name!r}')
    text_at, label_at = header.index(text_column), header.index(label_column)
    for line, row in enumerate(reader, 2):
      if not row:
        continue
      if len(row) != len(header):
        raise ValueError(f'{path}:{line}: {len(row)} fields, the header has {len(header)}')
      text = row[text_at].strip()
      if not text:
        raise ValueError(f'{path}:{line}: empty text')
      examples.append((text, _label(row[label_at], path, line)))
  if not examples:
    raise ValueError(f'{path}: no examples')
  return examples


def make_batch(token_lists: Sequence[Sequence[str]], labels: Sequence[int], vocab: Vocabulary,
               pad_to: int) -> dict[str, np.ndarray]:
  """`{'inputs': [B, pad_to] int32, 'lengths': [B] int32, 'labels': [B] int32}`.

  Ids past each sentence are `vocab.pad_id`; sentences longer than `pad_to` are cut.
  """
  inputs = np.full((len(token_lists), pad_to), vocab.pad_id, np.int32)
  lengths = np.zeros(len(token_lists), np.int32)
  for row, tokens in enumerate(token_lists):
    ids = vocab.encode(tokens)[:pad_to]
    inputs[row, :len(ids)] = ids
    lengths[row] = len(ids)
  return {'inputs': inputs, 'lengths': lengths, 'labels': np.asarray(labels, np.int32)}
