"""`RNN`: runs a recurrent cell over time with `jax.lax.scan`, length-aware.

Synopsis:
  rnn = sn.RNN(sn.LSTMCell(128))
  y = rnn.apply(params, x, lengths=lengths)             # [B, T, H]
  (c, h), y = sn.RNN(cell, return_carry=True).apply(...) # final carry after the last real step
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import masking

Array = jax.Array
Carry = Any


class RNN(nn.Module):
  """Scans `cell` over the time axis of `inputs: [B, T, F]`.

  Contract:
    * `lengths: [B] int` marks real steps `t < lengths[b]`. Past a sequence's
      end the carry is frozen and the output is 0, so padding never changes
      a result; the final carry is the carry after the last real step.
    * `reverse=True` reads each sequence backwards *within its own length*
      and returns outputs aligned with the inputs: `outputs[b, t]` has seen
      `x[b, t:lengths[b]]`.
    * `initial_carry` defaults to `cell.initialize_carry` (zeros).
    * Returns `outputs: [B, T, H]`, or `(final_carry, outputs)` when
      `return_carry` is set (flax's order).

  Without `lengths`, no masking happens at all (the fast path). The scan body
  is the cell's own step, so its matmuls for x_t and h_{t-1} run inside the
  loop; a benchmark (benchmarks/rnn_bench.py) decides such choices.

  Attributes:
    cell: any `flax.linen.RNNCellBase` with one feature axis.
    reverse: process right to left (see above).
    return_carry: also return the final carry.
    unroll: `jax.lax.scan` unroll factor.
  """

  cell: nn.RNNCellBase
  reverse: bool = False
  return_carry: bool = False
  unroll: int = 1

  @nn.compact
  def __call__(
      self,
      inputs: Array,
      lengths: Array | None = None,
      initial_carry: Carry | None = None,
      *,
      reverse: bool | None = None,
      return_carry: bool | None = None,
  ) -> Array | tuple[Carry, Array]:
    """Args: `inputs [B, T, F]`, `lengths [B] int` (optional), `initial_carry`.

    `reverse` / `return_carry` override the attributes for this call (used by
    `Bidirectional`).
    """
    reverse = self.reverse if reverse is None else reverse
    return_carry = self.return_carry if return_carry is None else return_carry
    if inputs.ndim != 3:
      raise ValueError(f'RNN inputs must be [batch, time, features], got shape {inputs.shape}')

    if reverse:
      inputs = masking.flip_sequences(inputs, lengths)
    carry = initial_carry
    if carry is None:
      carry = self.cell.initialize_carry(jax.random.key(0), inputs[:, 0].shape)

    if lengths is None:
      def step(cell, carry, x_t):
        return cell(carry, x_t)
      xs = inputs
    else:
      def step(cell, carry, x_and_mask):
        x_t, m_t = x_and_mask                        # [B, F], [B]
        new_carry, y_t = cell(carry, x_t)
        keep = lambda new, old: jnp.where(m_t[:, None], new, old)
        new_carry = jax.tree_util.tree_map(keep, new_carry, carry)
        return new_carry, jnp.where(m_t[:, None], y_t, 0)
      xs = (inputs, masking.sequence_mask(lengths, inputs.shape[1]))

    scan = nn.scan(
        step,
        variable_broadcast='params',
        split_rngs={'params': False},
        in_axes=1,
        out_axes=1,
        unroll=self.unroll,
    )
    carry, outputs = scan(self.cell, carry, xs)

    if reverse:
      outputs = masking.flip_sequences(outputs, lengths)
    return (carry, outputs) if return_carry else outputs
