"""Batches made ready ahead of the step that takes them, by a background thread.

`Prefetcher(batches, place, size)` iterates over `place(b)` for every `b` of `batches`, in
their order. A thread pulls the next batches from `batches` and places them while the
consumer works on the current one, so a slow loader overlaps with the computation; at most
`size` batches are ready or in preparation at any time. `prefetch_to_mesh` places each
batch with `parallel.shard_batch`: the device transfers run in the thread too.

An exception the loader or `place` raises comes out of the `next` call that would have
returned that batch (every batch before it comes out first), as the same object: its type,
message and traceback are the original's. `close()` (or leaving a `with` block) stops the
thread and waits for it; a batch in preparation is finished and dropped, and nothing more
is pulled from `batches`.

Synopsis:
  with prefetch_to_mesh(host_batches, mesh, size=2) as batches:
    for batch in batches:
      state = step(state, batch)
"""

from __future__ import annotations

import collections
import functools
import threading
from typing import Any, Callable, Iterable, Iterator

from jax.sharding import Mesh

from seqnets.training import parallel


class Prefetcher(Iterator):
  """`place(b)` for each `b` of `batches`, prepared up to `size` ahead by a thread."""

  def __init__(self, batches: Iterable, place: Callable[[Any], Any] = lambda b: b,
               size: int = 2):
    if size < 1:
      raise ValueError(f'size={size}; at least one batch is prepared ahead')
    self._source, self._place, self.size = iter(batches), place, size
    self._ready: collections.deque = collections.deque()
    self._error: BaseException | None = None
    self._finished = self._closed = False
    self._condition = threading.Condition()
    self._thread = threading.Thread(target=self._work, name='seqnets-prefetch', daemon=True)
    self._thread.start()

  def _room(self) -> bool:
    """Waits until fewer than `size` batches are ready; False once closed."""
    with self._condition:
      self._condition.wait_for(lambda: self._closed or len(self._ready) < self.size)
      return not self._closed

  def _work(self) -> None:
    try:
      while self._room():
        try:
          batch = next(self._source)
        except StopIteration:
          return
        batch = self._place(batch)
        with self._condition:
          if not self._closed:
            self._ready.append(batch)
            self._condition.notify_all()
    except BaseException as error:  # pylint: disable=broad-except  (raised again by __next__)
      with self._condition:
        self._error = error
    finally:
      with self._condition:
        self._finished = True
        self._condition.notify_all()

  def __next__(self):
    with self._condition:
      self._condition.wait_for(lambda: self._ready or self._finished)
      if self._ready:
        batch = self._ready.popleft()
        self._condition.notify_all()
        return batch
      error, self._error = self._error, None
    if error is not None:
      raise error
    raise StopIteration

  def close(self) -> None:
    """Stops the thread (after the batch it is preparing, if any) and drops ready batches."""
    with self._condition:
      self._closed = True
      self._ready.clear()
      self._condition.notify_all()
    self._thread.join()

  @property
  def running(self) -> bool:
    """Whether the thread is still alive."""
    return self._thread.is_alive()

  def __enter__(self) -> Prefetcher:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


def prefetch_to_mesh(batches: Iterable[dict], mesh: Mesh, size: int = 2) -> Prefetcher:
  """Global host batches `[S, B, ...]` -> `parallel.shard_batch(batch, mesh)`, `size` ahead."""
  return Prefetcher(batches, functools.partial(parallel.shard_batch, mesh=mesh), size)
