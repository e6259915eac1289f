"""Random keys and masks for the NNX layers' regularisers (the cells' update dropout, zoneout
and weight drop, `snx.RNN`'s variational dropout).

A call in training takes its 'dropout' key from, in order: the call's `rngs` (an
`nnx.Rngs`, whose 'dropout' stream draws it, the default stream when there is none; an
`nnx.RngStream`; or a key array), then the module's own streams (forked from
`rngs['dropout']` at construction). The key is what the linen layer would be given as
`apply(..., rngs={'dropout': key})`.
"""

from __future__ import annotations

from typing import Union

import jax
import jax.numpy as jnp
from flax import nnx

Array = jax.Array
KeySource = Union[nnx.Rngs, nnx.RngStream, Array, None]

RNG_STREAM = 'dropout'


def dropout_key(given: KeySource, *streams: nnx.RngStream | None, what: str) -> Array:
  """A 'dropout' key from `given`, else from the first of `streams` that is not None;
  a ValueError naming `what` when there is none."""
  for source in (given, *streams):
    if source is None:
      continue
    if isinstance(source, nnx.Rngs):
      return source[RNG_STREAM]()
    if isinstance(source, nnx.RngStream):
      return source()
    return source
  raise ValueError(f"{what} in training draws dropout masks and needs a 'dropout' key: build "
                   'it with rngs (e.g. nnx.Rngs(0)), pass rngs= to the call, or evaluate '
                   '(deterministic=True, model.eval())')


def keep_mask(key: Array, rate: float, shape: tuple[int, ...], dtype) -> Array:
  """`Bernoulli(1 − rate) / (1 − rate)` of `shape` (mean 1), as the linen layers draw it."""
  keep = jax.random.bernoulli(key, 1.0 - rate, shape)
  return keep.astype(dtype) / jnp.asarray(1.0 - rate, dtype)


def check_rate(owner: str, name: str, rate: float) -> None:
  """ValueError naming `owner.name` unless `rate` is in [0, 1)."""
  if not 0 <= rate < 1:
    raise ValueError(f'{owner}.{name} must be in [0, 1), got {rate!r}')
