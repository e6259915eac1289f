"""`Bidirectional`: a forward and a backward recurrence over the same inputs."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

Array = jax.Array

MERGES = {
    'concat': lambda a, b: jnp.concatenate([a, b], axis=-1),
    'sum': jnp.add,
    'mul': jnp.multiply,
}


class Bidirectional(nn.Module):
  """Runs `forward` left to right and `backward` right to left, then merges.

  `backward` is called with `reverse=True`, so it reads each sequence from its
  last real step (respecting `lengths`) and its outputs come back aligned in
  time with the forward ones: `y[b, t] = merge(fwd[b, t], bwd[b, t])`.
  Both layers must accept `(inputs, lengths=, reverse=, return_carry=)`, as
  `seqnets.RNN` does.

  Output: `[B, T, H_f + H_b]` for `merge='concat'`, `[B, T, H]` for 'sum'/'mul';
  with `return_carry`, `((carry_fwd, carry_bwd), outputs)`.

  Attributes:
    forward: forward recurrence, e.g. `sn.RNN(sn.LSTMCell(64))`.
    backward: backward recurrence (a separate instance with its own params).
    merge: 'concat', 'sum' or 'mul'.
    return_carry: also return both final carries.
  """

  forward: nn.Module
  backward: nn.Module
  merge: str = 'concat'
  return_carry: bool = False

  @nn.compact
  def __call__(self, inputs: Array, lengths: Array | None = None, *,
               return_carry: bool | None = None) -> Any:
    if self.merge not in MERGES:
      raise ValueError(f'Bidirectional merge={self.merge!r}; valid: {sorted(MERGES)}')
    return_carry = self.return_carry if return_carry is None else return_carry
    carry_f, out_f = self.forward(inputs, lengths=lengths, reverse=False, return_carry=True)
    carry_b, out_b = self.backward(inputs, lengths=lengths, reverse=True, return_carry=True)
    outputs = MERGES[self.merge](out_f, out_b)
    return ((carry_f, carry_b), outputs) if return_carry else outputs
