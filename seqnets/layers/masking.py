"""Sequence masks and length-aware flips for padded batches.

Synopsis:
  mask = sequence_mask(lengths, max_length)    # [B, T] bool, True on real steps
  x_rev = flip_sequences(x, lengths)           # reverse each row within its length
  mean = masked_mean(x, mask, axis=1)          # mean over real steps only
  lengths = check_lengths(lengths, B, T)       # validated [B] int (clipped when traced)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def sequence_mask(lengths: jax.Array, max_length: int) -> jax.Array:
  """Returns `[B, T]` bool with `mask[b, t] = t < lengths[b]`.

  Example: `sequence_mask([2, 0, 3], 3)` is
  `[[True, True, False], [False, False, False], [True, True, True]]`.
  """
  return jnp.arange(max_length)[None, :] < jnp.asarray(lengths)[:, None]


def check_lengths(lengths: jax.Array | None, batch_size: int, max_length: int,
                  name: str = 'lengths') -> jax.Array | None:
  """Validates `lengths: [B] int` for `batch_size` sequences of `max_length` steps.

  Raises ValueError naming `name` for a non-integer dtype, a shape other than
  `[batch_size]`, or concrete values outside `[0, max_length]`. Traced values
  (under `jit`, `vmap`, ...) cannot be checked: they are clipped to
  `[0, max_length]` instead, so a length above T counts as T and a negative
  one as 0 (never NaN). Returns the lengths as an array (None passes through).
  """
  if lengths is None:
    return None
  traced = isinstance(lengths, jax.core.Tracer)
  values = lengths if traced else np.asarray(lengths)
  if not jnp.issubdtype(values.dtype, jnp.integer):
    raise ValueError(f'{name} must be integers, got dtype {values.dtype}')
  if values.shape != (batch_size,):
    raise ValueError(f'{name} must have shape [B] = ({batch_size},), one length per sequence, '
                     f'got shape {tuple(values.shape)}')
  if traced:
    return jnp.clip(lengths, 0, max_length)
  bad = np.flatnonzero((values < 0) | (values > max_length))
  if bad.size:
    shown = ', '.join(f'{name}[{b}] = {values[b]}' for b in bad[:5])
    raise ValueError(f'{name} must lie in [0, T] = [0, {max_length}], got {shown}')
  return jnp.asarray(values)


def flip_sequences(x: jax.Array, lengths: jax.Array | None) -> jax.Array:
  """Reverses each sequence of `x: [B, T, ...]` within its own length.

  Positions `t >= lengths[b]` stay where they are, so padding stays at the end:
  `flip_sequences([[1, 2, 3, 0]], [3]) == [[3, 2, 1, 0]]`. With `lengths=None`
  the whole time axis is reversed. Flipping twice is the identity. `lengths`
  is checked as `check_lengths` says (traced lengths are clipped to [0, T]).
  """
  if lengths is None:
    return jnp.flip(x, axis=1)
  max_length = x.shape[1]
  lengths = check_lengths(lengths, x.shape[0], max_length)
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
