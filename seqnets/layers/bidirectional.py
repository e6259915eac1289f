"""`Bidirectional`: a forward and a backward recurrence over the same inputs."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import masking
from seqnets.layers import rnn

Array = jax.Array

MERGES = {
    'concat': lambda a, b: jnp.concatenate([a, b], axis=-1),
    'sum': jnp.add,
    'mul': jnp.multiply,
}


def check_call(forward: Any, inputs: Array, lengths: Array | None,
               initial_carry: Any) -> tuple[Array | None, tuple[Any, Any]]:
  """A bidirectional call's checked `lengths` and `(forward, backward)` initial carries
  (None, None when not given); ValueError naming the bad argument. `forward` is the
  forward layer (its `cell`, if any, says how many feature axes the inputs have). Shared
  by the linen and NNX front ends."""
  cell = getattr(forward, 'cell', None)
  axes = 1 if cell is None else rnn.num_feature_axes(cell)
  if inputs.ndim != 2 + axes:
    raise ValueError(f'Bidirectional inputs must be {rnn.expected_shape(axes)}, '
                     f'got shape {inputs.shape}')
  lengths = masking.check_lengths(lengths, inputs.shape[0], inputs.shape[1])
  if initial_carry is None:
    return lengths, (None, None)
  if not (isinstance(initial_carry, (tuple, list)) and len(initial_carry) == 2):
    raise ValueError('Bidirectional initial_carry must be a pair (forward_carry, '
                     f'backward_carry), got {type(initial_carry).__name__}'
                     + (f' of length {len(initial_carry)}'
                        if isinstance(initial_carry, (tuple, list)) else ''))
  return lengths, tuple(initial_carry)


class Bidirectional(nn.Module):
  """Runs `forward` left to right and `backward` right to left, then merges.

  `backward` is called with `reverse=True`, so it reads each sequence from its
  last real step (respecting `lengths`) and its outputs come back aligned in
  time with the forward ones: `y[b, t] = merge(fwd[b, t], bwd[b, t])`.
  Both layers are either seqnets layers (`(inputs, lengths=, reverse=,
  return_carry=, initial_carry=)`, as `seqnets.RNN`) or `flax.linen.RNN`s
  (called with `seq_lengths=`, `keep_order=True`; their outputs past each
  end are zeroed, as `seqnets.RNN` does). `lengths` is checked as
  `masking.check_lengths` says (concrete: integers in [0, T]; traced:
  clipped to [0, T]).

  `initial_carry` is a pair `(forward_carry, backward_carry)`, either may be
  None (the layer's default); each must fit its layer's cell. The backward
  carry is the state before reading each sequence's *last* real step.

  `deterministic` (the regularisers' mode, see `sn.RNN`) is passed to both
  layers when given.

  Inputs `[B, T, F]`, or `[B, T, *feature_dims]` for cells with more feature axes
  (`num_feature_axes` of the forward layer's cell), e.g. `[B, T, H, W, C]` for two
  `ConvLSTMCell`s. The merge is on the last axis (the channels of images).

  Output: `[B, T, H_f + H_b]` for `merge='concat'`, `[B, T, H]` for 'sum'/'mul'
  (`[B, T, *spatial, C_f + C_b]` and `[B, T, *spatial, C]` for images);
  with `return_carry`, `((carry_fwd, carry_bwd), outputs)`: the same pair
  structure `initial_carry` takes.

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
  def __call__(self, inputs: Array, lengths: Array | None = None,
               initial_carry: tuple[Any, Any] | None = None, *,
               return_carry: bool | None = None, deterministic: bool | None = None) -> Any:
    if self.merge not in MERGES:
      raise ValueError(f'Bidirectional merge={self.merge!r}; valid: {sorted(MERGES)}')
    return_carry = self.return_carry if return_carry is None else return_carry
    lengths, (init_f, init_b) = check_call(self.forward, inputs, lengths, initial_carry)
    carry_f, out_f = rnn.call_recurrent(self.forward, inputs, lengths, init_f, reverse=False,
                                        deterministic=deterministic)
    carry_b, out_b = rnn.call_recurrent(self.backward, inputs, lengths, init_b, reverse=True,
                                        deterministic=deterministic)
    outputs = MERGES[self.merge](out_f, out_b)
    return ((carry_f, carry_b), outputs) if return_carry else outputs
