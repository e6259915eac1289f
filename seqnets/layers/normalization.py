"""Local response normalisation across channels (Krizhevsky et al., 2012, AlexNet §3.3).

Synopsis:
  y = sn.LocalResponseNorm()(x)          # x: [B, H, W, C]; no parameters
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

Array = jax.Array


class LocalResponseNorm(nn.Module):
  """Divides each activation by the energy of its neighbouring channels:

    b^i = a^i / (k + α Σ_{j = i − ⌊n/2⌋}^{i + ⌊(n−1)/2⌋} (a^j)²)^β

  at every position, with the sum clipped to channels 0 … C − 1. For odd n
  this is the paper's `max(0, i − n/2) … min(N − 1, i + n/2)`; for even n the
  window holds exactly n channels, one fewer after i (as PyTorch).
  Note α multiplies the plain sum, as in the paper and TF's
  `local_response_normalization`; PyTorch's `LocalResponseNorm` uses α/n.

  Hand-written because flax has no LRN (it fell out of use after batch norm);
  AlexNet needs it.

  Attributes:
    size: n, channels in the window. Paper: 5.
    k: bias. Paper: 2.
    alpha: α. Paper: 1e-4.
    beta: β. Paper: 0.75.
  """

  size: int = 5
  k: float = 2.0
  alpha: float = 1e-4
  beta: float = 0.75

  @nn.compact
  def __call__(self, x: Array) -> Array:
    """`x: [..., C]` -> same shape."""
    if self.size < 1:
      raise ValueError(f'LocalResponseNorm size={self.size} must be positive')
    before, after = self.size // 2, (self.size - 1) // 2
    ones = (1,) * (x.ndim - 1)
    # Window sum along the channel axis only; lax pads the channel axis with zeros.
    energy = jax.lax.reduce_window(jnp.square(x), jnp.zeros((), x.dtype), jax.lax.add,
                                   ones + (self.size,), ones + (1,),
                                   [(0, 0)] * (x.ndim - 1) + [(before, after)])  # [..., C]
    return x / (self.k + self.alpha * energy) ** self.beta
