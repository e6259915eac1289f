"""Sentence classification from a local TSV/CSV file of (text, label) rows.

Reads GLUE-style files (`sentence<TAB>label` with a header line, as in SST-2)
and headerless `label<SPACE>sentence` files (Kim's `stsa.binary.*`), in UTF-8.
Every malformed row raises an error naming the file and line.

Synopsis:
  train = read_examples('train.tsv')                 # [(text, label), ...]
  dev = read_examples_with_lines('dev.tsv')          # [(text, label, line), ...]
  check_labels_known('dev.tsv', dev, {l for _, l in train}, 'train.tsv')
  vocab = Vocabulary.build(tokenize(t) for t, _ in train)
  batch = make_batch([tokenize(t) for t, _ in train[:32]], [l for _, l in train[:32]], vocab)
"""

from __future__ import annotations

import codecs
import csv
import io
import pathlib
from collections.abc import Container, Iterator, Sequence

import numpy as np

from seqnets.data import text_file
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


def _csv_records(path: pathlib.Path, text: str, kind: str) -> Iterator[tuple[int, list[str]]]:
  """`(line where the record starts, fields)` for each record, blank lines included as `[]`."""
  reader = csv.reader(io.StringIO(text, newline=''), delimiter='\t' if kind == 'tsv' else ',',
                      quoting=csv.QUOTE_NONE if kind == 'tsv' else csv.QUOTE_MINIMAL)
  while True:
    start = reader.line_num + 1     # line_num is the record's last line (quoted newlines)
    try:
      row = next(reader)
    except StopIteration:
      return
    except csv.Error as e:
      raise ValueError(f'{path}:{start}: {e}') from None
    yield start, row


def read_examples_with_lines(path: str | pathlib.Path, file_format: str | None = None,
                             text_column: str = 'sentence',
                             label_column: str = 'label') -> list[tuple[str, int, int]]:
  """Reads `(text, label, line)` triples; `line` is where the record starts (1-based).

  Labels are integers ≥ 0. `tsv`/`csv` (chosen by suffix unless
  `file_format` is given) need a header naming `text_column` and
  `label_column`; otherwise each line is `<label> <text>`. The file must be
  UTF-8 (a leading byte-order mark is skipped). Raises ValueError naming the
  file (and `file:line` where there is one) for a file that is not UTF-8, an
  empty file or one without examples, an over-long field, a row with the
  wrong number of fields, a non-integer label or an empty text.
  """
  path = pathlib.Path(path)
  kind = _format_of(path, file_format)
  text = text_file.read_text(path)
  if not text.strip():
    raise ValueError(f'{path}: empty file')
  examples = []
  if kind == 'label_space_text':
    for line, row in enumerate(io.StringIO(text, newline=''), 1):
      if not row.strip():
        continue
      label, _, sentence = row.strip().partition(' ')
      if not sentence.strip():
        raise ValueError(f'{path}:{line}: expected "<label> <text>", got {row.strip()!r}')
      examples.append((sentence.strip(), _label(label, path, line), line))
  else:
    records = _csv_records(path, text, kind)
    header_line, header = next(records)
    header = [h.strip() for h in header]
    for name in (text_column, label_column):
      if name not in header:
        raise ValueError(f'{path}:{header_line}: header {header} has no column {name!r}')
    text_at, label_at = header.index(text_column), header.index(label_column)
    for line, row in records:
      if not row:
        continue
      if len(row) != len(header):
        raise ValueError(f'{path}:{line}: {len(row)} fields, the header has {len(header)}')
      sentence = row[text_at].strip()
      if not sentence:
        raise ValueError(f'{path}:{line}: empty text')
      examples.append((sentence, _label(row[label_at], path, line), line))
  if not examples:
    raise ValueError(f'{path}: no examples')
  return examples


def read_examples(path: str | pathlib.Path, file_format: str | None = None,
                  text_column: str = 'sentence', label_column: str = 'label') -> list[tuple[str, int]]:
  """Reads `(text, label)` pairs: `read_examples_with_lines` without the line numbers."""
  return [(text, label) for text, label, _ in read_examples_with_lines(
      path, file_format, text_column, label_column)]


def check_labels_known(eval_path: str | pathlib.Path, eval_examples: Sequence[tuple[str, int, int]],
                       train_labels: Container[int], train_path: str | pathlib.Path) -> None:
  """Checks that every evaluation label occurs in the training data.

  `eval_examples` are `(text, label, line)` triples from
  `read_examples_with_lines(eval_path)`; `train_labels` (e.g. a set) the labels
  read from `train_path`. Raises ValueError naming `eval_path:line` of the first
  example whose label is not in `train_labels`.
  """
  for _, label, line in eval_examples:
    if label not in train_labels:
      raise ValueError(f'{eval_path}:{line}: label {label} never appears in the training data '
                       f'({train_path})')


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
