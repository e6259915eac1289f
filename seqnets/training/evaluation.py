"""Evaluation of every eval split, per seed, with per-n results where the data has `n`."""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np

from seqnets.data import formal_languages
from seqnets.training import metrics as metrics_lib
from seqnets.training import parallel


def _chunks(batch: dict[str, np.ndarray], size: int):
  """Splits rows into chunks of `size`; sequence chunks are cut to their own
  longest sequence (less padding)."""
  rows = len(next(iter(batch.values())))
  for start in range(0, rows, size):
    chunk = {k: v[start:start + size] for k, v in batch.items()}
    if 'lengths' in chunk:
      longest = max(int(chunk['lengths'].max()), 1)
      chunk = {k: (v[:, :longest] if v.ndim >= 2 else v) for k, v in chunk.items()}
    yield chunk


def evaluate(params: Any, eval_sets: dict[str, dict[str, np.ndarray]], eval_step: Callable,
             mesh, num_seeds: int, batch_size: int = 256) -> list[dict[str, Any]]:
  """Returns one dict per seed: `eval/<split>/<metric>` for every split, plus
  `accuracy_by_n` and `max_correct_n` for splits whose examples carry `n`.

  `eval_step` is `parallel.make_eval_step(...)`: params and batches have a
  leading seed axis; the same batch is broadcast to every seed.
  """
  results = [dict() for _ in range(num_seeds)]
  for split, batch in eval_sets.items():
    total, correct = None, []
    for chunk in _chunks(batch, batch_size):
      stacked = {k: np.broadcast_to(v, (num_seeds,) + v.shape) for k, v in chunk.items()}
      sums, chunk_correct = eval_step(params, parallel.shard_batch(stacked, mesh))
      total = metrics_lib.merge(total, sums)
      correct.append(np.asarray(jax.device_get(chunk_correct))[:, :len(chunk['inputs'])])
    means = metrics_lib.compute(jax.device_get(total))
    correct = np.concatenate(correct, axis=1)                         # [S, rows]
    for seed, result in enumerate(results):
      for name, value in means.items():
        value = value[seed]
        result[f'eval/{split}/{name}'] = value.tolist() if value.ndim else float(value)
      if 'n' in batch:
        ns = batch['n'].tolist()
        result[f'eval/{split}/accuracy_by_n'] = {
            int(n): float(c) for n, c in zip(ns, correct[seed])}
        result[f'eval/{split}/max_correct_n'] = formal_languages.max_correct_n(ns, correct[seed])
  return results
