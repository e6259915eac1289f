"""Losses and their metric sums, one function per kind of target.

Each objective maps `(outputs, batch) -> (loss, Sums)`: `loss` is the scalar
the gradient is taken of (a mean over real positions), Sums hold sums and
counts (see `metrics.py`), so padding rows and steps contribute nothing.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from seqnets.layers import masking

Objective = Callable[[jax.Array, dict], tuple[jax.Array, dict]]


def next_symbol_sets(logits: jax.Array, batch: dict) -> tuple[jax.Array, dict]:
  """Multi-label next-symbol prediction (Gers & Schmidhuber 2001).

  `logits: [B, T, V]`, `batch['targets']: [B, T, V]` multi-hot,
  `batch['lengths']: [B]`. Loss: sigmoid cross-entropy summed over V, averaged
  over real steps. A step is correct when every output thresholded at 0.5
  (logit > 0) equals its target; a sequence when every real step is.
  """
  targets = batch['targets']
  mask = masking.sequence_mask(batch['lengths'], logits.shape[1])           # [B, T]
  per_step = optax.sigmoid_binary_cross_entropy(logits, targets).sum(-1)    # [B, T]
  step_right = jnp.all((logits > 0) == (targets > 0.5), axis=-1)           # [B, T]
  token_count = mask.sum()
  loss_sum = jnp.sum(jnp.where(mask, per_step, 0.0))
  sequence_right = jnp.all(step_right | ~mask, axis=-1)                     # [B]
  real_rows = batch['lengths'] > 0
  sums = {
      'loss_sum': loss_sum,
      'token_count': token_count.astype(jnp.float32),
      'tokens_correct': jnp.sum(step_right & mask).astype(jnp.float32),
      'sequences_correct': jnp.sum(sequence_right & real_rows).astype(jnp.float32),
      'sequence_count': jnp.sum(real_rows).astype(jnp.float32),
  }
  return loss_sum / jnp.maximum(token_count, 1), sums


def per_sequence_correct(logits: jax.Array, batch: dict) -> jax.Array:
  """`[B]` bool: every real step of the sequence fully right (see `next_symbol_sets`)."""
  mask = masking.sequence_mask(batch['lengths'], logits.shape[1])
  step_right = jnp.all((logits > 0) == (batch['targets'] > 0.5), axis=-1)
  return jnp.all(step_right | ~mask, axis=-1)


OBJECTIVES: dict[str, Objective] = {'next_symbol_sets': next_symbol_sets}
