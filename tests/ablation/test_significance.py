"""Bootstrap intervals, permutation tests and effect sizes against independent references:
a plain NumPy bootstrap, a permutation test that enumerates every split, scipy's
Mann-Whitney U, and worked examples."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from seqnets.ablation import significance

VALUES = [0.61, 0.72, 0.55, 0.80, 0.66, 0.70, 0.59]


def numpy_bootstrap(values, statistic, resamples, confidence, seed):
  """Percentile bootstrap written out: resample with replacement, take the percentiles."""
  values = np.asarray(values)
  rng = np.random.default_rng(seed)
  draws = [statistic(values[rng.integers(0, len(values), len(values))]) for _ in range(resamples)]
  tail = 100 * (1 - confidence) / 2
  return np.percentile(draws, tail), np.percentile(draws, 100 - tail)


@pytest.mark.parametrize('statistic, function', [('mean', np.mean), ('median', np.median)])
def test_bootstrap_interval_matches_a_plain_numpy_bootstrap(statistic, function):
  ours = significance.bootstrap_interval(VALUES, statistic, 0.95, 20_000, seed=0)
  reference = numpy_bootstrap(VALUES, function, 20_000, 0.95, seed=1)
  np.testing.assert_allclose(ours, reference, atol=0.006)    # Monte Carlo error of 20k draws
  assert ours[0] < function(VALUES) < ours[1]


def test_bootstrap_interval_is_seeded_and_narrows_with_confidence():
  assert (significance.bootstrap_interval(VALUES, seed=3)
          == significance.bootstrap_interval(VALUES, seed=3))
  wide = significance.bootstrap_interval(VALUES, confidence=0.99)
  narrow = significance.bootstrap_interval(VALUES, confidence=0.5)
  assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_bootstrap_interval_edge_cases():
  assert significance.bootstrap_interval([3.0]) is None
  assert significance.bootstrap_interval([]) is None
  assert significance.bootstrap_interval([5, 5, 5]) == (5.0, 5.0)
  assert significance.bootstrap_interval([1.0, None, float('nan'), 3.0]) is not None


def test_bootstrap_band_resamples_whole_seeds():
  curves = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.5, 0.0]])
  lo, hi = significance.bootstrap_band(curves, 0.9, 5000, seed=2)
  rng = np.random.default_rng(2)
  picks = rng.integers(0, 4, size=(5000, 4))
  means = np.stack([curves[p].mean(axis=0) for p in picks])
  np.testing.assert_allclose(lo, np.percentile(means, 5, axis=0))
  np.testing.assert_allclose(hi, np.percentile(means, 95, axis=0))
  assert lo[0] == hi[0] == 1.0                 # every seed right at the first point


def enumerated_permutation_p(a, b):
  """Two-sided exact permutation test of the mean difference: every split counted."""
  pooled = np.concatenate([a, b])
  observed = np.mean(a) - np.mean(b)
  diffs = []
  for chosen in itertools.combinations(range(len(pooled)), len(a)):
    mask = np.zeros(len(pooled), bool)
    mask[list(chosen)] = True
    diffs.append(pooled[mask].mean() - pooled[~mask].mean())
  diffs = np.array(diffs)
  eps = 1e-12
  greater, less = np.mean(diffs >= observed - eps), np.mean(diffs <= observed + eps)
  return min(1.0, 2 * min(greater, less))


@pytest.mark.parametrize('a, b', [
    ([117, 445, 90, 130, 60], [52, 89, 31, 60]),
    ([12, 13, 11, 12], [13, 12, 12, 14, 11]),       # ties
    ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]),
])
def test_exact_permutation_test_matches_an_enumeration(a, b):
  result = significance.compare(a, b)
  assert result.exact and result.resamples == math.comb(len(a) + len(b), len(a))
  assert result.p_value == pytest.approx(enumerated_permutation_p(np.array(a, float),
                                                                  np.array(b, float)))


def test_separated_samples_reach_the_smallest_p_value_as_mann_whitney_says():
  a, b = [10, 11, 12, 13, 14], [1, 2, 3, 4]
  result = significance.compare(a, b)
  mwu = stats.mannwhitneyu(a, b, alternative='two-sided', method='exact')
  assert result.p_value == pytest.approx(mwu.pvalue) == pytest.approx(2 / math.comb(9, 4))
  assert result.p_value == pytest.approx(result.floor)
  assert result.cliffs_delta == 1.0 and result.decided(0.05)


def test_many_seeds_use_random_splits_and_still_decide():
  rng = np.random.default_rng(0)
  a, b = rng.normal(1.0, 1.0, 30), rng.normal(0.0, 1.0, 30)
  result = significance.compare(a, b, resamples=2000, seed=0)
  assert not result.exact and result.resamples == 2000
  assert result.p_value < 0.05
  welch = stats.ttest_ind(a, b, equal_var=False).pvalue
  assert result.p_value == pytest.approx(welch, abs=0.01)


def test_cliffs_delta_worked_examples_and_its_relation_to_u():
  assert significance.cliffs_delta([1, 2, 3], [2, 2]) == 0.0
  assert significance.cliffs_delta([3, 4], [1, 2, 3]) == pytest.approx(5 / 6)
  a, b = [3.0, 7.0, 7.0, 1.0, 9.0], [2.0, 7.0, 4.0, 5.0]
  u = stats.mannwhitneyu(a, b).statistic        # ties count 1/2
  assert significance.cliffs_delta(a, b) == pytest.approx(2 * u / (len(a) * len(b)) - 1)


def test_too_few_seeds_is_known_before_any_result():
  assert significance.smallest_p_value(3, 3) == pytest.approx(0.1)
  assert significance.smallest_p_value(4, 4) == pytest.approx(2 / 70)
  result = significance.compare([1, 2, 3], [7, 8, 9])
  assert result.p_value == pytest.approx(0.1) and result.too_few_seeds(0.05)
  assert not significance.compare([1, 2, 3, 4], [7, 8, 9, 10]).too_few_seeds(0.05)


def test_identical_and_empty_samples():
  same = significance.compare([2, 2, 2], [2, 2])
  assert same.p_value == 1.0 and same.cliffs_delta == 0.0
  assert significance.compare([], [1, 2]) is None


def test_holm_worked_example():
  """Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> monotone."""
  adjusted = significance.holm([0.01, 0.04, 0.03, 0.005])
  np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
  assert significance.holm([0.6, 0.9]) == [1.0, 1.0]
  assert significance.holm([]) == []
