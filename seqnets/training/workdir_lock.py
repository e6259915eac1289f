"""One run per workdir: an exclusive `flock` on `workdir/.lock`.

Synopsis:
  with WorkdirLock(workdir):          # WorkdirBusyError at once if another process holds it
    train_and_evaluate(config, workdir)

  lock = WorkdirLock(workdir); lock.acquire(); ...; lock.release()

The kernel releases a `flock` when its holder dies (even by SIGKILL), so a lock
file left behind never blocks a later run; the file itself is never removed
(removing it would race with other takers). flock is unreliable on some network
filesystems (older NFS, some FUSE mounts): there two hosts may both get the lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import pathlib
import socket


class WorkdirBusyError(RuntimeError):
  """Another holder has the workdir lock.

  `holder` is `{'pid': int, 'host': str}` as read from the lock file, or None
  when unknown (the holder has not written it yet).
  """

  def __init__(self, message: str, holder: dict | None):
    super().__init__(message)
    self.holder = holder


class WorkdirLock:
  """Exclusive, non-blocking lock of `workdir` for this process (context manager or acquire/release).

  While held, `workdir/.lock` holds `{"pid": ..., "host": ...}` of the holder.
  The lock belongs to the open file: a second `WorkdirLock` of the same
  workdir fails even in the same process, and a child made by `fork` (without
  exec) keeps the lock alive as long as it lives.
  """

  FILENAME = '.lock'

  def __init__(self, workdir: str | pathlib.Path):
    self.workdir = pathlib.Path(workdir)
    self.path = self.workdir / self.FILENAME
    self._fd: int | None = None

  @property
  def held(self) -> bool:
    return self._fd is not None

  def acquire(self) -> None:
    """Takes the lock (creating `workdir` if needed) or raises WorkdirBusyError at once."""
    if self._fd is not None:
      raise RuntimeError(f'{self.path} is already held by this WorkdirLock')
    self.workdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
      holder = _read_holder(fd)
      os.close(fd)
      if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise
      who = f'pid {holder["pid"]} on host {holder["host"]}' if holder else 'an unknown process'
      raise WorkdirBusyError(
          f'workdir {self.workdir} is in use by {who} (lock file {self.path}); '
          f'stop that run or choose another workdir', holder) from None
    try:
      os.ftruncate(fd, 0)
      os.pwrite(fd, (json.dumps({'pid': os.getpid(), 'host': socket.gethostname()}) + '\n').encode(), 0)
    except BaseException:
      os.close(fd)  # Also releases the lock.
      raise
    self._fd = fd

  def release(self) -> None:
    """Releases the lock (no-op when not held); the lock file stays, emptied."""
    if self._fd is None:
      return
    fd, self._fd = self._fd, None
    try:
      os.ftruncate(fd, 0)  # While still locked: a later reader never sees a stale holder.
    finally:
      os.close(fd)  # Releases the flock.

  def __enter__(self) -> WorkdirLock:
    self.acquire()
    return self

  def __exit__(self, *exc_info) -> None:
    self.release()


def _read_holder(fd: int) -> dict | None:
  """`{'pid': int, 'host': str}` from the lock file, or None while it is empty or unreadable."""
  try:
    holder = json.loads(os.pread(fd, 4096, 0).decode())
    return {'pid': int(holder['pid']), 'host': str(holder['host'])}
  except (OSError, ValueError, KeyError, TypeError):
    return None
