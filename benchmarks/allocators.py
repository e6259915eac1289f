"""The malloc settings every contender runs under, applied to the worker's environment."""

from __future__ import annotations

import os

TUNED_MALLOC = {'MALLOC_MMAP_THRESHOLD_': '33554432', 'MALLOC_TRIM_THRESHOLD_': '4294967296'}
# `None` unsets the variable (the Makefile exports the tuned values).
ALLOCATORS = {
    'default': {name: None for name in TUNED_MALLOC},
    'tuned': dict(TUNED_MALLOC),
}


def worker_env(allocator: str) -> dict[str, str]:
  """This process's environment with `allocator`'s malloc settings, for a worker."""
  env = dict(os.environ)
  for key, value in ALLOCATORS[allocator].items():
    if value is None:
      env.pop(key, None)
    else:
      env[key] = value
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  env.setdefault('JAX_PLATFORMS', 'cpu')
  return env
