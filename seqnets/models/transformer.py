"""Transformer encoder-decoder (Vaswani et al. 2017), pre-norm (Xiong et al. 2020).

Synopsis:
  model = TransformerSeq2Seq(source_vocab_size=V_s, target_vocab_size=V_t, model_size=256,
                             num_heads=4, num_layers=3, ff_size=1024)
  logits = model.apply(variables, source, source_lengths, target_inputs, target_lengths,
                       deterministic=True)                                  # [B, T, V_t]
  encoded = model.apply(variables, source, source_lengths, method='encode')
  carry = model.apply(variables, encoded, max_length, method='initial_carry')   # max_length > 0
  carry, log_probs, weights = model.apply(variables, encoded, carry, tokens, method='step')
  sinusoidal_positions(length, d)                                           # [length, d]

The decoding protocol is `RecurrentSeq2Seq`'s (see `seqnets.models.seq2seq`), so
`seqnets.decoding.decode_arrays` (and `translate`) decode this model greedily or with beam search.

Inputs are `x = √d · E[ids] + P[pos]` (P sinusoidal or learned), then dropout.
Every layer is pre-norm, each sublayer `f` adding `x ← x + Dropout(f(LN(x)))`:
  encoder layer  f = self-attention over the real source positions, then FF
  decoder layer  f = causal self-attention, cross-attention to the memory
                 (real source positions only), then FF
  FF(x) = W_2 relu(W_1 x + b_1) + b_2    (d → ff_size → d)
and a final LayerNorm closes each stack. The logits are `W_o h + b_o`, or
`E_t h` with `tie_target_embeddings`. Attention weights get dropout too.
Padding (id 0) sits at the end of each row, and only keys are masked: no
position (real or padded) attends to a padded source position or a padded or
later target position, so no output depends on what the padding holds.
The decoder's attention is `seqnets.layers.MultiHeadAttention` (flax's
equation and parameters): decoding projects the memory once and keeps each
layer's self-attention keys and values in the carry, so a step costs O(t).
"""

from __future__ import annotations

import math
import numbers
import typing
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from seqnets.layers import masking
from seqnets.layers.multi_head_attention import MultiHeadAttention

Array = jax.Array
Positions = Literal['sinusoidal', 'learned']
POSITIONS = typing.get_args(Positions)


def softmax_in_float32(query: Array, key: Array, value: Array, bias: Array | None = None,
                       mask: Array | None = None, broadcast_dropout: bool = True,
                       dropout_rng: Array | None = None, dropout_rate: float = 0.0,
                       deterministic: bool = False, dtype: Any = None, precision: Any = None,
                       module: nn.Module | None = None) -> Array:
  """`nn.dot_product_attention` (the same arguments) with its softmax in float32 and the
  weights then in the values' dtype: flax's own `force_fp32_for_softmax` leaves them in
  float32, which makes the weighted sum, and all that follows, float32 under bfloat16."""
  weights = nn.dot_product_attention_weights(
      query, key, bias, mask, broadcast_dropout, dropout_rng, dropout_rate, deterministic,
      dtype, precision, module, force_fp32_for_softmax=True)
  return jnp.einsum('...hqk,...khd->...qhd', weights.astype(value.dtype), value,
                    precision=precision)


def sinusoidal_positions(length: int, d: int) -> Array:
  """`[length, d]` float32: `P[pos, 2i] = sin(pos / 10000^(2i/d))`,
  `P[pos, 2i+1] = cos(pos / 10000^(2i/d))` (odd d: the last cos is dropped)."""
  position = np.arange(length, dtype=np.float64)[:, None]                     # [L, 1]
  rates = 1.0 / 10000.0 ** (np.arange(0, d, 2, dtype=np.float64) / d)        # [ceil(d/2)]
  angles = position * rates                                                   # [L, ceil(d/2)]
  table = np.stack([np.sin(angles), np.cos(angles)], -1).reshape(length, -1)  # interleaved
  return jnp.asarray(table[:, :d], jnp.float32)


def _scheduled_inputs(key: Array, probability: Array | float, target_inputs: Array,
                      logits: Array) -> Array:
  """Parallel scheduled sampling: each input after `<s>` is, with probability p, the
  first pass's arg-max prediction for the position before it (no gradient)."""
  predicted = jax.lax.stop_gradient(jnp.argmax(logits, -1)).astype(target_inputs.dtype)
  use = jax.random.bernoulli(key, probability, target_inputs.shape)
  use = use.at[:, 0].set(False)                       # <s> stays
  return jnp.where(use, jnp.roll(predicted, 1, axis=1), target_inputs)


class FeedForward(nn.Module):
  """`[.., d] -> [.., d]`: `W_2 Dropout(relu(W_1 x + b_1)) + b_2`."""
  ff_size: int
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x: Array, *, deterministic: bool) -> Array:
    h = nn.relu(nn.Dense(self.ff_size, name='hidden')(x))
    h = nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
    return nn.Dense(x.shape[-1], name='output')(h)


class EncoderLayer(nn.Module):
  """Pre-norm encoder layer on `x [B, S, d]` with `mask [B, 1, S, S]` (or broadcastable):
  `x + SelfAttn(LN x)`, then `+ FF(LN x)` (each sublayer output dropped out)."""
  num_heads: int
  ff_size: int
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, x: Array, mask: Array, *, deterministic: bool) -> Array:
    drop = lambda y: nn.Dropout(self.dropout_rate)(y, deterministic=deterministic)
    h = nn.LayerNorm(name='attention_norm')(x)
    h = nn.MultiHeadDotProductAttention(self.num_heads, dropout_rate=self.dropout_rate,
                                        attention_fn=softmax_in_float32,
                                        name='attention')(h, mask=mask,
                                                          deterministic=deterministic)
    x = x + drop(h)
    h = FeedForward(self.ff_size, self.dropout_rate, name='ff')(
        nn.LayerNorm(name='ff_norm')(x), deterministic=deterministic)
    return x + drop(h)


class DecoderLayer(nn.Module):
  """Pre-norm decoder layer on `y [B, T, d]`: `y + SelfAttn(LN y)` under
  `self_mask [B, 1, T, T']`, `+ CrossAttn(LN y, memory)` under `cross_mask [B, 1, T|1, S]`,
  `+ FF(LN y)` (each sublayer output dropped out).

  The memory enters as its cross-attention keys and values (`memory_keys_values`,
  computed once per source). With `cache = (keys, values) [B, L, H, d/H]` and
  `position [B]`, `y` is one position (`T = 1`): its self-attention keys and values are
  written into the cache at `position` and it attends over the cache (T' = L);
  otherwise over `y` itself (T' = T).
  """
  num_heads: int
  model_size: int
  ff_size: int
  dropout_rate: float = 0.0

  def setup(self):
    attention = lambda: MultiHeadAttention(self.num_heads, self.model_size, self.dropout_rate)
    self.self_attention_norm = nn.LayerNorm()
    self.self_attention = attention()
    self.cross_attention_norm = nn.LayerNorm()
    self.cross_attention = attention()
    self.ff_norm = nn.LayerNorm()
    self.ff = FeedForward(self.ff_size, self.dropout_rate)
    self.dropout = nn.Dropout(self.dropout_rate)

  def memory_keys_values(self, memory: Array) -> tuple[Array, Array]:
    """`memory [B, S, d]` -> its cross-attention keys and values `[B, S, H, d/H]`."""
    return self.cross_attention.keys_values(memory)

  def __call__(self, y: Array, memory_keys_values: tuple[Array, Array], self_mask: Array,
               cross_mask: Array, *, deterministic: bool, cache: tuple[Array, Array] | None = None,
               position: Array | None = None) -> tuple[Array, tuple[Array, Array] | None, Array]:
    """-> `(y [B, T, d], the updated cache (or None), cross-attention weights [B, H, T, S])`."""
    drop = lambda z: self.dropout(z, deterministic=deterministic)
    h = self.self_attention_norm(y)
    keys, values = self.self_attention.keys_values(h)
    if cache is not None:
      rows = jnp.arange(y.shape[0])
      keys = cache[0].at[rows, position].set(keys[:, 0])
      values = cache[1].at[rows, position].set(values[:, 0])
      cache = keys, values
    h, _ = self.self_attention.attend(h, keys, values, self_mask, deterministic=deterministic)
    y = y + drop(h)
    h, weights = self.cross_attention.attend(self.cross_attention_norm(y), *memory_keys_values,
                                             cross_mask, deterministic=deterministic)
    y = y + drop(h)
    y = y + drop(self.ff(self.ff_norm(y), deterministic=deterministic))
    return y, cache, weights


class TransformerSeq2Seq(nn.Module):
  """Embeddings + positions → pre-norm Transformer encoder → pre-norm Transformer
  decoder → logits over the target vocabulary (see the module docstring).

  Attributes:
    source_vocab_size / target_vocab_size: V_s, V_t (id 0 is padding).
    model_size: d, of the embeddings, every layer and the memory; a multiple of num_heads.
    num_heads: attention heads (each of size d / num_heads).
    num_layers: layers of the encoder, and of the decoder.
    ff_size: the feed-forward hidden size.
    dropout_rate: dropout on the inputs, every sublayer output, the FF hidden layer
      and the attention weights.
    positions: 'sinusoidal' (fixed, any length) | 'learned' (a table per side of
      max_positions rows; longer sequences are an error).
    max_positions: the learned tables' length.
    tie_target_embeddings: the output layer is the target embedding, `logits = E_t h`.
  """
  source_vocab_size: int
  target_vocab_size: int
  model_size: int
  num_heads: int
  num_layers: int
  ff_size: int
  dropout_rate: float = 0.1
  positions: Positions = 'sinusoidal'
  max_positions: int = 512
  tie_target_embeddings: bool = False

  def __post_init__(self):
    if self.model_size % self.num_heads:
      raise ValueError(f'model_size={self.model_size} must be divisible by '
                       f'num_heads={self.num_heads}')
    super().__post_init__()

  def setup(self):
    if self.positions not in POSITIONS:
      raise ValueError(f'positions={self.positions!r}; valid: {list(POSITIONS)}')
    d = self.model_size
    embedding_init = nn.initializers.normal(stddev=d ** -0.5)
    self.source_embed = nn.Embed(self.source_vocab_size, d, embedding_init=embedding_init)
    self.target_embed = nn.Embed(self.target_vocab_size, d, embedding_init=embedding_init)
    if self.positions == 'learned':
      self.source_positions = nn.Embed(self.max_positions, d, embedding_init=embedding_init)
      self.target_positions = nn.Embed(self.max_positions, d, embedding_init=embedding_init)
    self.encoder_layers = [EncoderLayer(self.num_heads, self.ff_size, self.dropout_rate)
                           for _ in range(self.num_layers)]
    self.decoder_layers = [DecoderLayer(self.num_heads, d, self.ff_size, self.dropout_rate)
                           for _ in range(self.num_layers)]
    self.encoder_norm = nn.LayerNorm()
    self.decoder_norm = nn.LayerNorm()
    if not self.tie_target_embeddings:
      self.output = nn.Dense(self.target_vocab_size)
    self.dropout = nn.Dropout(self.dropout_rate)

  def _check_length(self, length: int, what: str) -> None:
    if self.positions == 'learned' and length > self.max_positions:
      raise ValueError(f'{what} of length {length} is longer than max_positions='
                       f'{self.max_positions} (the learned position table)')

  def _positions(self, side: str, length: int) -> Array:
    """The position vectors `P[:length]` `[length, d]` of `side` ('source' | 'target')."""
    if self.positions == 'learned':
      table = self.source_positions if side == 'source' else self.target_positions
      return table(jnp.arange(length))
    return sinusoidal_positions(length, self.model_size)

  def _inputs(self, side: str, ids: Array, *, deterministic: bool) -> Array:
    """`ids [B, L]` of `side` ('source' | 'target') -> `Dropout(√d · E[ids] + P[:L])`
    `[B, L, d]`."""
    length = ids.shape[1]
    self._check_length(length, f'a {side}')
    embed = self.source_embed if side == 'source' else self.target_embed
    x = embed(ids) * math.sqrt(self.model_size)
    x = x + self._positions(side, length)[None].astype(x.dtype)
    return self.dropout(x, deterministic=deterministic)

  def encode(self, source: Array, source_lengths: Array, *,
             deterministic: bool = True) -> dict[str, Any]:
    """`source [B, S]` -> {memory `[B, S, d]` (zero at padding), mask `[B, S]` bool,
    memory_keys_values: per decoder layer, the memory's cross-attention keys and values
    `[B, S, H, d/H]`}."""
    mask = masking.sequence_mask(source_lengths, source.shape[1])
    x = self._inputs('source', source, deterministic=deterministic)
    key_mask = mask[:, None, None, :]                                         # [B, 1, 1, S]
    for layer in self.encoder_layers:
      x = layer(x, key_mask, deterministic=deterministic)
    memory = self.encoder_norm(x) * mask[..., None].astype(x.dtype)
    keys_values = tuple(layer.memory_keys_values(memory) for layer in self.decoder_layers)
    return {'memory': memory, 'mask': mask, 'memory_keys_values': keys_values}

  def initial_carry(self, encoded: dict[str, Any], max_length: int = 0) -> Any:
    """`(cache, t [B] int32)`, zeros: per decoder layer, the self-attention keys and values
    `[B, L, H, d/H]` of the tokens fed so far, and the next position. L = `max_length`
    (> 0, required here) bounds the steps."""
    if (not isinstance(max_length, numbers.Integral) or isinstance(max_length, bool)
        or max_length < 1):
      raise ValueError(f'TransformerSeq2Seq.initial_carry needs max_length, a positive integer '
                       f'(the length of its key/value cache), got {max_length!r}')
    self._check_length(max_length, 'a decoding cache')
    batch = encoded['mask'].shape[0]
    heads = (self.num_heads, self.model_size // self.num_heads)
    dtype = encoded['memory'].dtype
    cache = tuple((jnp.zeros((batch, max_length) + heads, dtype),
                   jnp.zeros((batch, max_length) + heads, dtype))
                  for _ in range(self.num_layers))
    return cache, jnp.zeros((batch,), jnp.int32)

  def _logits(self, h: Array) -> Array:
    return self.target_embed.attend(h) if self.tie_target_embeddings else self.output(h)

  def decode(self, encoded: dict[str, Any], carry: Any, target_inputs: Array,
             target_lengths: Array, *, deterministic: bool = True) -> tuple[Any, None, Array]:
    """Teacher-forced decoder: `(carry unchanged, None, logits [B, T, V_t])`."""
    y = self._inputs('target', target_inputs, deterministic=deterministic)
    target_mask = masking.sequence_mask(target_lengths, target_inputs.shape[1])
    self_mask = nn.combine_masks(nn.make_causal_mask(target_inputs, dtype=jnp.bool_),
                                 target_mask[:, None, None, :], dtype=jnp.bool_)  # [B, 1, T, T]
    cross_mask = encoded['mask'][:, None, None, :]                              # [B, 1, 1, S]
    for layer, keys_values in zip(self.decoder_layers, encoded['memory_keys_values']):
      y, _, _ = layer(y, keys_values, self_mask, cross_mask, deterministic=deterministic)
    return carry, None, self._logits(self.decoder_norm(y))

  def step(self, encoded: dict[str, Any], carry: Any, tokens: Array
           ) -> tuple[Any, Array, Array]:
    """One decoding step from `tokens [B]`: `((cache, t + 1), log p(y_t | ..) [B, V_t],
    α [B, S])`.

    The token at position t attends over the cached keys and values of
    positions ≤ t (its own written in at t) and over the memory's, projected
    once by `encode`: O(t) work per step. α is the last layer's cross-attention
    weights, the mean over heads. At most L = max_length steps (later ones
    overwrite position L - 1).
    """
    cache, t = carry
    length = cache[0][0].shape[1]
    position = jnp.minimum(t, length - 1)
    self._check_length(length, 'a decoding cache')
    y = (self.target_embed(tokens) * math.sqrt(self.model_size)
         + self._positions('target', length)[position])[:, None]                    # [B, 1, d]
    self_mask = (jnp.arange(length)[None] <= position[:, None])[:, None, None, :]  # [B,1,1,L]
    cross_mask = encoded['mask'][:, None, None, :]
    new_cache = []
    for layer, keys_values, layer_cache in zip(self.decoder_layers,
                                                encoded['memory_keys_values'], cache):
      y, layer_cache, weights = layer(y, keys_values, self_mask, cross_mask, deterministic=True,
                                      cache=layer_cache, position=position)
      new_cache.append(layer_cache)
    h = self.decoder_norm(y[:, 0])
    log_probs = jax.nn.log_softmax(self._logits(h).astype(jnp.float32))
    return (tuple(new_cache), t + 1), log_probs, weights[:, :, 0].mean(1).astype(jnp.float32)

  def __call__(self, source: Array, source_lengths: Array, target_inputs: Array,
               target_lengths: Array, *, deterministic: bool,
               sampling_probability: Array | float = 0.0) -> Array:
    """Teacher forcing: logits `[B, T, V_t]` for `target_inputs [B, T]`.

    `sampling_probability` p > 0 (training only) is scheduled sampling in its
    parallel form (Duckworth et al. 2019), as in `RecurrentSeq2Seq`: a first
    teacher-forced pass predicts every token; each input after `<s>` is then
    replaced, with probability p, by the prediction (arg-max, no gradient) for
    its position, and the second pass gives the logits.
    """
    encoded = self.encode(source, source_lengths, deterministic=deterministic)
    _, _, logits = self.decode(encoded, None, target_inputs, target_lengths,
                               deterministic=deterministic)
    if deterministic or (isinstance(sampling_probability, (int, float))
                         and sampling_probability == 0):
      return logits
    mixed = _scheduled_inputs(self.make_rng('dropout'), sampling_probability, target_inputs,
                              logits)
    _, _, logits = self.decode(encoded, None, mixed, target_lengths, deterministic=deterministic)
    return logits
