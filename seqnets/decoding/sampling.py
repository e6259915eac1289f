"""Choosing the next token from logits: greedy, temperature, top-k, nucleus (top-p).

Synopsis:
  token = sample(key, logits, temperature=0.8, top_k=40, top_p=0.95)   # [B]
  token = sample(key, logits, temperature=0.0)                         # greedy: arg-max

Every setting is a traced value, so changing one never recompiles. optax and
flax have no sampler; this follows the usual definitions (Fan et al. 2018 for
top-k, Holtzman et al. 2020 for nucleus sampling).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def filter_logits(logits: Array, *, top_k: int | Array = 0, top_p: float | Array = 1.0) -> Array:
  """`logits [..., V]` with every token outside the top-k and outside the nucleus set to −∞.

  top_k: keep the k largest (ties at the k-th value kept too); 0 keeps all.
  top_p: keep the smallest set of most probable tokens whose probability
    reaches top_p (the most probable token always stays); 1 keeps all.
  """
  vocab = logits.shape[-1]
  descending = -jnp.sort(-logits, axis=-1)                                   # [..., V]
  k = jnp.where(jnp.asarray(top_k) > 0, jnp.minimum(jnp.asarray(top_k), vocab), vocab)
  kth = jnp.take_along_axis(descending, jnp.broadcast_to(k - 1, logits.shape[:-1])[..., None],
                            axis=-1)
  logits = jnp.where(logits < kth, -jnp.inf, logits)
  descending = jnp.where(descending < kth, -jnp.inf, descending)            # sorted, after top-k
  probs = jax.nn.softmax(descending, axis=-1)
  before = jnp.cumsum(probs, axis=-1) - probs             # mass of the more probable tokens
  kept = before < jnp.asarray(top_p)                      # the first is always kept
  threshold = jnp.min(jnp.where(kept, descending, jnp.inf), axis=-1, keepdims=True)
  return jnp.where(logits < threshold, -jnp.inf, logits)


def sample(key: Array, logits: Array, *, temperature: float | Array = 1.0,
           top_k: int | Array = 0, top_p: float | Array = 1.0) -> Array:
  """`[...]` token ids drawn from `softmax(filter_logits(logits) / temperature)`;
  temperature 0 takes the arg-max (greedy)."""
  temperature = jnp.asarray(temperature, jnp.float32)
  filtered = filter_logits(logits.astype(jnp.float32), top_k=top_k, top_p=top_p)
  scaled = filtered / jnp.where(temperature > 0, temperature, 1.0)
  drawn = jax.random.categorical(key, scaled, axis=-1)
  return jnp.where(temperature > 0, drawn, jnp.argmax(logits, axis=-1)).astype(jnp.int32)
