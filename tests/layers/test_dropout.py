import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn


@pytest.mark.parametrize('shape', [(3, 5, 8), (3, 4, 5, 8), (2, 2, 3, 3, 8)])
def test_spatial_dropout_drops_whole_channels(shape):
  x = jnp.asarray(np.random.default_rng(0).uniform(1, 2, size=shape), jnp.float32)
  layer = sn.SpatialDropout(0.5)
  y = np.asarray(layer.apply({}, x, deterministic=False, rngs={'dropout': jax.random.key(0)}))
  kept = y != 0
  spatial = tuple(range(1, len(shape) - 1))
  # Per example and channel: all kept or all dropped, kept ones scaled by 1 / (1 − rate).
  assert np.all(kept.all(axis=spatial) | ~kept.any(axis=spatial))
  np.testing.assert_allclose(y[kept], 2 * np.asarray(x)[kept], rtol=1e-6)
  per_channel = kept.all(axis=spatial)                                # [B, C]
  assert per_channel.any() and not per_channel.all()
  assert not np.all(per_channel == per_channel[:1])                   # masks differ per example


def test_spatial_dropout_is_identity_when_deterministic():
  x = jnp.ones((2, 3, 3, 4))
  np.testing.assert_array_equal(sn.SpatialDropout(0.5).apply({}, x, deterministic=True), x)
  with pytest.raises(ValueError, match='SpatialDropout'):
    sn.SpatialDropout(0.5).apply({}, jnp.ones((2, 4)), deterministic=True)


@pytest.mark.parametrize('rate', [0.2, 0.5, 0.8])
def test_spatial_dropout_drops_the_stated_fraction_and_keeps_the_mean(rate):
  # 20,000 (example, channel) maps: the dropped fraction is Binomial(n, rate) / n,
  # standard deviation √(rate (1 − rate) / n) ≤ 0.0036; allow 5 of them.
  x = jnp.ones((100, 3, 200))
  y = np.asarray(sn.SpatialDropout(rate).apply({}, x, deterministic=False,
                                              rngs={'dropout': jax.random.key(3)}))
  dropped = (y == 0).all(axis=1)                                        # [B, C]
  n = dropped.size
  tolerance = 5 * np.sqrt(rate * (1 - rate) / n)
  assert abs(dropped.mean() - rate) < tolerance
  # Kept maps are scaled by 1 / (1 − rate), so the mean stays 1 in expectation.
  assert abs(y.mean() - 1.0) < tolerance / (1 - rate)


def test_spatial_dropout_rate_zero_is_identity():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 3)), jnp.float32)
  y = sn.SpatialDropout(0.0).apply({}, x, deterministic=False, rngs={'dropout': jax.random.key(0)})
  np.testing.assert_array_equal(y, x)
