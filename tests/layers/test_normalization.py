import jax
import numpy as np
import pytest

import seqnets as sn


def reference_lrn(a, size, k, alpha, beta):
  """Krizhevsky et al. (2012) §3.3, channels j from i − ⌊n/2⌋ to i + ⌊(n − 1)/2⌋, clipped."""
  channels = a.shape[-1]
  b = np.empty_like(a)
  for i in range(channels):
    lo, hi = max(0, i - size // 2), min(channels - 1, i + (size - 1) // 2)
    energy = np.sum(a[..., lo:hi + 1] ** 2, axis=-1)
    b[..., i] = a[..., i] / (k + alpha * energy) ** beta
  return b


@pytest.mark.parametrize('size,k,alpha,beta', [(5, 2.0, 1e-4, 0.75), (4, 1.0, 0.1, 0.5), (1, 0.5, 0.3, 1.0)])
def test_lrn_matches_numpy_formula(size, k, alpha, beta):
  a = np.random.default_rng(0).normal(scale=3.0, size=(2, 3, 2, 7)).astype(np.float32)
  layer = sn.LocalResponseNorm(size, k, alpha, beta)
  variables = layer.init(jax.random.key(0), a)
  assert not variables
  np.testing.assert_allclose(layer.apply(variables, a), reference_lrn(a, size, k, alpha, beta), rtol=1e-5)
