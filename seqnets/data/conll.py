"""Readers for token-per-line annotated corpora: CoNLL-U and CoNLL/BIO files.

Synopsis:
  train = read_conllu('en_ewt-ud-train.conllu')                  # UPOS tags
  heads = read_conllu('en_ewt-ud-train.conllu', column='deprel')  # or an index: column=7
  ner = read_conll('emerging.train.conll')                       # token, then the tag
  check_bio(ner, 'emerging.train.conll')                         # O, B-X, I-X only
  counts = label_counts(ner)                                     # Counter({'O': ..., ...})
  s = ner[0]; s.tokens, s.labels, s.line, s.token_lines

CoNLL-U (Universal Dependencies): lines starting with `#` are comments; a
token line has exactly 10 tab-separated columns ID FORM LEMMA UPOS XPOS FEATS
HEAD DEPREL DEPS MISC; a blank line ends a sentence (the last one may lack
it). The words (integer IDs 1, 2, 3, ...) give the tokens (FORM) and labels
(the chosen column); multiword-token ranges (`3-4`) and empty nodes (`8.1`)
are skipped.

CoNLL/BIO (CoNLL-2003, WNUT-17): one token per line, its columns separated
by tabs when the line has a tab, else by runs of spaces; any whitespace-only
line ends a sentence; `-DOCSTART-` lines are skipped (and end a sentence).

Both read UTF-8 files, plain or gzip-compressed (recognised by the magic
bytes, whatever the name), with an optional leading byte-order mark and `\\n`
or `\\r\\n` line endings. Every malformed line raises a ValueError naming
`file:line`; invalid UTF-8 is reported with its line and byte offset.
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
import re
from collections.abc import Iterable, Iterator

from seqnets.data import text_file

CONLLU_COLUMNS = ('id', 'form', 'lemma', 'upos', 'xpos', 'feats', 'head', 'deprel', 'deps',
                  'misc')
DOCSTART = '-DOCSTART-'

_WORD_ID = re.compile(r'[1-9][0-9]*')
_RANGE_ID = re.compile(r'[1-9][0-9]*-[1-9][0-9]*')
_EMPTY_NODE_ID = re.compile(r'(0|[1-9][0-9]*)\.[1-9][0-9]*')
_SPACES = re.compile(r'[ \t\f\v]+')
_BIO = re.compile(r'O|[BI]-.+', re.DOTALL)


@dataclasses.dataclass(frozen=True)
class TaggedSentence:
  """A sentence's tokens and their labels.

  `line` is the 1-based line of the sentence's first token in its file;
  `token_lines` (filled by the readers, may be empty otherwise) the line of
  each token.
  """
  tokens: tuple[str, ...]
  labels: tuple[str, ...]
  line: int
  token_lines: tuple[int, ...] = ()

  def __post_init__(self):
    if len(self.tokens) != len(self.labels):
      raise ValueError(f'{len(self.tokens)} tokens but {len(self.labels)} labels')
    if self.token_lines and len(self.token_lines) != len(self.tokens):
      raise ValueError(f'{len(self.tokens)} tokens but {len(self.token_lines)} token_lines')


def _lines(path: pathlib.Path) -> Iterator[tuple[int, str]]:
  """`(line number, text)` of every line, line endings (`\\n`, `\\r\\n`) removed."""
  text = text_file.read_text(path)
  for number, line in enumerate(text.split('\n'), 1):
    yield number, line.removesuffix('\r')


class _Sentences:
  """Collects `(token, label, line)` triples into TaggedSentences."""

  def __init__(self):
    self.sentences: list[TaggedSentence] = []
    self._words: list[tuple[str, str, int]] = []

  def add(self, token: str, label: str, line: int) -> None:
    self._words.append((token, label, line))

  def end(self) -> None:
    if self._words:
      tokens, labels, lines = zip(*self._words)
      self.sentences.append(TaggedSentence(tokens, labels, lines[0], lines))
      self._words = []

  def result(self, path: pathlib.Path) -> list[TaggedSentence]:
    self.end()
    if not self.sentences:
      raise ValueError(f'{path}: no sentences')
    return self.sentences


def _conllu_column(column: str | int, path: pathlib.Path) -> int:
  if isinstance(column, str):
    if column.lower() not in CONLLU_COLUMNS:
      raise ValueError(f'{path}: unknown CoNLL-U column {column!r}; valid: '
                       f'{list(CONLLU_COLUMNS)} or an index 0..9')
    return CONLLU_COLUMNS.index(column.lower())
  if isinstance(column, bool) or not isinstance(column, int):
    raise ValueError(f'{path}: column={column!r}; give a column name or an int index')
  if not -len(CONLLU_COLUMNS) <= column < len(CONLLU_COLUMNS):
    raise ValueError(f'{path}: column={column} is out of range; CoNLL-U has 10 columns '
                     f'{list(CONLLU_COLUMNS)}')
  return column % len(CONLLU_COLUMNS)


def read_conllu(path: str | pathlib.Path, column: str | int = 'upos') -> list[TaggedSentence]:
  """The sentences of a CoNLL-U file: tokens are FORM, labels the chosen `column`.

  `column` is a column name (case-insensitive, one of `CONLLU_COLUMNS`) or an
  index (0-based; negative counts from the end). `line` is the line of the
  sentence's first word; multiword ranges and empty nodes are skipped. Raises
  FileNotFoundError for a missing file and ValueError naming the file (and
  `file:line`) for an unknown column, invalid UTF-8, a token line without 10
  columns, an ID that is not a word (the next number), range or empty node,
  an empty FORM or label, and a file without sentences.
  """
  path = pathlib.Path(path)
  index = _conllu_column(column, path)
  sentences = _Sentences()
  expected_id = 1
  for number, line in _lines(path):
    if not line.strip():
      sentences.end()
      expected_id = 1
      continue
    if line.startswith('#'):
      continue
    fields = line.split('\t')
    if len(fields) != len(CONLLU_COLUMNS):
      raise ValueError(f'{path}:{number}: {len(fields)} tab-separated columns, expected '
                       f'{len(CONLLU_COLUMNS)} (ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS '
                       f'MISC)')
    word_id = fields[0]
    if _RANGE_ID.fullmatch(word_id) or _EMPTY_NODE_ID.fullmatch(word_id):
      continue
    if not _WORD_ID.fullmatch(word_id):
      raise ValueError(f'{path}:{number}: bad ID {word_id!r}; expected a word number, a range '
                       f'like 3-4 or an empty node like 8.1')
    if int(word_id) != expected_id:
      raise ValueError(f'{path}:{number}: ID {word_id} where {expected_id} was expected (is a '
                       f'blank line missing between sentences?)')
    expected_id += 1
    token, label = fields[1], fields[index]
    if not token:
      raise ValueError(f'{path}:{number}: empty FORM')
    if not label:
      raise ValueError(f'{path}:{number}: empty {CONLLU_COLUMNS[index].upper()}')
    sentences.add(token, label, number)
  return sentences.result(path)


def _fields(line: str) -> list[str]:
  """Tab-separated fields if the line has a tab, else space-separated; ends trimmed."""
  line = line.rstrip(' \t\f\v')
  if '\t' in line:
    return [field.strip(' \f\v') for field in line.split('\t')]
  return _SPACES.split(line.lstrip(' \f\v'))


def read_conll(path: str | pathlib.Path, token_column: int = 0,
               label_column: int = -1) -> list[TaggedSentence]:
  """The sentences of a CoNLL/BIO file: one `token ... label` line per token.

  Columns are split on tabs if the line has one, else on runs of spaces;
  `token_column` and `label_column` are 0-based indices (negative counts
  from the end of each line). Whitespace-only lines end sentences and
  `-DOCSTART-` lines are skipped. Raises FileNotFoundError for a missing file
  and ValueError naming the file (and `file:line`) for invalid UTF-8, a line
  with too few columns, an empty token or label, and a file without sentences.
  """
  path = pathlib.Path(path)
  for name, value in (('token_column', token_column), ('label_column', label_column)):
    if isinstance(value, bool) or not isinstance(value, int):
      raise ValueError(f'{path}: {name}={value!r} must be an int')
  needed = max(c + 1 if c >= 0 else -c for c in (token_column, label_column))
  sentences = _Sentences()
  for number, line in _lines(path):
    if not line.strip():
      sentences.end()
      continue
    fields = _fields(line)
    if fields[0] == DOCSTART:
      sentences.end()
      continue
    if len(fields) < needed or len(fields) < 2:
      raise ValueError(f'{path}:{number}: {len(fields)} column(s), need at least '
                       f'{max(needed, 2)} (token_column={token_column}, '
                       f'label_column={label_column})')
    token, label = fields[token_column], fields[label_column]
    if not token:
      raise ValueError(f'{path}:{number}: empty token (column {token_column})')
    if not label:
      raise ValueError(f'{path}:{number}: empty label (column {label_column})')
    sentences.add(token, label, number)
  return sentences.result(path)


def label_counts(sentences: Iterable[TaggedSentence]) -> collections.Counter:
  """How often each label occurs in `sentences`."""
  counts = collections.Counter()
  for sentence in sentences:
    counts.update(sentence.labels)
  return counts


def check_bio(sentences: Iterable[TaggedSentence], path: str | pathlib.Path) -> None:
  """Checks that every label is `O`, `B-X` or `I-X` with a non-empty type X.

  An `I-X` that does not follow `B-X` or `I-X` is accepted (IOB1 corpora
  have them). Raises ValueError naming `path:line` of the first bad label; the
  line comes from `token_lines`, or, for sentences built without them, is
  `line` plus the token's index (right when no comment lines sit inside the
  sentence).
  """
  for sentence in sentences:
    for i, label in enumerate(sentence.labels):
      if not _BIO.fullmatch(label):
        line = sentence.token_lines[i] if sentence.token_lines else sentence.line + i
        raise ValueError(f'{path}:{line}: label {label!r} is not O, B-<type> or I-<type>')
