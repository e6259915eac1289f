"""Recurrent model read out at every step or at the end: tokens or real vectors → stacked
RNN → Dense. Read out at every step it is the per-step tagger of the formal languages
(next-symbol prediction, one-hot inputs as in Gers & Schmidhuber 2001; config name
`recurrent_tagger`); read out at the end, the model of the long-memory benchmarks (copy
memory, adding, sequential digits; `sequence_readout`).

Synopsis:
  model = SequenceReadout(cell_fn=functools.partial(sn.LSTMCell, 128), num_outputs=10,
                          input_mode='one_hot', vocab_size=10, readout='every_step')
  logits = model.apply(variables, tokens [B, T], lengths [B], deterministic=True)   # [B, T, 10]
  model = SequenceReadout(cell_fn=..., num_outputs=1, input_mode='real', readout='final')
  y = model.apply(variables, x [B, T, F], lengths [B], deterministic=True)          # [B, 1]

  x_t = onehot(token_t) or E token_t ('one_hot'; E when embedding_size > 0), or x_t ('real')
  h = StackedRNN(x)                        [B, T, H']   (H': the top cell's output size;
                                                         twice it when bidirectional)
  'every_step':  y_t = W h_t + b           [B, T, V]
  'final':       y = W h_{n-1} + b         [B, V],  n = the row's length

The readout takes whatever the top cell outputs (a complex-state cell's `[B, 2N]`, say),
never assuming it is `hidden_size` wide. Outputs past a row's end are 0 before the
readout, so padding never changes a result; a row of length 0 reads out the bias alone.
Parameter names follow `recurrent_stack` (forward cells `layer{i}_cell`, backward cells
`layer{i}_backward_cell`), and both readouts share them (`output`), so one set of
parameters serves either.
"""

from __future__ import annotations

import typing
from typing import Callable, Literal

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.models.recurrent_stack import recurrent_stack

Array = jax.Array
InputMode = Literal['one_hot', 'real']
Readout = Literal['every_step', 'final']
INPUT_MODES = typing.get_args(InputMode)
READOUTS = typing.get_args(Readout)


def last_outputs(h: Array, lengths: Array) -> Array:
  """`h [B, T, H]` -> `[B, H]`: each row's output at step `lengths - 1` (step 0 for length 0)."""
  index = jnp.maximum(lengths - 1, 0)[:, None, None]
  return jnp.take_along_axis(h, index, axis=1)[:, 0]


class SequenceReadout(nn.Module):
  """Outputs per step `[B, T, V]` or per sequence `[B, V]` (see the module docstring).

  Attributes:
    cell_fn: returns a fresh cell, e.g. `functools.partial(sn.LSTMCell, 128)`; any
      `nn.RNNCellBase` that `sn.RNN` runs.
    num_outputs: V.
    num_layers: stacked recurrent layers.
    input_mode: 'one_hot' (inputs `[B, T]` int token ids < vocab_size) or 'real'
      (inputs `[B, T, F]` float).
    vocab_size: token ids ('one_hot' only).
    embedding_size: 'one_hot' only: a learned embedding of this size instead of one-hot
      vectors (0: one-hot).
    bidirectional: a backward recurrence in every layer ('every_step' only: a final
      readout would see the backward direction after one step).
    readout: 'every_step' or 'final'.
    dropout_rate: dropout between recurrent layers.
    unroll, remat, variational_input_rate, variational_state_rate: as in `sn.RNN`
      (remat 0: off).
  """
  cell_fn: Callable[..., nn.RNNCellBase]
  num_outputs: int
  num_layers: int = 1
  input_mode: InputMode = 'real'
  vocab_size: int = 0
  embedding_size: int = 0
  bidirectional: bool = False
  readout: Readout = 'final'
  dropout_rate: float = 0.0
  unroll: int | None = None
  remat: int = 0
  variational_input_rate: float = 0.0
  variational_state_rate: float = 0.0

  def __post_init__(self):
    if self.embedding_size and self.input_mode != 'one_hot':
      raise ValueError(f'embedding_size={self.embedding_size} needs token inputs; this data '
                       f'gives real-valued vectors (use 0)')
    if self.bidirectional and self.readout != 'every_step':
      raise ValueError("bidirectional=True needs readout='every_step' (a final readout would "
                       'see the backward direction after one step)')
    super().__post_init__()

  @nn.compact
  def __call__(self, inputs: Array, lengths: Array, *, deterministic: bool) -> Array:
    """`inputs [B, T]` ('one_hot') or `[B, T, F]` ('real'), `lengths [B]` -> `[B, T, V]`
    ('every_step') or `[B, V]` ('final')."""
    if self.input_mode not in INPUT_MODES:
      raise ValueError(f'input_mode={self.input_mode!r}; valid: {list(INPUT_MODES)}')
    if self.readout not in READOUTS:
      raise ValueError(f'readout={self.readout!r}; valid: {list(READOUTS)}')
    if self.input_mode == 'one_hot':
      if inputs.ndim != 2:
        raise ValueError(f"input_mode='one_hot' takes token ids [B, T], got shape {inputs.shape}")
      if self.embedding_size:
        x = nn.Embed(self.vocab_size, self.embedding_size)(inputs)             # [B, T, E]
      else:
        x = jax.nn.one_hot(inputs, self.vocab_size)                            # [B, T, V_in]
    else:
      if inputs.ndim != 3:
        raise ValueError(f"input_mode='real' takes inputs [B, T, F], got shape {inputs.shape}")
      x = inputs.astype(jnp.result_type(inputs, jnp.float32))
    stack = recurrent_stack(self.cell_fn, self.num_layers, self.bidirectional,
                            self.dropout_rate, self.unroll, self.variational_input_rate,
                            self.variational_state_rate, remat=self.remat)
    h = stack(x, lengths, deterministic=deterministic)                           # [B, T, H']
    if self.readout == 'final':
      h = last_outputs(h, lengths)                                               # [B, H']
    return nn.Dense(self.num_outputs, name='output')(h)
