"""Recurrent sentence classifier: words → stacked (bi)RNN → one vector per sentence → classes.

Synopsis:
  model = RecurrentClassifier(cell_fn=functools.partial(sn.LSTMCell, 150), vocab_size=V,
                              num_classes=2, pooling='max')
  logits = model.apply(variables, words [B, T], lengths [B], deterministic=True)   # [B, C]

  h = StackedRNN(Dropout(E w))                                      [B, T, H]
  z = pool(h):  'final'     [→h_{n} ; ←h_1] (each direction's state after the whole
                            sentence; the forward state alone when unidirectional)
                'mean'      (1/n) Σ_{t≤n} h_t
                'max'       max_{t≤n} h_t, per feature
                'attention' Σ_{t≤n} α_t h_t,  α = softmax_{t≤n}(vᵀ tanh(W h_t + b))
  logits = W_o Dropout(z) + b_o

Every pooling reads the first n = length steps only, so padding never changes a
result. Parameter names follow `RecurrentLM` (`embed`, forward cells
`layer{i}_cell`), so a language model can initialise it (`config.init_from`).
"""

from __future__ import annotations

import typing
from typing import Callable, Literal

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import masking
from seqnets.layers.attention import masked_softmax
from seqnets.layers.pooling import max_over_time, mean_over_time
from seqnets.models.recurrent_stack import recurrent_stack

Array = jax.Array
Pooling = Literal['final', 'mean', 'max', 'attention']
POOLINGS = typing.get_args(Pooling)


def final_states(h: Array, lengths: Array, bidirectional: bool) -> Array:
  """`h [B, T, H]` (`[→h ; ←h]` halves when bidirectional) -> `[B, H]`: the forward half
  at step n - 1 and the backward half at step 0 (each has read the whole sentence)."""
  last = jnp.take_along_axis(h, jnp.maximum(lengths - 1, 0)[:, None, None], axis=1)[:, 0]
  if not bidirectional:
    return last
  half = h.shape[-1] // 2
  return jnp.concatenate([last[:, :half], h[:, 0, half:]], -1)


class RecurrentClassifier(nn.Module):
  """Logits `[B, C]` for `words [B, T]` (see the module docstring).

  Attributes:
    cell_fn: returns a fresh cell, e.g. `functools.partial(sn.LSTMCell, 150)`.
    vocab_size: word ids (0 is padding); num_classes: C.
    embedding_size: E. num_layers, bidirectional: the recurrent stack.
    pooling: 'final' | 'mean' | 'max' | 'attention'. attention_size: of W (attention).
    embedding_dropout_rate: dropout on the embeddings; dropout_rate: between layers and on z.
    unroll, remat, variational_input_rate, variational_state_rate: as in `sn.RNN`
      (remat 0: off).
  """
  cell_fn: Callable[..., nn.RNNCellBase]
  vocab_size: int
  num_classes: int
  embedding_size: int = 300
  num_layers: int = 1
  bidirectional: bool = True
  pooling: Pooling = 'max'
  attention_size: int = 100
  embedding_dropout_rate: float = 0.0
  dropout_rate: float = 0.0
  unroll: int | None = None
  remat: int = 0
  variational_input_rate: float = 0.0
  variational_state_rate: float = 0.0

  @nn.compact
  def __call__(self, words: Array, lengths: Array, *, deterministic: bool) -> Array:
    if self.pooling not in POOLINGS:
      raise ValueError(f'pooling={self.pooling!r}; valid: {list(POOLINGS)}')
    x = nn.Embed(self.vocab_size, self.embedding_size, name='embed')(words)      # [B, T, E]
    x = nn.Dropout(self.embedding_dropout_rate)(x, deterministic=deterministic)
    stack = recurrent_stack(self.cell_fn, self.num_layers, self.bidirectional, self.dropout_rate,
                            self.unroll, self.variational_input_rate,
                            self.variational_state_rate, remat=self.remat)
    h = stack(x, lengths, deterministic=deterministic)                           # [B, T, H]
    if self.pooling == 'final':
      z = final_states(h, lengths, self.bidirectional)
    elif self.pooling == 'mean':
      z = mean_over_time(h, lengths)
    elif self.pooling == 'max':
      z = max_over_time(h, lengths)
    else:
      scores = nn.Dense(1, name='attention_score')(
          jnp.tanh(nn.Dense(self.attention_size, name='attention_hidden')(h)))[..., 0]
      weights = masked_softmax(scores, masking.sequence_mask(lengths, h.shape[1]))  # [B, T]
      self.sow('intermediates', 'attention_weights', weights)
      z = jnp.einsum('bt,bth->bh', weights, h)
    z = nn.Dropout(self.dropout_rate)(z, deterministic=deterministic)
    return nn.Dense(self.num_classes, name='output')(z)                          # [B, C]
