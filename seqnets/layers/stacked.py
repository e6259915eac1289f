"""`StackedRNN`: recurrent layers on top of each other, dropout in between."""

from __future__ import annotations

from typing import Any, Sequence

import jax
from flax import linen as nn

Array = jax.Array


class StackedRNN(nn.Module):
  """Applies `layers` in order; dropout on the outputs *between* layers only.

  Each layer takes `(inputs [B, T, F], lengths=, return_carry=)` (an `sn.RNN`
  or `sn.Bidirectional`). Outputs past each sequence's end stay 0 (dropout
  of 0 is 0).

  Returns the top layer's outputs `[B, T, H]`, or with `return_carry`
  `(tuple_of_final_carries_bottom_to_top, outputs)`.

  Attributes:
    layers: the recurrent layers, bottom first.
    dropout_rate: dropout between consecutive layers.
    return_carry: also return every layer's final carry.
  """

  layers: Sequence[nn.Module]
  dropout_rate: float = 0.0
  return_carry: bool = False

  @nn.compact
  def __call__(self, inputs: Array, lengths: Array | None = None, *,
               deterministic: bool = True, return_carry: bool | None = None) -> Any:
    return_carry = self.return_carry if return_carry is None else return_carry
    carries = []
    x = inputs
    for index, layer in enumerate(self.layers):
      if index > 0 and self.dropout_rate > 0:
        x = nn.Dropout(self.dropout_rate)(x, deterministic=deterministic)
      carry, x = layer(x, lengths=lengths, return_carry=True)
      carries.append(carry)
    return (tuple(carries), x) if return_carry else x
