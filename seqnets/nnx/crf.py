"""A linear-chain CRF output layer as a Flax NNX module, over the linen `seqnets.layers.CRF`
(`seqnets.layers.crf` has the equations, shapes and the constraints' rules).

Synopsis:
  crf = snx.CRF(K, allowed=sn.layers.bio_constraints(tag_names), rngs=rngs)   # allowed: optional
  loss = -crf.log_likelihood(emissions, tags, lengths).mean()   # [B, T, K], [B, T], [B]
  tags, scores = crf(emissions, lengths)                        # Viterbi: [B, T] int32, [B]
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx

from seqnets.layers import crf as linen_crf
from seqnets.nnx import cells

Array = jax.Array


class CRF(nnx.Module):
  """Linear-chain CRF over emissions `[B, T, K]`; `__call__` is `decode`.

  Params `transitions [K, K]`, `start [K]`, `end [K]` (float32, as the linen CRF's); the
  methods are the linen CRF's (`linen_crf`, its twin, holds the settings), so both give the
  same numbers.

  Args:
    num_tags: K.
    allowed: None, or `(start [K], transitions [K, K], end [K])` bools, True = allowed
      (e.g. `seqnets.layers.bio_constraints(names)`).
    forbidden_score: a forbidden part's score in the likelihood (Viterbi uses -inf).
    param_init: initialiser of the three params (zeros by default).
    rngs: its 'params' stream draws them.
  """

  def __init__(self, num_tags: int, *, allowed: Any = None, forbidden_score: float = -1e4,
               param_init: Callable[..., Array] = linen_crf.CRF.param_init, rngs: nnx.Rngs):
    self.linen_crf = linen_crf.CRF(num_tags, allowed=allowed, forbidden_score=forbidden_score,
                                   param_init=param_init)
    emissions = jnp.zeros((1, 1, num_tags), jnp.float32)
    cells.hold_params(self, self.linen_crf.init(rngs.params(), emissions)['params'])

  @property
  def num_tags(self) -> int:
    return self.linen_crf.num_tags

  def linen_params(self) -> dict[str, Array]:
    return cells.held_params(self)

  def _apply(self, method: str, *args) -> Any:
    return self.linen_crf.apply({'params': self.linen_params()}, *args, method=method)

  def log_partition(self, emissions: Array, lengths: Array | None = None) -> Array:
    """log Z per row: `[B, T, K], [B] -> [B]` float32 (0 for length 0)."""
    return self._apply('log_partition', emissions, lengths)

  def score(self, emissions: Array, tags: Array, lengths: Array | None = None) -> Array:
    """s(tags) per row: `[B, T, K], [B, T], [B] -> [B]` float32."""
    return self._apply('score', emissions, tags, lengths)

  def log_likelihood(self, emissions: Array, tags: Array,
                     lengths: Array | None = None) -> Array:
    """log p(tags) = s(tags) − log Z: `[B, T, K], [B, T], [B] -> [B]` (0 for length 0)."""
    return self._apply('log_likelihood', emissions, tags, lengths)

  def decode(self, emissions: Array, lengths: Array | None = None) -> tuple[Array, Array]:
    """Viterbi: `[B, T, K], [B] -> (tags [B, T] int32, scores [B] float32)`; the best
    allowed path, tags 0 past each length."""
    return self._apply('decode', emissions, lengths)

  def __call__(self, emissions: Array, lengths: Array | None = None) -> tuple[Array, Array]:
    return self.decode(emissions, lengths)
