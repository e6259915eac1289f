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

# (mean name, numerator sum, denominator count); the first pair present names a mean.
RATIOS = (
    ('loss', 'loss_sum', 'token_count'),
    ('token_accuracy', 'tokens_correct', 'token_count'),
    ('accuracy', 'tags_correct', 'token_count'),
    ('sentence_accuracy', 'sentences_correct', 'sentence_count'),
    ('accuracy', 'sequences_correct', 'sequence_count'),
    ('loss', 'loss_sum', 'example_count'),
    ('accuracy', 'examples_correct', 'example_count'),
    ('accuracy', 'recalled_correct', 'recalled_count'),
    ('mse', 'squared_error_sum', 'example_count'),
)
# Per-step values (train steps) reported as their mean over the logged steps.
MEANS_OVER_STEPS = ('grad_norm', 'param_norm', 'update_norm')


def merge(total: Sums | None, sums: Sums) -> Sums:
  """Adds two Sums dicts key by key (`None` is the empty total)."""
  if total is None:
    return dict(sums)
  return {k: total[k] + sums[k] for k in total}


def compute(sums: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Means from sums (`RATIOS`). Norms (`MEANS_OVER_STEPS`), summed over
  `sums['steps']` steps, come back as their mean; other keys (e.g. a
  confusion matrix) pass through as totals."""
  sums = {k: np.asarray(v) for k, v in sums.items()}
  steps = np.maximum(sums.pop('steps', 1), 1)
  used = set()
  out = {}
  for name, num, den in RATIOS:
    if num in sums and den in sums and name not in out:
      out[name] = sums[num] / np.maximum(sums[den], 1)
      used.update((num, den))
  for k, v in sums.items():
    if k not in used:
      out[k] = v / steps if k in MEANS_OVER_STEPS else v
  return out
