"""Per-step recurrent model: tokens → (embedding | one-hot) → stacked RNN → Dense."""

from __future__ import annotations

from typing import Callable

import jax
from flax import linen as nn

from seqnets.layers.bidirectional import Bidirectional
from seqnets.layers.rnn import RNN
from seqnets.layers.stacked import StackedRNN


class RecurrentTagger(nn.Module):
  """Maps `tokens: [B, T] int` to per-step outputs `[B, T, V]` (logits).

  Used for next-symbol prediction on formal languages (one-hot inputs, as in
  Gers & Schmidhuber 2001) and for tagging (embedded inputs).

  Attributes:
    cell_fn: returns a fresh cell, e.g. `functools.partial(sn.LSTMCell, 32)`.
    vocab_size: number of input token ids (0 is padding).
    num_outputs: V.
    num_layers: stacked recurrent layers.
    embedding_size: 0 for one-hot inputs, else a learned embedding of this size.
    bidirectional: concat a backward recurrence in every layer.
    dropout_rate: dropout between recurrent layers.
    unroll: scan unroll factor.
    variational_input_rate / variational_state_rate: variational dropout in every
      recurrent layer (see `sn.RNN`); the cells' regularisers come with `cell_fn`.
  """

  cell_fn: Callable[[], nn.RNNCellBase]
  vocab_size: int
  num_outputs: int
  num_layers: int = 1
  embedding_size: int = 0
  bidirectional: bool = False
  dropout_rate: float = 0.0
  unroll: int = 1
  variational_input_rate: float = 0.0
  variational_state_rate: float = 0.0

  @nn.compact
  def __call__(self, tokens: jax.Array, lengths: jax.Array, *, deterministic: bool) -> jax.Array:
    """`tokens [B, T]`, `lengths [B]` -> logits `[B, T, V]`; `deterministic`: evaluation mode."""
    if self.embedding_size:
      x = nn.Embed(self.vocab_size, self.embedding_size)(tokens)        # [B, T, E]
    else:
      x = jax.nn.one_hot(tokens, self.vocab_size)                        # [B, T, V_in]
    rnn = lambda name: RNN(self.cell_fn(name=name), unroll=self.unroll,
                           variational_input_rate=self.variational_input_rate,
                           variational_state_rate=self.variational_state_rate)
    def layer(index):
      # Cells made here are scoped to this module; explicit names keep the param tree readable.
      if self.bidirectional:
        return Bidirectional(rnn(f'layer{index}_forward_cell'), rnn(f'layer{index}_backward_cell'))
      return rnn(f'layer{index}_cell')
    stack = StackedRNN([layer(i) for i in range(self.num_layers)], dropout_rate=self.dropout_rate)
    h = stack(x, lengths, deterministic=deterministic)                   # [B, T, H]
    return nn.Dense(self.num_outputs, name='output')(h)                  # [B, T, V]
