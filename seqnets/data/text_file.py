"""Reading UTF-8 text files with errors that name the file, line and byte offset.

A UTF-8 byte-order mark is accepted and dropped; invalid UTF-8 (and UTF-16,
which is recognised by its byte-order mark or NUL bytes) is refused with the
byte offset of the first bad byte. A gzip file (recognised by its magic bytes,
whatever its name) is read decompressed; offsets then count decompressed bytes.

A relative name is a file under the data root (`seqnets.data.paths.resolve`: e.g.
`sst2/train.tsv` under `$SEQNETS_DATA_DIR`) unless it starts with `./` or `../` or
exists relative to the working directory. Every task reads its data files through
`read_text`, so this is where the configs' data names are resolved.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
import pathlib
from typing import Iterator

from seqnets.data import paths


def read_text(path: str | pathlib.Path) -> str:
  """The whole file decoded as UTF-8, without a leading byte-order mark.

  `path` is resolved by `paths.resolve` (a relative name can be a file under
  the data root). Raises FileNotFoundError naming a missing file (under the
  data root: with the root, the variable that sets it and the dataset's
  source), and ValueError naming the file and the byte offset for a UTF-16
  file (a UTF-16 byte-order mark or a NUL byte) and for invalid UTF-8 (with
  its line too).
  """
  path = paths.resolve(path)
  if not path.is_file():
    raise FileNotFoundError(f'{path}: no such file' if path.exists() else
                            paths.written_path_missing_message(path))
  data = path.read_bytes()
  where = ''
  if data.startswith(b'\x1f\x8b'):
    try:
      data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
      raise ValueError(f'{path}: a damaged gzip file ({e})') from None
    where = ' of the decompressed text'
  if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
    raise ValueError(f'{path}: looks like UTF-16 (byte-order mark at byte 0); convert it to UTF-8')
  nul = data.find(b'\0')
  if nul >= 0:
    raise ValueError(f'{path}: looks like UTF-16 (NUL byte at byte {nul}); convert it to UTF-8')
  try:
    # Not 'utf-8-sig': its error offsets would not count the byte-order mark.
    text = data.decode('utf-8')
  except UnicodeDecodeError as e:
    before = data[:e.start].decode('utf-8')
    line = len(io.StringIO(before + '.', newline='').readlines())
    raise ValueError(f'{path}:{line}: invalid UTF-8 at byte {e.start}{where}') from None
  return text.removeprefix('\ufeff')


def read_lines(path: str | pathlib.Path) -> Iterator[tuple[int, str]]:
  """`(line number, text)` of every non-blank line (line numbers start at 1)."""
  for number, line in enumerate(read_text(path).splitlines(), 1):
    if line.strip():
      yield number, line
