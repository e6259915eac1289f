"""Atomic file writes: a reader sees a file's old content or its new content, never part of it."""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import stat


def write_atomically(path: str | pathlib.Path, data: str | bytes, encoding: str = 'utf-8') -> None:
  """Replaces `path` by `data` (text is encoded with `encoding`).

  Writes a temporary file beside `path`, flushes and fsyncs it, then renames
  it over `path` (`os.replace`): a kill mid-write leaves the old file whole.
  A file already at `path` keeps its permission bits; on an error the
  temporary file is removed and the error raised.
  """
  path = pathlib.Path(path)
  if isinstance(data, str):
    data = data.encode(encoding)
  tmp = path.with_name(f'.{path.name}.{secrets.token_hex(4)}.tmp')
  try:
    with open(tmp, 'xb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    with contextlib.suppress(FileNotFoundError):
      os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.unlink(tmp)
    raise
  with contextlib.suppress(OSError):  # Makes the rename durable; not possible everywhere.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
      os.fsync(dir_fd)
    finally:
      os.close(dir_fd)
