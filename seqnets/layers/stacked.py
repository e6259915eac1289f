"""`StackedRNN`: recurrent layers on top of each other, dropout in between."""

from __future__ import annotations

from typing import Any, Sequence

import jax
from flax import linen as nn

from seqnets.layers import masking
from seqnets.layers import rnn

Array = jax.Array


class StackedRNN(nn.Module):
  """Applies `layers` in order; dropout on the outputs *between* layers only.

  Each layer is an `sn.RNN`, an `sn.Bidirectional` or a `flax.linen.RNN`
  (see `rnn.call_recurrent`). Outputs past each sequence's end stay 0
  (dropout of 0 is 0). `lengths` is checked as `masking.check_lengths` says.

  `initial_carry` is a sequence with one carry per layer, bottom first (a
  pair for a `Bidirectional` layer); None, or a None entry, uses that
  layer's default. Returns the top layer's outputs `[B, T, H]`, or with
  `return_carry` `(tuple_of_final_carries_bottom_to_top, outputs)`: the
  structure `initial_carry` takes, so a long sequence can be run in chunks.

  `deterministic` is required (False in training, True in evaluation): it
  switches the dropout between layers and is passed to every layer (for the
  regularisers of `sn.RNN` and its cells).

  Attributes:
    layers: the recurrent layers, bottom first.
    dropout_rate: dropout between consecutive layers.
    return_carry: also return every layer's final carry.
  """

  layers: Sequence[nn.Module]
  dropout_rate: float = 0.0
  return_carry: bool = False

  @nn.compact
  def __call__(self, inputs: Array, lengths: Array | None = None,
               initial_carry: Sequence[Any] | None = None, *,
               deterministic: bool, return_carry: bool | None = None) -> Any:
    return_carry = self.return_carry if return_carry is None else return_carry
    if inputs.ndim != 3:
      raise ValueError(f'StackedRNN inputs must be [batch, time, features], '
                       f'got shape {inputs.shape}')
    lengths = masking.check_lengths(lengths, inputs.shape[0], inputs.shape[1])
    if initial_carry is None:
      initial_carry = (None,) * len(self.layers)
    elif not (isinstance(initial_carry, (tuple, list)) and len(initial_carry) == len(self.layers)):
      got = (f'{len(initial_carry)} entries' if isinstance(initial_carry, (tuple, list))
             else type(initial_carry).__name__)
      raise ValueError(f'StackedRNN initial_carry must be a sequence of {len(self.layers)} '
                       f'carries, one per layer (bottom first), got {got}')
    carries = []
    x = inputs
    for index, (layer, carry) in enumerate(zip(self.layers, initial_carry)):
      if index > 0 and self.dropout_rate > 0:
        x = nn.Dropout(self.dropout_rate)(x, deterministic=deterministic)
      carry, x = rnn.call_recurrent(layer, x, lengths, carry, deterministic=deterministic)
      carries.append(carry)
    return (tuple(carries), x) if return_carry else x
