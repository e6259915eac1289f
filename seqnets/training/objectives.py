"""Losses and their metric sums, one `Objective` per kind of target.

`loss_and_sums(outputs, batch) -> (loss, Sums)`: `loss` is the scalar the
gradient is taken of (a mean over real positions); Sums hold sums and counts
(see `metrics.py`), so padding rows and steps contribute nothing.
`per_example_correct(outputs, batch) -> [B] bool` feeds per-example results
(e.g. accuracy per n on formal languages).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from seqnets.layers import masking


@dataclasses.dataclass(frozen=True)
class Objective:
  loss_and_sums: Callable[[jax.Array, dict], tuple[jax.Array, dict]]
  per_example_correct: Callable[[jax.Array, dict], jax.Array]


def _next_symbol_steps_right(logits, batch):
  mask = masking.sequence_mask(batch['lengths'], logits.shape[1])           # [B, T]
  step_right = jnp.all((logits > 0) == (batch['targets'] > 0.5), axis=-1)   # [B, T]
  return mask, step_right


def next_symbol_sets_correct(logits: jax.Array, batch: dict) -> jax.Array:
  """`[B]` bool: every real step fully right (see `next_symbol_sets`)."""
  mask, step_right = _next_symbol_steps_right(logits, batch)
  return jnp.all(step_right | ~mask, axis=-1)


def next_symbol_sets(logits: jax.Array, batch: dict) -> tuple[jax.Array, dict]:
  """Multi-label next-symbol prediction (Gers & Schmidhuber 2001).

  `logits: [B, T, V]`, `batch['targets']: [B, T, V]` multi-hot,
  `batch['lengths']: [B]`. Loss: sigmoid cross-entropy summed over V, averaged
  over real steps. A step is correct when every output thresholded at 0.5
  (logit > 0) equals its target; a sequence when every real step is. Rows of
  length 0 (padding rows) count nowhere.
  """
  mask, step_right = _next_symbol_steps_right(logits, batch)
  per_step = optax.sigmoid_binary_cross_entropy(logits, batch['targets']).sum(-1)   # [B, T]
  token_count = mask.sum()
  loss_sum = jnp.sum(jnp.where(mask, per_step, 0.0))
  real_rows = batch['lengths'] > 0
  sums = {
      'loss_sum': loss_sum,
      'token_count': token_count.astype(jnp.float32),
      'tokens_correct': jnp.sum(step_right & mask).astype(jnp.float32),
      'sequences_correct': jnp.sum(jnp.all(step_right | ~mask, -1) & real_rows).astype(jnp.float32),
      'sequence_count': jnp.sum(real_rows).astype(jnp.float32),
  }
  return loss_sum / jnp.maximum(token_count, 1), sums


def classification_correct(logits: jax.Array, batch: dict) -> jax.Array:
  """`[B]` bool: the arg-max class is the label."""
  return jnp.argmax(logits, -1) == batch['labels']


def classification(logits: jax.Array, batch: dict) -> tuple[jax.Array, dict]:
  """Softmax cross-entropy. `logits: [B, C]`, `batch['labels']: [B] int`,
  `batch['valid']: [B]` (0 on padding rows). Sums include the confusion
  matrix `confusion[true, predicted]`, `[C, C]`."""
  valid = batch['valid'].astype(jnp.float32)
  num_classes = logits.shape[-1]
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch['labels'])    # [B]
  count = valid.sum()
  predicted = jnp.argmax(logits, -1)
  confusion = jnp.einsum('b,bi,bj->ij', valid, jax.nn.one_hot(batch['labels'], num_classes),
                         jax.nn.one_hot(predicted, num_classes))                       # [C, C]
  sums = {
      'loss_sum': jnp.sum(losses * valid),
      'example_count': count,
      'examples_correct': jnp.sum((predicted == batch['labels']) * valid),
      'confusion': confusion,
  }
  return sums['loss_sum'] / jnp.maximum(count, 1), sums


OBJECTIVES: dict[str, Objective] = {
    'next_symbol_sets': Objective(next_symbol_sets, next_symbol_sets_correct),
    'classification': Objective(classification, classification_correct),
}
