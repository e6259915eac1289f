"""Spatial dropout: whole feature maps dropped (Tompson et al., 2015, arXiv:1411.4280).

Synopsis:
  y = sn.SpatialDropout(0.2)(x, deterministic=False)   # x: [B, *spatial, C]
  # per example b and channel c, y[b, ..., c] is all 0 or all x[b, ..., c] / (1 − rate)
"""

from __future__ import annotations

import jax
from flax import linen as nn

Array = jax.Array


class SpatialDropout(nn.Module):
  """Drops entire channels of a convolutional feature map.

    m[b, c] ~ Bernoulli(1 − rate),   y[b, …, c] = m[b, c] · x[b, …, c] / (1 − rate)

  Neighbouring activations of one feature map are strongly correlated, so
  element-wise dropout barely regularises a conv layer; dropping whole maps
  does. This is `nn.Dropout` with the mask broadcast over the spatial axes.

  Attributes:
    rate: probability of dropping a channel.
    rng_collection: the rng stream ('dropout').
  """

  rate: float
  rng_collection: str = 'dropout'

  @nn.compact
  def __call__(self, x: Array, *, deterministic: bool) -> Array:
    """`x: [B, *spatial, C]` -> same shape; identity when `deterministic`."""
    if x.ndim < 3:
      raise ValueError(f'SpatialDropout expects [B, *spatial, C]; got shape {x.shape}')
    spatial_axes = tuple(range(1, x.ndim - 1))
    return nn.Dropout(self.rate, broadcast_dims=spatial_axes,
                      rng_collection=self.rng_collection)(x, deterministic=deterministic)
