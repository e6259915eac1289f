"""Metrics as sums and counts, divided once on the host (clu's `Average` idea).

A step returns a dict of scalar sums (`loss_sum`, `token_count`, ...). Sums add
across batches, devices and padding rows without skewing any average;
`compute` turns them into means at logging time.

Synopsis:
  total = merge(total, step_sums)             # elementwise +
  compute(total) -> {'loss': loss_sum / token_count, 'accuracy': ..., ...}
"""

from __future__ import annotations

from typing import Mapping

import jax
import numpy as np

Sums = dict[str, jax.Array]

# mean name -> (numerator sum, denominator count)
RATIOS = {
    'loss': ('loss_sum', 'token_count'),
    'token_accuracy': ('tokens_correct', 'token_count'),
    'accuracy': ('sequences_correct', 'sequence_count'),
}


def merge(total: Sums | None, sums: Sums) -> Sums:
  """Adds two Sums dicts key by key (`None` is the empty total)."""
  if total is None:
    return dict(sums)
  return {k: total[k] + sums[k] for k in total}


def compute(sums: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Means from sums. Other keys (norms) are per-step values summed over
  `sums['steps']` steps, and come back as their mean over those steps."""
  sums = {k: np.asarray(v) for k, v in sums.items()}
  steps = np.maximum(sums.pop('steps', 1), 1)
  used = set()
  out = {}
  for name, (num, den) in RATIOS.items():
    if num in sums and den in sums:
      out[name] = sums[num] / np.maximum(sums[den], 1)
      used.update((num, den))
  for k, v in sums.items():
    if k not in used:
      out[k] = v / steps
  return out
