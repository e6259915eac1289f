"""Recurrent encoder-decoder (Sutskever et al. 2014; Cho et al. 2014), with or without attention.

Synopsis:
  model = RecurrentSeq2Seq(cell_fn, cell_fn, source_vocab_size=V_s, target_vocab_size=V_t,
                           embedding_size=64, context='attention')
  logits = model.apply(variables, source, source_lengths, target_inputs, target_lengths,
                       deterministic=True)                                  # [B, T, V_t]
  encoded = model.apply(variables, source, source_lengths, method='encode')
  carry = model.apply(variables, encoded, max_length, method='initial_carry')
  carry, log_probs, alpha = model.apply(variables, encoded, carry, tokens, method='step')

Every decoding model in seqnets (this one and `TransformerSeq2Seq`) has these four
methods; `seqnets.decoding.translate` decodes any of them greedily or with beam search.

`target_inputs` is `<s> y_1 .. y_{n}` and the logits predict `y_1 .. y_n </s>`
(teacher forcing). The three ways the decoder sees the source (`context`):
  initial     the encoder's final state, through the bridge, is the decoder's
              initial state, and nothing else (the bottleneck)
  every_step  as `initial`, and the encoder summary z is also an input of every
              step: s_t = cell(s_{t-1}, [E y_{t-1}; z])
  attention   `AttentionCell` over all encoder states (score and placement from
              the attributes); padded source positions get no weight
The summary z is the top encoder layer's final hidden state (both directions,
concatenated, for a bidirectional encoder); the bridge maps it to every part
of the decoder's initial state, `tanh(W z + b)` (`bridge=False`: zeros).
"""

from __future__ import annotations

import typing
from typing import Any, Callable, Literal

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import attention as attention_lib
from seqnets.layers import masking
from seqnets.layers.attention import Placement, Score
from seqnets.layers.rnn import RNN
from seqnets.models.recurrent_stack import recurrent_stack

Array = jax.Array
Context = Literal['initial', 'every_step', 'attention']
CONTEXTS = typing.get_args(Context)


def _final_hidden(carry: Any, bidirectional: bool) -> Array:
  """The top layer's final hidden state `[B, H]` (`[B, 2H]` bidirectional)."""
  if bidirectional:
    forward, backward = carry
    return jnp.concatenate([attention_lib.hidden_state(forward),
                            attention_lib.hidden_state(backward)], -1)
  return attention_lib.hidden_state(carry)


class RecurrentDecoder(nn.Module):
  """One recurrent layer over the target side: `(encoded, inputs [B, T, E], lengths,
  carry) -> (final carry, α [B, T, S] or None, outputs [B, T, O])`."""
  cell_fn: Callable[..., nn.RNNCellBase]
  context: Context = 'attention'
  score: Score = 'additive'
  placement: Placement = 'bahdanau'
  attention_size: int = 0
  unroll: int | None = None
  remat: int = 0

  def _make_cell(self, encoded: dict[str, Array], bound: bool = True) -> nn.RNNCellBase:
    """The decoder's cell, wrapped with attention when `context='attention'`;
    `bound=False` makes an unbound copy (for the carry's shapes only)."""
    names = {'name': 'cell'} if bound else {'parent': None}
    cell = self.cell_fn(**names)
    if self.context != 'attention':
      return cell
    return attention_lib.AttentionCell(
        cell, memory=encoded['memory'], memory_mask=encoded['mask'], keys=encoded['keys'],
        score=self.score, placement=self.placement, attention_size=self.attention_size,
        **({'name': 'attention'} if bound else {'parent': None}))

  @nn.compact
  def __call__(self, encoded: dict[str, Array], inputs: Array, lengths: Array, carry: Any, *,
               deterministic: bool) -> tuple[Any, Array | None, Array]:
    if self.context == 'every_step':
      summary = jnp.broadcast_to(encoded['summary'][:, None, :],
                                 inputs.shape[:2] + encoded['summary'].shape[-1:])
      inputs = jnp.concatenate([inputs, summary.astype(inputs.dtype)], -1)
    layer = RNN(self._make_cell(encoded), unroll=self.unroll, remat=self.remat,
                return_carry=True,
                return_all_carries=self.context == 'attention')
    results = layer(inputs, lengths, carry, deterministic=deterministic)
    if self.context == 'attention':
      final, carries, outputs = results
      return final, carries[2], outputs
    final, outputs = results
    return final, None, outputs

  def zero_carry(self, encoded: dict[str, Array], input_size: int) -> Any:
    """The zero carry for `encoded`'s batch and decoder inputs of `input_size` features."""
    if self.context == 'every_step':
      input_size += encoded['summary'].shape[-1]
    batch = encoded['memory'].shape[0]
    return self._make_cell(encoded, bound=False).initialize_carry(jax.random.key(0),
                                                                  (batch, input_size))


class RecurrentDecoding(nn.Module):
  """The decoding methods shared by the models with a `RecurrentDecoder`.

  A subclass defines `encode` and, in `setup`: `target_embed` (nn.Embed),
  `decoder` (a RecurrentDecoder), `output` (nn.Dense over the target
  vocabulary), `dropout` (nn.Dropout), and `bridges` (one nn.Dense per leaf of
  the decoder cell's carry) when its `bridge` attribute is True; and the
  attributes `embedding_size` and `bridge`.
  """

  def initial_carry(self, encoded: dict[str, Array], max_length: int = 0) -> Any:
    """The decoder's initial state: the bridge of the summary (or zeros), zero attention
    state. (`max_length`, the most steps decoding will take, is unused here.)"""
    del max_length
    zeros = self.decoder.zero_carry(encoded, self.embedding_size)
    attending = self.decoder.context == 'attention'
    cell_carry = zeros[0] if attending else zeros
    if self.bridge:
      leaves, treedef = jax.tree_util.tree_flatten(cell_carry)
      leaves = [jnp.tanh(bridge(encoded['summary'])).astype(leaf.dtype)
                for bridge, leaf in zip(self.bridges, leaves)]
      cell_carry = jax.tree_util.tree_unflatten(treedef, leaves)
    return (cell_carry, *zeros[1:]) if attending else cell_carry

  def decode(self, encoded: dict[str, Array], carry: Any, target_inputs: Array,
             target_lengths: Array, *, deterministic: bool = True
             ) -> tuple[Any, Array | None, Array]:
    """Teacher-forced decoder: `(final carry, α [B, T, S] or None, logits [B, T, V_t])`."""
    y = self.dropout(self.target_embed(target_inputs), deterministic=deterministic)
    carry, weights, h = self.decoder(encoded, y, target_lengths, carry,
                                     deterministic=deterministic)
    h = self.dropout(h, deterministic=deterministic)
    return carry, weights, self.output(h)

  def step(self, encoded: dict[str, Array], carry: Any, tokens: Array
           ) -> tuple[Any, Array, Array]:
    """One decoding step from `tokens [B]`: `(carry, log p(y_t | ..) [B, V_t], α [B, S])`
    (α is zeros without attention)."""
    carry, weights, logits = self.decode(encoded, carry, tokens[:, None],
                                         jnp.ones_like(tokens), deterministic=True)
    if weights is None:
      weights = jnp.zeros(encoded['mask'].shape, logits.dtype)
    else:
      weights = weights[:, 0]
    return carry, jax.nn.log_softmax(logits[:, 0].astype(jnp.float32)), weights

  def __call__(self, source: Array, source_lengths: Array, target_inputs: Array,
               target_lengths: Array, *, deterministic: bool,
               sampling_probability: Array | float = 0.0) -> Array:
    """Teacher forcing: logits `[B, T, V_t]` for `target_inputs [B, T]`.

    `sampling_probability` p > 0 (training only) is scheduled sampling in its
    parallel form (Duckworth et al. 2019): a first teacher-forced pass predicts
    every token; each input after `<s>` is then replaced, with probability p,
    by the prediction (arg-max, no gradient) for its position, and the second
    pass gives the logits.
    """
    encoded = self.encode(source, source_lengths, deterministic=deterministic)
    carry = self.initial_carry(encoded)
    _, _, logits = self.decode(encoded, carry, target_inputs, target_lengths,
                               deterministic=deterministic)
    if deterministic or (isinstance(sampling_probability, (int, float)) and sampling_probability == 0):
      return logits
    predicted = jax.lax.stop_gradient(jnp.argmax(logits, -1)).astype(target_inputs.dtype)
    use = jax.random.bernoulli(self.make_rng('dropout'), sampling_probability,
                               target_inputs.shape)
    use = use.at[:, 0].set(False)                       # <s> stays
    mixed = jnp.where(use, jnp.roll(predicted, 1, axis=1), target_inputs)
    _, _, logits = self.decode(encoded, carry, mixed, target_lengths, deterministic=deterministic)
    return logits


class RecurrentSeq2Seq(RecurrentDecoding):
  """Embeddings → recurrent encoder (stacked, optionally bidirectional) → bridge →
  recurrent decoder (see the module docstring) → Dense over the target vocabulary.

  Attributes:
    encoder_cell_fn / decoder_cell_fn: return a fresh cell (`name=` given).
    source_vocab_size / target_vocab_size: V_s, V_t (id 0 is padding).
    embedding_size: E of both embeddings.
    encoder_layers: stacked encoder layers.
    bidirectional: every encoder layer reads both ways (memory size 2H).
    context: 'initial' | 'every_step' | 'attention'.
    score / placement / attention_size: the attention (`sn.AttentionCell`).
    bridge: map the encoder summary to the decoder's initial state (False: zeros).
    dropout_rate: dropout on the embeddings, between encoder layers and on the
      decoder outputs.
    unroll: scan unroll factor (None: `sn.RNN`'s per platform).
    remat: k > 0 keeps the carry of every k-th step only, in the encoder and the decoder,
      and recomputes the rest in the backward pass (`sn.RNN`); 0: off.
  """
  encoder_cell_fn: Callable[..., nn.RNNCellBase]
  decoder_cell_fn: Callable[..., nn.RNNCellBase]
  source_vocab_size: int
  target_vocab_size: int
  embedding_size: int
  encoder_layers: int = 1
  bidirectional: bool = False
  context: Context = 'attention'
  score: Score = 'additive'
  placement: Placement = 'bahdanau'
  attention_size: int = 0
  bridge: bool = True
  dropout_rate: float = 0.0
  unroll: int | None = None
  remat: int = 0

  def __post_init__(self):
    if self.context == 'attention' and self.score == 'dot':
      width = self.encoder_cell_fn(parent=None).features
      memory = width * (2 if self.bidirectional else 1)
      decoder = self.decoder_cell_fn(parent=None).features
      if memory != decoder:
        raise ValueError(f"score='dot' needs the encoder states ({memory}) and the decoder "
                         f'state ({decoder}) of one size: set the decoder hidden size to {memory}')
    super().__post_init__()

  def setup(self):
    if self.context not in CONTEXTS:
      raise ValueError(f'context={self.context!r}; valid: {list(CONTEXTS)}')
    self.source_embed = nn.Embed(self.source_vocab_size, self.embedding_size)
    self.target_embed = nn.Embed(self.target_vocab_size, self.embedding_size)
    self.encoder = recurrent_stack(self.encoder_cell_fn, self.encoder_layers,
                                   bidirectional=self.bidirectional,
                                   dropout_rate=self.dropout_rate, unroll=self.unroll,
                                   prefix='encoder', remat=self.remat)
    self.decoder = RecurrentDecoder(self.decoder_cell_fn, self.context, self.score,
                                    self.placement, self.attention_size, self.unroll,
                                    remat=self.remat)
    if self.context == 'attention':
      decoder_size = self.decoder_cell_fn(parent=None).features
      self.memory_keys = attention_lib.MemoryKeys(self.score, decoder_size,
                                                  self.attention_size or decoder_size)
    if self.bridge:
      template = self.decoder_cell_fn(parent=None).initialize_carry(jax.random.key(0), (1, 1))
      self.bridges = [nn.Dense(leaf.shape[-1]) for leaf in jax.tree_util.tree_leaves(template)]
    self.output = nn.Dense(self.target_vocab_size)
    self.dropout = nn.Dropout(self.dropout_rate)

  def encode(self, source: Array, source_lengths: Array, *,
             deterministic: bool = True) -> dict[str, Array]:
    """`source [B, S]` -> {memory `[B, S, D]`, mask `[B, S]`, keys, summary `[B, D]`}."""
    x = self.dropout(self.source_embed(source), deterministic=deterministic)
    carries, memory = self.encoder(x, source_lengths, deterministic=deterministic,
                                   return_carry=True)
    mask = masking.sequence_mask(source_lengths, source.shape[1])
    encoded = {'memory': memory, 'mask': mask,
               'summary': _final_hidden(carries[-1], self.bidirectional)}
    encoded['keys'] = self.memory_keys(memory) if self.context == 'attention' else memory
    return encoded
