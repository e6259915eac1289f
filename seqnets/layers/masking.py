"""Sequence masks and length-aware flips for padded batches.

Synopsis:
  mask = sequence_mask(lengths, max_length)    # [B, T] bool, True on real steps
  x_rev = flip_sequences(x, lengths)           # reverse each row within its length
  mean = masked_mean(x, mask, axis=1)          # mean over real steps only
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def sequence_mask(lengths: jax.Array, max_length: int) -> jax.Array:
  """Returns `[B, T]` bool with `mask[b, t] = t < lengths[b]`.

  Example: `sequence_mask([2, 0, 3], 3)` is
  `[[True, True, False], [False, False, False], [True, True, True]]`.
  """
  return jnp.arange(max_length)[None, :] < jnp.asarray(lengths)[:, None]


def flip_sequences(x: jax.Array, lengths: jax.Array | None) -> jax.Array:
  """Reverses each sequence of `x: [B, T, ...]` within its own length.

  Positions `t >= lengths[b]` stay where they are, so padding stays at the end:
  `flip_sequences([[1, 2, 3, 0]], [3]) == [[3, 2, 1, 0]]`. With `lengths=None`
  the whole time axis is reversed. Flipping twice is the identity.
  """
  if lengths is None:
    return jnp.flip(x, axis=1)
  max_length = x.shape[1]
  t = jnp.arange(max_length)[None, :]                            # [1, T]
  lengths = jnp.asarray(lengths)[:, None]                        # [B, 1]
  source = jnp.where(t < lengths, lengths - 1 - t, t)            # [B, T]
  source = source.reshape(source.shape + (1,) * (x.ndim - 2))    # [B, T, 1...]
  return jnp.take_along_axis(x, source, axis=1)


def masked_mean(x: jax.Array, mask: jax.Array, axis: int = 1) -> jax.Array:
  """Mean of `x: [B, T, F]` over real steps (`mask: [B, T]`); 0 where a row is empty."""
  mask = mask.astype(x.dtype).reshape(mask.shape + (1,) * (x.ndim - mask.ndim))
  total = jnp.sum(x * mask, axis=axis)
  count = jnp.sum(mask, axis=axis)
  return total / jnp.maximum(count, 1)
