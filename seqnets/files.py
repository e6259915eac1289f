"""Atomic file writes (a reader sees a file's old content or its new content, never part
of it), and named arrays read from an .npz file with errors that name the file."""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import stat

import numpy as np


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


def read_npz(path: str | pathlib.Path, shapes: dict[str, str]) -> dict:
  """The arrays named by `shapes`' keys from the .npz file `path`; `shapes` describes each
  (e.g. `{'inputs': '[N, T, 2]', 'targets': '[N]'}`) for the error a missing one raises.
  ValueError naming `path` when it is no readable .npz file or lacks one of the arrays."""
  try:
    with np.load(path) as saved:
      arrays = {key: saved[key] for key in shapes if key in saved}
  except (OSError, ValueError) as e:
    raise ValueError(f'{path}: not a readable .npz file ({e})') from None
  for key in shapes:
    if key not in arrays:
      expected = ', '.join(f'{name} {shape}' for name, shape in shapes.items())
      raise ValueError(f'{path}: has no array {key!r} (expected {expected})')
  return arrays
