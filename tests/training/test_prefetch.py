"""Prefetching: the same batches in the same order, loaded while the step runs; errors and
early ends; the stop agreement that waits for no step."""

import threading

import jax
import numpy as np
import pytest

from seqnets.training import loop, parallel, prefetch

WAIT = 30    # seconds: only a guard against a deadlock, never reached when the code is right


def seed_batches(seed, start, widths=(3, 5, 2, 4, 6, 1)):
  """A seed's stream from step `start`: bucketed, so its width changes from step to step."""
  for step in range(start, len(widths)):
    width = widths[(step + seed) % len(widths)]
    inputs = np.full((3, width), 10 * seed + step, np.int32)
    yield {'inputs': inputs, 'lengths': np.full(3, width, np.int32)}


def test_prefetched_batches_equal_the_unprefetched_stream():
  mesh = parallel.create_mesh()          # 8 devices: batches of 3 rows are padded to 8
  for start in (0, 2):
    expected = [parallel.shard_batch(b, mesh)
                for b in loop._host_batches([seed_batches(s, start) for s in (0, 1)], 10)]
    with prefetch.prefetch_to_mesh(
        loop._host_batches([seed_batches(s, start) for s in (0, 1)], 10), mesh) as batches:
      got = list(batches)
    assert len(got) == len(expected) == 6 - start
    for a, b in zip(got, expected):
      assert a.keys() == b.keys()
      for key in a:
        assert a[key].sharding == b[key].sharding
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))


def test_the_next_batch_is_loaded_while_a_step_runs():
  """Batch k + 1 can only be loaded once step k has begun, and step k ends only once batch
  k + 1 is placed: a loader called from `next` alone would never get there."""
  steps = 5
  step_begun = [threading.Event() for _ in range(steps)]
  placed = [threading.Event() for _ in range(steps + 1)]

  def loader():
    for k in range(steps):
      if k >= 2:                         # batches 0 and 1 fill the buffer before any step
        assert step_begun[k - 1].wait(WAIT)
      yield k

  def place(k):
    placed[k].set()
    return k

  with prefetch.Prefetcher(loader(), place, size=2) as batches:
    for k in range(steps):
      assert next(batches) == k
      step_begun[k].set()
      if k + 1 < steps:
        assert placed[k + 1].wait(WAIT), f'batch {k + 1} was not loaded during step {k}'
    with pytest.raises(StopIteration):
      next(batches)


@pytest.mark.parametrize('where', ['loader', 'place'])
def test_an_error_comes_out_at_its_batch_with_its_type_and_message(where):
  class BadFile(ValueError):
    pass

  def loader():
    yield from range(3)
    if where == 'loader':
      raise BadFile('data/train.txt line 7: not UTF-8')
    yield 3

  def place(k):
    if k == 3:
      raise BadFile('data/train.txt line 7: not UTF-8')
    return k

  with prefetch.Prefetcher(loader(), place, size=2) as batches:
    assert [next(batches) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(BadFile, match='^data/train.txt line 7: not UTF-8$'):
      next(batches)
  assert not batches.running


def test_closing_early_stops_the_thread_and_pulls_nothing_more():
  pulled = []
  finished = threading.Event()

  def endless():
    try:
      k = 0
      while True:
        pulled.append(k)
        yield k
        k += 1
    finally:
      finished.set()

  source = endless()
  batches = prefetch.Prefetcher(source, size=2)
  assert [next(batches) for _ in range(3)] == [0, 1, 2]
  batches.close()
  assert not batches.running
  count = len(pulled)
  assert count <= 3 + 2
  with pytest.raises(StopIteration):
    next(batches)
  assert len(pulled) == count

  # Leaving a `with` block through an exception closes it too.
  with pytest.raises(KeyError):
    with prefetch.Prefetcher(endless(), size=2) as batches:
      next(batches)
      raise KeyError('step failed')
  assert not batches.running


def test_size_must_be_positive():
  with pytest.raises(ValueError, match='size=0'):
    prefetch.Prefetcher(iter(()), size=0)


def test_one_process_stops_at_the_step_of_its_request():
  flags = [False, False, True, False]
  assert [parallel.agreed_stop(f, sync_point=False) for f in flags] == flags


def test_several_processes_agree_on_a_stop_only_at_sync_points(monkeypatch):
  asked = []
  monkeypatch.setattr(jax, 'process_count', lambda: 2)
  monkeypatch.setattr(parallel, 'any_process', lambda flag: asked.append(flag) or flag)
  answers = [parallel.agreed_stop(flag, sync_point=point)
             for flag, point in [(False, True), (True, False), (True, False), (True, True)]]
  assert answers == [False, False, False, True]
  assert asked == [False, True]    # the collective runs at sync points only
