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
