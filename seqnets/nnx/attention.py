"""Attention over a memory of encoder states as Flax NNX modules, and a cell wrapper that
gives any NNX cell attention (the linen `seqnets.AttentionCell`, `Attention`,
`MemoryKeys`; `seqnets.layers.attention` has the equations).

Synopsis:
  cell = snx.AttentionCell(snx.LSTMCell(E + D, H, rngs=rngs), D, score='additive',
                           placement='bahdanau', rngs=rngs)      # the cell reads [x_t; c_t]
  rnn = snx.RNN(cell, return_all_carries=True)
  cell.set_memory(memory, memory_mask)                 # [B, S, D], [B, S]: per batch
  (carry, feed, alpha), y = rnn(x, lengths)            # y [B, T, H + D], alpha [B, T, S]

The params are the linen modules' (`nnx.Linear` kernels and biases under the linen Dense
names): `memory_keys/memory/kernel`, `attention/query/{kernel,bias}`,
`attention/energy/kernel`, `combine/kernel`, next to the wrapped cell's `cell/...`.
"""

from __future__ import annotations

import inspect
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from seqnets.layers import attention as linen_attention

Array = jax.Array
Carry = Any


class Memory(nnx.Variable):
  """What an `AttentionCell` attends over (memory, keys, mask): set per batch by
  `set_memory`, constant through a sequence (`snx.RNN` closes over it), not a parameter."""


def _check_choice(name: str, value: str, valid) -> None:
  if value not in valid:
    raise ValueError(f'{name}={value!r}; valid: {list(valid)}')


class MemoryKeys(nnx.Module):
  """The memory's part of the score, `memory [B, S, D] -> keys [B, S, K]`: the memory itself
  ('dot', K = D), `h_s W` ('general', K = `query_features`) or `W₁ h_s` ('additive',
  K = `attention_size`); param `memory/kernel [D, K]` (none for 'dot')."""

  def __init__(self, memory_features: int, *, score: str = 'additive', query_features: int = 0,
               attention_size: int = 0, rngs: nnx.Rngs):
    _check_choice('score', score, linen_attention.SCORES)
    self.score = score
    size = query_features if score == 'general' else attention_size
    if score != 'dot' and size <= 0:
      what = 'query_features' if score == 'general' else 'attention_size'
      raise ValueError(f'MemoryKeys({score!r}) needs a positive {what}, got {size}')
    self.memory = (None if score == 'dot'
                   else nnx.Linear(memory_features, size, use_bias=False, rngs=rngs))

  def __call__(self, memory: Array) -> Array:
    return memory if self.memory is None else self.memory(memory)


class Attention(nnx.Module):
  """`(query [B, Q], keys [B, S, K], memory [B, S, D], mask [B, S]) -> (context [B, D],
  α [B, S])`: α the masked softmax of the scores (0 at padding, all 0 on a row with no real
  position), context `Σ_s α_s h_s`. 'additive' holds `query/kernel [Q, K]`, `query/bias
  [K]` and `energy/kernel [K, 1]`; 'dot' and 'general' need K = Q and hold nothing."""

  def __init__(self, query_features: int, key_features: int, *, score: str = 'additive',
               rngs: nnx.Rngs):
    _check_choice('score', score, linen_attention.SCORES)
    self.score = score
    additive = score == 'additive'
    self.query = nnx.Linear(query_features, key_features, rngs=rngs) if additive else None
    self.energy = (nnx.Linear(key_features, 1, use_bias=False, rngs=rngs) if additive
                   else None)

  def __call__(self, query: Array, keys: Array, memory: Array,
               mask: Array | None = None) -> tuple[Array, Array]:
    if self.score == 'additive':
      hidden = jnp.tanh(keys + self.query(query)[:, None, :])                   # [B, S, K]
      scores = self.energy(hidden)[..., 0]                                      # [B, S]
    else:
      if keys.shape[-1] != query.shape[-1]:
        raise ValueError(f'{self.score!r} attention needs keys and query of one size: keys '
                         f'{keys.shape[-1]}, query {query.shape[-1]}')
      scores = jnp.einsum('bsk,bk->bs', keys, query)
    weights = linen_attention.masked_softmax(scores, mask)
    return jnp.einsum('bs,bsd->bd', weights, memory), weights


class AttentionCell(nnx.RNNCellBase):
  """Any NNX cell, with attention over a memory `[B, S, D]` at every step (the linen
  `seqnets.AttentionCell`; its docstring has the placements).

    bahdanau  c_t = attend(s_{t-1}); s_t = cell([x_t; c_t]); output y_t = [s_t; c_t]
              `[B, H + D]`
    luong     s_t = cell([x_t; h̃_{t-1}]); c_t = attend(s_t);
              h̃_t = tanh(W_c [c_t; s_t]); output y_t = h̃_t `[B, output_size]`

  The wrapped `cell` is built for the inputs it reads: `[x_t; c_t]`, F + D features
  (bahdanau), or `[x_t; h̃_{t-1}]`, F + `output_size` (luong); its carry is h or ends with
  h. Carry `(cell carry, feed [B, D] (bahdanau: the last context) or [B, output_size]
  (luong: h̃), α [B, S])`; with `snx.RNN(return_all_carries=True)` the third component is
  every step's attention weights `[B, T, S]`.

  The memory is data, not a setting: `set_memory(memory, memory_mask)` stores it (and its
  keys, computed once) as `Memory` variables for the calls that follow. Call it inside the
  function you differentiate, so that gradients reach the memory and `memory_keys`.

  Args:
    cell: the wrapped NNX cell (`snx.LSTMCell`, `nnx.GRUCell`, ...; `hidden_features` H).
    memory_features: D.
    score: 'dot' (D = H), 'general' or 'additive'.
    placement: 'bahdanau' or 'luong'.
    attention_size: A of the additive score (0: H).
    output_size: size of h̃ (luong; 0: H).
    rngs: for the attention's params.
  """

  def __init__(self, cell: nnx.Module, memory_features: int, *, score: str = 'additive',
               placement: str = 'bahdanau', attention_size: int = 0, output_size: int = 0,
               rngs: nnx.Rngs):
    _check_choice('score', score, linen_attention.SCORES)
    _check_choice('placement', placement, linen_attention.PLACEMENTS)
    hidden = cell.hidden_features
    if score == 'dot' and memory_features != hidden:
      raise ValueError(f"'dot' attention needs the memory's size D = {memory_features} to be "
                       f"the cell's H = {hidden} (the memory is the keys)")
    self.cell = cell
    self.memory_features = memory_features
    self.score = score
    self.placement = placement
    self.feed_size = (output_size or hidden) if placement == 'luong' else memory_features
    attention_size = attention_size or hidden
    self.memory_keys = MemoryKeys(memory_features, score=score, query_features=hidden,
                                  attention_size=attention_size, rngs=rngs)
    key_size = {'dot': memory_features, 'general': hidden, 'additive': attention_size}[score]
    self.attention = Attention(hidden, key_size, score=score, rngs=rngs)
    self.combine = (nnx.Linear(memory_features + hidden, self.feed_size, use_bias=False,
                               rngs=rngs) if placement == 'luong' else None)
    self.memory = Memory(None)
    self.keys = Memory(None)
    self.memory_mask = Memory(None)

  def set_memory(self, memory: Array, memory_mask: Array | None = None) -> None:
    """Attend over `memory [B, S, D]` (`memory_mask [B, S]` bool, True on real positions;
    None: all real) from now on; its keys (`memory_keys(memory)`) are computed here."""
    memory = jnp.asarray(memory)
    if memory.ndim != 3 or memory.shape[-1] != self.memory_features:
      raise ValueError(f'AttentionCell memory must be [B, S, D={self.memory_features}], got '
                       f'shape {memory.shape}')
    self.memory = Memory(memory)
    self.keys = Memory(self.memory_keys(memory))
    self.memory_mask = Memory(None if memory_mask is None else jnp.asarray(memory_mask, bool))

  def _attended(self) -> tuple[Array, Array, Array | None]:
    """`(memory, keys, mask)`; a ValueError before `set_memory`."""
    if self.memory.get_value() is None:
      raise ValueError('AttentionCell has no memory: call cell.set_memory(memory, mask) first')
    return self.memory.get_value(), self.keys.get_value(), self.memory_mask.get_value()

  def _step(self, carry: Carry, inputs: Array, deterministic: bool | None):
    takes = 'deterministic' in inspect.signature(self.cell.__call__).parameters
    if takes and deterministic is not None:
      return self.cell(carry, inputs, deterministic=deterministic)
    return self.cell(carry, inputs)

  def __call__(self, carry: Carry, inputs: Array, *,
               deterministic: bool | None = None) -> tuple[Carry, Array]:
    """One step: `(carry, x_t [B, F]) -> (carry, y_t)`; `deterministic` reaches the wrapped
    cell when its step takes it."""
    memory, keys, mask = self._attended()
    cell_carry, feed, _ = carry
    if self.placement == 'bahdanau':
      context, weights = self.attention(linen_attention.hidden_state(cell_carry), keys, memory,
                                        mask)
      cell_carry, s = self._step(
          cell_carry, jnp.concatenate([inputs, context.astype(inputs.dtype)], -1), deterministic)
      return (cell_carry, context, weights), jnp.concatenate([s, context.astype(s.dtype)], -1)
    cell_carry, s = self._step(cell_carry, jnp.concatenate([inputs, feed.astype(inputs.dtype)],
                                                           -1), deterministic)
    context, weights = self.attention(s, keys, memory, mask)
    attentional = jnp.tanh(self.combine(jnp.concatenate([context.astype(s.dtype), s], -1)))
    return (cell_carry, attentional, weights), attentional

  def initialize_carry(self, input_shape: tuple[int, ...],
                       rngs: nnx.Rngs | nnx.RngStream | None = None) -> Carry:
    """Zeros for inputs `[*batch, F]`: the wrapped cell's carry for `[*batch, F + feed]`,
    the feed `[*batch, feed]`, α `[*batch, S]` (needs the memory)."""
    memory = self._attended()[0]
    batch = tuple(input_shape[:-1])
    cell_carry = self.cell.initialize_carry(batch + (input_shape[-1] + self.feed_size,),
                                            nnx.Rngs(0) if rngs is None else rngs)
    dtype = jax.tree_util.tree_leaves(cell_carry)[0].dtype
    return (cell_carry, jnp.zeros(batch + (self.feed_size,), dtype),
            jnp.zeros(batch + (memory.shape[1],), dtype))

  @property
  def num_feature_axes(self) -> int:
    return 1
