"""Recurrent language model: tokens → embedding → stacked RNN → softmax over the vocabulary."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.models.recurrent_stack import recurrent_stack

Array = jax.Array


class RecurrentLM(nn.Module):
  """`p(x_{t+1} | x_1..x_t) = softmax(O · d_o(RNN(d_e(E x)))_t)`.

  Calls (`tokens [B, T]`, `lengths [B]`; logits `[B, T, V]`):
    model(tokens, lengths, deterministic=...)               # from a zero state
    model(tokens, lengths, reset=r, ...)                     # truncated BPTT: the state
        # is carried in the 'carry' collection, zeroed on rows with r = 1; the state
        # after the first `carry_steps` steps is stored for the next window (gradients
        # stop there)
    carry, logits = model(tokens, lengths, initial_carry=c, return_carry=True, ...)
        # generation: start from c (None: zeros), return the state after `lengths` steps

  Attributes:
    cell_fn: returns a fresh cell, e.g. `functools.partial(sn.LSTMCell, 512)`.
    vocab_size: V (input and output).
    embedding_size: E.
    num_layers: stacked recurrent layers.
    tie_embeddings: the output matrix is the embedding (Press & Wolf 2017; Inan et
      al. 2017); when the top layer's size is not E, a Dense layer maps it to E first.
    embedding_dropout_rate: dropout on the embedded inputs.
    dropout_rate: dropout between recurrent layers.
    output_dropout_rate: dropout on the top layer's outputs.
    unroll: scan unroll factor (None: `sn.RNN`'s per platform).
    remat: k > 0 keeps the carry of every k-th step only and recomputes the rest in the
      backward pass (`sn.RNN`): O(T/k + k) activation memory for long windows; 0: off.
    variational_input_rate / variational_state_rate: variational dropout in every layer
      (with `carry_steps` shorter than the window, each part of the window draws its own).
    carry_steps: truncated BPTT's k₁, the steps after which the state is stored
      (0: the whole window).
  """

  cell_fn: Callable[..., nn.RNNCellBase]
  vocab_size: int
  embedding_size: int
  num_layers: int = 1
  tie_embeddings: bool = False
  embedding_dropout_rate: float = 0.0
  dropout_rate: float = 0.0
  output_dropout_rate: float = 0.0
  unroll: int | None = None
  remat: int = 0
  variational_input_rate: float = 0.0
  variational_state_rate: float = 0.0
  carry_steps: int = 0

  def zero_carry(self, batch_size: int) -> tuple[Any, ...]:
    """The zero state of every layer, bottom first, for `batch_size` rows."""
    shapes = [self.embedding_size] * self.num_layers
    return tuple(self.cell_fn(parent=None).initialize_carry(jax.random.key(0), (batch_size, f))
                 for f in shapes)

  @nn.compact
  def __call__(self, tokens: Array, lengths: Array, *, deterministic: bool,
               reset: Array | None = None, initial_carry: Sequence[Any] | None = None, return_carry: bool = False) -> Any:
    embed = nn.Embed(self.vocab_size, self.embedding_size, name='embed')
    x = embed(tokens)                                                     # [B, T, E]
    x = nn.Dropout(self.embedding_dropout_rate)(x, deterministic=deterministic)
    stack = recurrent_stack(self.cell_fn, self.num_layers, dropout_rate=self.dropout_rate,
                            unroll=self.unroll, variational_input_rate=self.variational_input_rate,
                            variational_state_rate=self.variational_state_rate,
                            remat=self.remat)
    run = lambda x, lengths, carry: stack(x, lengths, carry, deterministic=deterministic,
                                          return_carry=True)
    if reset is not None:
      carry, h = self._carried(run, x, lengths, reset)
    else:
      carry, h = run(x, lengths, initial_carry)                         # [B, T, H]
    h = nn.Dropout(self.output_dropout_rate)(h, deterministic=deterministic)
    if self.tie_embeddings:
      if h.shape[-1] != self.embedding_size:
        h = nn.Dense(self.embedding_size, name='projection')(h)
      logits = embed.attend(h) + self.param('output_bias', nn.initializers.zeros_init(),
                                            (self.vocab_size,))
    else:
      logits = nn.Dense(self.vocab_size, name='output')(h)              # [B, T, V]
    return (carry, logits) if return_carry else logits

  def _carried(self, run, x: Array, lengths: Array, reset: Array):
    """Truncated BPTT: the stored state (zeroed where `reset`) in, the state after
    `carry_steps` steps stored for the next window."""
    batch, steps = x.shape[:2]
    stored = self.variable('carry', 'state', lambda: self.zero_carry(batch))
    keep = (reset == 0)[:, None]
    carry = jax.tree_util.tree_map(
        lambda c: jnp.where(keep, jax.lax.stop_gradient(c), jnp.zeros_like(c)), stored.value)
    k1 = self.carry_steps or steps
    if k1 > steps:
      raise ValueError(f'carry_steps={k1} is longer than the window ({steps} steps)')
    if k1 == steps:
      final, h = run(x, lengths, carry)
      middle = final
    else:
      middle, h_first = run(x[:, :k1], jnp.minimum(lengths, k1), carry)
      final, h_rest = run(x[:, k1:], jnp.maximum(lengths - k1, 0), middle)
      h = jnp.concatenate([h_first, h_rest], axis=1)
    if not self.is_initializing():
      stored.value = jax.lax.stop_gradient(middle)
    return final, h
