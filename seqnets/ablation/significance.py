"""Uncertainty over seeds: bootstrap intervals, two-sample tests and effect sizes.

  lo, hi = bootstrap_interval([52, 89, 31, 117, 60], 'median')     # 95 %, percentile
  result = compare([117, 445, 90, 130], [52, 89, 31, 60])          # permutation test
  result.p_value, result.cliffs_delta, result.decided(0.05)

The resampling is scipy's (`scipy.stats.bootstrap`, `scipy.stats.permutation_test`),
seeded, so a report is the same every time it is written. What scipy lacks is written
here: Cliff's δ, the smallest p-value a number of seeds can give, and a bootstrap band
over many points at once (an accuracy curve over n).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 10_000
STATISTICS = {'mean': np.mean, 'median': np.median}


def _finite(values: Sequence[float]) -> np.ndarray:
  array = np.asarray([v for v in values if v is not None], dtype=np.float64)
  return array[np.isfinite(array)]


def bootstrap_interval(values: Sequence[float], statistic: str = 'mean',
                       confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
                       seed: int = 0) -> tuple[float, float] | None:
  """Percentile bootstrap interval of the mean or median of `values` (resampled with
  replacement `resamples` times from `np.random.default_rng(seed)`); None with fewer than
  two values. Equal values give the interval [v, v]."""
  data = _finite(values)
  if len(data) < 2:
    return None
  if np.all(data == data[0]):
    return float(data[0]), float(data[0])
  result = stats.bootstrap((data,), STATISTICS[statistic], n_resamples=resamples,
                           confidence_level=confidence, method='percentile',
                           random_state=np.random.default_rng(seed), vectorized=True)
  return float(result.confidence_interval.low), float(result.confidence_interval.high)


def bootstrap_band(curves: np.ndarray, confidence: float = CONFIDENCE,
                   resamples: int = RESAMPLES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Percentile bootstrap interval of the mean over seeds at every point of `curves`
  `[S, N]` (S seeds, N points), resampling whole seeds: `(low [N], high [N])`.
  Written here because scipy's bootstrap resamples each point apart, which would
  break a seed's curve into pieces."""
  curves = np.asarray(curves, dtype=np.float64)
  num_seeds = curves.shape[0]
  picks = np.random.default_rng(seed).integers(0, num_seeds, size=(resamples, num_seeds))
  means = curves[picks].mean(axis=1)                              # [R, N]
  tail = 100 * (1 - confidence) / 2
  return np.percentile(means, tail, axis=0), np.percentile(means, 100 - tail, axis=0)


def cliffs_delta(a: Sequence[float], b: Sequence[float]) -> float:
  """Cliff's δ = P(A > B) − P(A < B) over all pairs, in [−1, 1]: how often a seed of A
  beats a seed of B (ties count for neither). scipy has no function for it."""
  a, b = _finite(a), _finite(b)
  diff = a[:, None] - b[None, :]
  return float((np.sum(diff > 0) - np.sum(diff < 0)) / diff.size)


def smallest_p_value(n_a: int, n_b: int) -> float:
  """The smallest two-sided p-value an exact permutation test of `n_a` against `n_b`
  distinct values can give: 2 / C(n_a + n_b, n_a) (ties make it larger)."""
  if n_a < 1 or n_b < 1:
    return 1.0
  return min(1.0, 2.0 / math.comb(n_a + n_b, n_a))


def holm(p_values: Sequence[float]) -> list[float]:
  """Holm-Bonferroni adjusted p-values of a family of tests (same order): the k-th smallest
  p times (m − k + 1), made monotone, at most 1. scipy has Benjamini-Hochberg
  (`false_discovery_control`) but not Holm's family-wise correction."""
  order = np.argsort(p_values, kind='stable')
  m = len(p_values)
  adjusted, running = [0.0] * m, 0.0
  for rank, index in enumerate(order):
    running = max(running, min(1.0, (m - rank) * p_values[index]))
    adjusted[index] = running
  return adjusted


def _mean_difference(a, b, axis=-1):
  return np.mean(a, axis=axis) - np.mean(b, axis=axis)


@dataclasses.dataclass(frozen=True)
class Comparison:
  """A two-sided permutation test of the difference of means of A and B.

  `exact`: every split of the pooled seeds was counted (else `resamples` random ones).
  `floor`: the smallest p-value these seed counts can give; when it is above the level
  the test cannot decide whatever the results (`too_few_seeds`).
  """
  n_a: int
  n_b: int
  mean_a: float
  mean_b: float
  median_a: float
  median_b: float
  p_value: float
  cliffs_delta: float
  exact: bool
  resamples: int
  floor: float

  @property
  def mean_difference(self) -> float:
    return self.mean_a - self.mean_b

  def too_few_seeds(self, alpha: float) -> bool:
    return self.floor >= alpha

  def decided(self, alpha: float) -> bool:
    return self.p_value < alpha


def compare(a: Sequence[float], b: Sequence[float], resamples: int = RESAMPLES,
            seed: int = 0) -> Comparison | None:
  """Permutation test (two-sided) of mean(A) − mean(B) over the seeds' values, exact when
  the splits of the pooled seeds number at most `resamples`; with Cliff's δ as the effect
  size. None when either side has no value."""
  a, b = _finite(a), _finite(b)
  if len(a) == 0 or len(b) == 0:
    return None
  splits = math.comb(len(a) + len(b), len(a))
  if np.all(np.concatenate([a, b]) == a[0]):
    p_value = 1.0
  else:
    result = stats.permutation_test((a, b), _mean_difference, permutation_type='independent',
                                    alternative='two-sided', n_resamples=resamples,
                                    vectorized=True, random_state=np.random.default_rng(seed))
    p_value = float(result.pvalue)
  return Comparison(n_a=len(a), n_b=len(b), mean_a=float(a.mean()), mean_b=float(b.mean()),
                    median_a=float(np.median(a)), median_b=float(np.median(b)),
                    p_value=p_value, cliffs_delta=cliffs_delta(a, b),
                    exact=splits <= resamples, resamples=min(splits, resamples),
                    floor=smallest_p_value(len(a), len(b)))
