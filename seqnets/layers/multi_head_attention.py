"""Multi-head dot-product attention whose keys and values can be kept between calls.

Synopsis:
  attention = MultiHeadAttention(num_heads=4, features=256)
  y = attention(x_q [B, T, d], x_kv [B, S, d], mask [B, 1, T, S])         # [B, T, d]
  keys, values = attention.keys_values(x_kv)                          # [B, S, H, d/H] each
  y, weights = attention.attend(x_q, keys, values, mask)              # weights [B, H, T, S]

The equation and the parameters are flax's `MultiHeadDotProductAttention`
(`query`, `key`, `value`: DenseGeneral d → [H, d/H]; `out`: [H, d/H] → d;
softmax(q kᵀ / √(d/H)) v per head, dropout on the weights), so parameters
trained with either load into the other. It exists because flax's fast
decoding keeps the keys and values in a mutable 'cache' collection written at
one shared index, which a beam search cannot carry and reorder, and it
projects the encoder memory again at every step. Here a decoder projects the
memory once (`keys_values`) and keeps its own self-attention keys and values
in its carry, and `attend` also returns the attention weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

Array = jax.Array


class MultiHeadAttention(nn.Module):
  """`softmax(q kᵀ / √(d/H) + mask) v` over H heads of size d/H (see the module docstring).

  Attributes:
    num_heads: H; `features` must be a multiple of it.
    features: d, the width of the queries, keys, values and output.
    dropout_rate: dropout on the attention weights (with `deterministic=False`).
  """
  num_heads: int
  features: int
  dropout_rate: float = 0.0

  def setup(self):
    if self.features % self.num_heads:
      raise ValueError(f'features={self.features} must be divisible by '
                       f'num_heads={self.num_heads}')
    heads = (self.num_heads, self.features // self.num_heads)
    self.query = nn.DenseGeneral(heads, axis=-1)
    self.key = nn.DenseGeneral(heads, axis=-1)
    self.value = nn.DenseGeneral(heads, axis=-1)
    self.out = nn.DenseGeneral(self.features, axis=(-2, -1))

  def keys_values(self, inputs_kv: Array) -> tuple[Array, Array]:
    """`[B, S, d]` -> keys, values `[B, S, H, d/H]`."""
    return self.key(inputs_kv), self.value(inputs_kv)

  def attend(self, inputs_q: Array, keys: Array, values: Array, mask: Array | None = None, *,
             deterministic: bool = True) -> tuple[Array, Array]:
    """`inputs_q [B, T, d]` over `keys, values [B, S, H, d/H]` where `mask [B, 1|H, T|1, S]`
    is True -> `(output [B, T, d], weights [B, H, T, S])`."""
    query = self.query(inputs_q)
    dropout = self.dropout_rate > 0 and not deterministic
    weights = nn.dot_product_attention_weights(
        query, keys, mask=mask, dropout_rate=self.dropout_rate if dropout else 0.0,
        dropout_rng=self.make_rng('dropout') if dropout else None, deterministic=not dropout,
        force_fp32_for_softmax=True).astype(query.dtype)
    mixed = jnp.einsum('...hqk,...khd->...qhd', weights, values)
    return self.out(mixed), weights

  def __call__(self, inputs_q: Array, inputs_kv: Array, mask: Array | None = None, *,
               deterministic: bool = True) -> Array:
    """`inputs_q [B, T, d]` attending over `inputs_kv [B, S, d]` -> `[B, T, d]`."""
    return self.attend(inputs_q, *self.keys_values(inputs_kv), mask,
                       deterministic=deterministic)[0]
