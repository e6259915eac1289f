"""Pretrained word vectors (word2vec, GloVe, fastText) read as a stream.

Synopsis:
  header = read_header('glove/glove.6B.300d.txt')           # Header(format='glove', dim=300, ...)
  found = read('vectors.bin.gz', wanted={'movie', 'film'})  # WordVectors: words, vectors [N, dim]
  rows = lookup(found, vocabulary, lowercase=True)          # [V] row of each word in found, or -1
  for word in read_words('vectors.txt', max_words=50_000): ...   # the first words, in file order

Formats (`format=`; 'auto', the default, tells them apart):
  'word2vec'  text: a header line `count dim`, then `word v_1 … v_dim` per line
              (fastText's `.vec` files are this format)
  'glove'     text without a header: `word v_1 … v_dim` per line; the dimension is the
              first line's (its word must hold no space). Later words may hold spaces
              (glove.840B has a few): the last `dim` fields are the numbers (and a
              line whose word would end in a number has too many numbers)
  'binary'    word2vec binary: the header line `count dim`, then per word `word<space>`
              and `dim` float32 numbers, little-endian, each record optionally followed
              by a newline
  'auto'      a first line of two integers is a header; then the format is 'word2vec'
              when the next line reads as a text record of `dim` numbers, else 'binary';
              any other first line is 'glove' (so a GloVe file of one dimension whose
              first word is an integer needs `format='glove'`)
Any of them may be gzip-compressed (recognised by its magic bytes, whatever the name).
Words and text lines are UTF-8; fields are separated by single spaces (other whitespace,
e.g. U+00A0, belongs to the word); trailing spaces and `\\r` are ignored.

The file is never held in memory: it is read line by line (record by record), and only
the rows of the words asked for are kept (`wanted`; all of them up to `max_words` when
none is given). When a word occurs twice, its first row wins and the later ones are
skipped. Every line's field count is checked; the numbers are parsed only on the rows
kept. A file whose header's count disagrees with the records read to its end is an
error (a truncated download); reading stops early at `max_words` without that check.

Errors are ValueError naming the file and line (`vectors.txt:17: expected 300 numbers,
got 299`; the record number in a binary file): an empty file, a bad header, a wrong
number of fields, a number that does not parse, a record cut short, invalid UTF-8, a
damaged gzip stream. A missing file is FileNotFoundError (`seqnets.data.paths.resolve`:
a relative name can be a file under the data root).

Hand-written, not gensim's `KeyedVectors.load_word2vec_format`: gensim is not a
dependency of seqnets, and that loader holds every vector of the file in memory,
where a run needs the rows of its vocabulary only.
"""

from __future__ import annotations

import dataclasses
import gzip
import pathlib
import zlib
from typing import BinaryIO, Collection, Iterator, Sequence

import numpy as np

from seqnets.data import paths

FORMATS = ('auto', 'word2vec', 'glove', 'binary')
_GZIP_MAGIC = b'\x1f\x8b'
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Header:
  """What the start of a file says: its format, dimension and word count (None: GloVe)."""
  path: str
  format: str
  dim: int
  count: int | None


@dataclasses.dataclass(frozen=True)
class WordVectors:
  """The kept rows of a file: `words[i]`'s vector is `vectors[i]` (`[len(words), dim]`
  float32), in file order."""
  header: Header
  words: tuple[str, ...]
  vectors: np.ndarray
  records: int              # records read (skipped ones and duplicates included)

  @property
  def dim(self) -> int:
    return self.header.dim


def _open(path: pathlib.Path) -> BinaryIO:
  raw = open(path, 'rb')
  if raw.read(2) == _GZIP_MAGIC:
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw, mode='rb')
  raw.seek(0)
  return raw


def _resolve(path) -> pathlib.Path:
  found = paths.resolve(path)
  if not found.is_file():
    raise FileNotFoundError(f'{found}: no such file' if found.exists() else
                            paths.written_path_missing_message(found))
  return found


class _Stream:
  """Bytes of a (possibly gzip) file, read in chunks: up to a byte, or n bytes."""

  def __init__(self, path: pathlib.Path):
    self.path = path
    self.file = _open(path)
    self.buffer = b''
    self.pos = 0              # next unread byte of buffer
    self.base = 0             # offset of buffer[0] in the (decompressed) file
    self.eof = False

  @property
  def offset(self) -> int:
    """Of the next unread byte in the (decompressed) file."""
    return self.base + self.pos

  def close(self) -> None:
    self.file.close()

  def _fill(self) -> bool:
    if self.eof:
      return False
    try:
      chunk = self.file.read(_CHUNK)
    except (OSError, EOFError, zlib.error) as e:
      raise ValueError(f'{self.path}: a damaged gzip file ({e})') from None
    if not chunk:
      self.eof = True
      return False
    self.base += self.pos
    self.buffer = self.buffer[self.pos:] + chunk
    self.pos = 0
    return True

  def _take(self, end: int) -> bytes:
    out = self.buffer[self.pos:end]
    self.pos = end
    return out

  def until(self, byte: bytes, limit: int | None = None) -> bytes:
    """Bytes up to and including `byte` (or to the end of the file; or the first `limit`
    bytes when `byte` does not come sooner)."""
    start = self.pos
    while True:
      found = self.buffer.find(byte, start)
      if found >= 0 and (limit is None or found < self.pos + limit):
        return self._take(found + 1)
      if limit is not None and len(self.buffer) - self.pos >= limit:
        return self._take(self.pos + limit)
      start = len(self.buffer) - self.pos      # relative: _fill moves the buffer
      if not self._fill():
        return self._take(len(self.buffer))
      start += self.pos

  def peek(self, n: int) -> bytes:
    while len(self.buffer) - self.pos < n and self._fill():
      pass
    return self.buffer[self.pos:self.pos + n]

  def exactly(self, n: int) -> bytes:
    while len(self.buffer) - self.pos < n and self._fill():
      pass
    return self._take(min(self.pos + n, len(self.buffer)))

  def skip(self, byte: bytes) -> None:
    """Drops the `byte`s at the read position."""
    while True:
      if self.pos == len(self.buffer) and not self._fill():
        return
      if self.buffer[self.pos:self.pos + 1] != byte:
        return
      self.pos += 1


def _decode(raw: bytes, where: str) -> str:
  try:
    return raw.decode('utf-8')
  except UnicodeDecodeError as e:
    raise ValueError(f'{where}: invalid UTF-8 at byte {e.start} of the line') from None


def _strip_line(text: str) -> str:
  return text.rstrip('\n').rstrip('\r').rstrip(' ')


def _as_header(fields: list[str]) -> tuple[int, int] | None:
  if len(fields) == 2 and all(f.isascii() and f.isdigit() for f in fields):
    return int(fields[0]), int(fields[1])
  return None


def _numbers(fields: Sequence[str], where: str) -> np.ndarray:
  try:
    return np.asarray(fields, dtype=np.float32)
  except ValueError:
    for position, field in enumerate(fields, 1):
      try:
        float(field)
      except ValueError:
        raise ValueError(f'{where}: number {position} is {field!r}, not a number') from None
    raise


def _is_number(text: str) -> bool:
  try:
    float(text)
  except ValueError:
    return False
  return True


def _split(line: str, dim: int | None, where: str, words_may_hold_spaces: bool) -> list[str]:
  """`[word, v_1, …, v_dim]` of a text record; ValueError for a wrong number of fields."""
  if dim is not None and words_may_hold_spaces:
    fields = line.rsplit(' ', dim)
    if ' ' in fields[0] and _is_number(fields[0].rsplit(' ', 1)[1]):
      fields = line.split(' ')            # more numbers than `dim`, not a word with spaces
      numbers = next((i for i in range(len(fields) - 1, -1, -1) if not _is_number(fields[i])), 0)
      raise ValueError(f'{where}: expected {dim} numbers, got {len(fields) - 1 - numbers}')
  else:
    fields = line.split(' ')
  if not fields[0]:
    raise ValueError(f'{where}: a record starts with a space (empty word)')
  if dim is not None and len(fields) != dim + 1:
    raise ValueError(f'{where}: expected {dim} numbers, got {len(fields) - 1}')
  if len(fields) < 2:
    raise ValueError(f'{where}: expected a word and its numbers, got {line[:60]!r}')
  return fields


def _detect(stream: _Stream, path: pathlib.Path, first_line: str, format: str) -> Header:
  """The header of the file whose first line is `first_line` (the stream after it)."""
  fields = first_line.split(' ')
  header = _as_header(fields)
  if format in ('word2vec', 'binary') and header is None:
    raise ValueError(f"{path}:1: expected the header 'count dim' (two integers) of a "
                     f"{format} file, got {first_line[:60]!r}")
  if format == 'glove' or (format == 'auto' and header is None):
    if len(fields) < 2 or not fields[0]:
      raise ValueError(f"{path}:1: expected a header 'count dim' or a vector line "
                       f"'word v_1 … v_dim', got {first_line[:60]!r}")
    return Header(str(path), 'glove', len(fields) - 1, None)
  count, dim = header
  if dim < 1:
    raise ValueError(f"{path}:1: bad header {first_line!r}: the dimension must be >= 1")
  if format == 'auto':
    format = 'word2vec' if _reads_as_text(stream.peek(64 + 64 * dim), dim) else 'binary'
  return Header(str(path), format, dim, count)


def _reads_as_text(start: bytes, dim: int) -> bool:
  """Whether `start` (the bytes after the header) begins with a text record of `dim` numbers."""
  if not start:
    return True                 # no records at all: either reads the same
  line = start.split(b'\n', 1)[0]
  try:
    fields = _strip_line(line.decode('utf-8')).split(' ')
  except UnicodeDecodeError:
    return False
  if len(fields) != dim + 1:
    return False
  try:
    np.asarray(fields[1:], dtype=np.float32)
  except ValueError:
    return False
  return True


def _records(path, format: str) -> Iterator[tuple[Header, str | None, str, object]]:
  """`(header, word, where, payload)` per record; payload is the number fields (text) or
  the raw bytes (binary). The first item has word None (the header alone)."""
  if format not in FORMATS:
    raise ValueError(f'format={format!r}; valid: {list(FORMATS)}')
  path = _resolve(path)
  stream = _Stream(path)
  try:
    raw = stream.until(b'\n')
    if not raw.strip(b'\r\n '):
      raise ValueError(f'{path}: empty file' if not raw and stream.eof else
                       f'{path}:1: empty first line (expected a header or a vector line)')
    first = _strip_line(_decode(raw, f'{path}:1').removeprefix('\ufeff'))
    header = _detect(stream, path, first, format)
    yield header, None, '', None
    dim = header.dim
    if header.format == 'binary':
      size = 4 * dim
      record = 0
      while True:
        stream.skip(b'\n')
        if not stream.peek(1):
          break
        record += 1
        where = f'{path}: record {record} (byte {stream.offset})'
        raw_word = stream.until(b' ', limit=4096)
        if not raw_word.endswith(b' '):
          raise ValueError(f'{where}: no space after the word within 4096 bytes'
                           if len(raw_word) == 4096 else f'{where}: the file ends inside the word')
        word = _decode(raw_word[:-1], where)
        if not word:
          raise ValueError(f'{where}: empty word')
        data = stream.exactly(size)
        if len(data) < size:
          raise ValueError(f'{where}: cut short: {len(data)} of the {size} bytes of its '
                           f'{dim} numbers')
        yield header, word, where, data
      _check_count(path, header, record)
    else:
      number = 1
      records = 0
      spaced = header.format == 'glove'
      if spaced:                   # the first line was a record
        records += 1
        fields = _split(first, dim, f'{path}:1', True)
        yield header, fields[0], f'{path}:1', fields[1:]
      while True:
        raw = stream.until(b'\n')
        if not raw:
          break
        number += 1
        where = f'{path}:{number}'
        line = _strip_line(_decode(raw, where))
        if not line:
          raise ValueError(f'{where}: empty line')
        fields = _split(line, dim, where, spaced)
        records += 1
        yield header, fields[0], where, fields[1:]
      if not spaced:
        _check_count(path, header, records)
  finally:
    stream.close()


def _check_count(path, header: Header, records: int) -> None:
  if header.count is not None and records != header.count:
    raise ValueError(f'{path}: the header says {header.count} words, the file has {records} '
                     f'(truncated or damaged?)')


def read_header(path, format: str = 'auto') -> Header:
  """The format and dimension of `path` (reading its first lines only)."""
  records = _records(path, format)
  try:
    return next(records)[0]
  finally:
    records.close()


def read(path, wanted: Collection[str] | None = None, *, max_words: int = 0,
         fold_case: bool = False, format: str = 'auto') -> WordVectors:
  """The rows of the words in `wanted` (every word when None), from the first
  `max_words` records of `path` (0: all). `fold_case`: also keep the rows of words whose
  lowercase is in `wanted` (for `lookup(..., lowercase=True)`)."""
  header, words, rows, seen, records = None, [], [], set(), 0
  stream = _records(path, format)
  try:
    for header, word, where, payload in stream:
      if word is None:
        continue
      records += 1
      if word not in seen and (wanted is None or word in wanted
                               or (fold_case and word.lower() in wanted)):
        seen.add(word)
        words.append(word)
        rows.append(_numbers(payload, where) if header.format != 'binary'
                    else np.frombuffer(payload, '<f4'))
      if max_words and records >= max_words:
        break
  finally:
    stream.close()
  vectors = np.stack(rows).astype(np.float32) if rows else np.zeros((0, header.dim), np.float32)
  if not np.isfinite(vectors).all():
    bad = words[int(np.nonzero(~np.isfinite(vectors).all(1))[0][0])]
    raise ValueError(f'{path}: the vector of {bad!r} is not finite')
  return WordVectors(header, tuple(words), vectors, records)


def read_words(path, max_words: int = 0, format: str = 'auto') -> Iterator[str]:
  """The words of the first `max_words` records of `path` (0: all), in file order, each
  once (numbers are not parsed)."""
  seen = set()
  for count, (_, word, _, _) in enumerate(_records(path, format)):
    if word is None:
      continue
    if word not in seen:
      seen.add(word)
      yield word
    if max_words and count >= max_words:
      return


def lookup(vectors: WordVectors, vocabulary: Sequence[str], lowercase: bool = False,
           skip: Collection[str] = ()) -> np.ndarray:
  """`[len(vocabulary)]` int: the row of `vectors` for each vocabulary word, -1 where none
  (and for the words in `skip`). A word is found as written; with `lowercase`, failing
  that, as its lowercase, then as the first word of the file with the same lowercase."""
  exact = {word: row for row, word in enumerate(vectors.words)}
  folded: dict[str, int] = {}
  if lowercase:
    for row, word in enumerate(vectors.words):
      folded.setdefault(word.lower(), row)
  rows = np.full(len(vocabulary), -1, np.int64)
  for index, word in enumerate(vocabulary):
    if word in skip:
      continue
    row = exact.get(word, -1)
    if row < 0 and lowercase:
      row = exact.get(word.lower(), folded.get(word.lower(), -1))
    rows[index] = row
  return rows


def wanted_words(vocabulary: Sequence[str], lowercase: bool) -> set[str]:
  """The words to keep for `lookup(…, vocabulary, lowercase)` (with `fold_case=lowercase`)."""
  return set(vocabulary) | ({w.lower() for w in vocabulary} if lowercase else set())
