"""Process-level settings for the entry points (never done by the library on import)."""

import ctypes
import ctypes.util
import os

from absl import logging

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def configure() -> None:
  """Quiets library INFO logs (orbax logs every save) and tunes malloc."""
  logging.set_verbosity(logging.WARNING)
  _keep_freed_memory()


def _keep_freed_memory() -> None:
  """Keeps freed memory in glibc malloc instead of returning it to the OS.

  Same effect as MALLOC_MMAP_THRESHOLD_=32 MiB / MALLOC_TRIM_THRESHOLD_=4 GiB:
  XLA's per-step temporaries are then reused instead of being mmap'ed and
  page-faulted on every step (benchmarks/README.md measures the difference).
  Skipped when the user set either variable, or off glibc.
  """
  if 'MALLOC_MMAP_THRESHOLD_' in os.environ or 'MALLOC_TRIM_THRESHOLD_' in os.environ:
    return
  name = ctypes.util.find_library('c')
  if not name:
    return
  try:
    libc = ctypes.CDLL(name)
    libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
  except (OSError, AttributeError):
    pass
