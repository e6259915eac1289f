"""Fixed-shape beam search and greedy search over a step function (encoder-decoder decoding).

Synopsis:
  @jax.jit                                             # one compile per shape; params traced
  def translate(params, source, source_lengths):
    memory = encode(params, source, source_lengths)                         # [B, S, D]
    state = tile_beams(init_state(memory, source_lengths), beam_size=4)     # leaves [B*K, ...]
    step = lambda state, tokens: decode_step(params, state, tokens)        # closes over params
    return beam_search(step, state, source.shape[0], beam_size=4, max_length=64,
                       bos_id=1, eos_id=2, pad_id=0, length_penalty=0.6)
  result = translate(params, source, source_lengths)
  result.tokens [B, K, L], result.lengths [B, K], result.scores [B, K]     # best first
  greedy_search(step, init_state(memory, source_lengths), B, max_length=64, bos_id=1, eos_id=2)

Each step keeps, per example, the K best of the K·V one-token continuations by
raw log-probability `log p(y_1..y_t) = Σ_i log p(y_i | y_<i)`. A hypothesis that
emitted eos is finished: its only continuation is pad with log-probability 0, so
it keeps competing with its final score and is never extended. At the end the K
are ranked by `log p(y) / lp(|y|)`, `lp(n) = ((5 + n) / 6) ** length_penalty`
(Wu et al. 2016, GNMT). The loop is one `lax.while_loop` with fixed shapes (it
stops early once every hypothesis is finished), so nothing recompiles per input.

Hand-written because flax and optax ship no beam search as a library function:
flax's WMT example has one (examples/wmt/decode.py, alive and finished sets kept
apart), but as example code, not importable.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array
StepFn = Callable[[Any, Array], tuple[Any, Array, Any]]


class BeamResult(NamedTuple):
  """The K hypotheses of each example, best first.

  tokens `[B, K, L]` int32: each ended by eos if it ended, pad after.
  lengths `[B, K]` int32: tokens including the eos (L if it never ended).
  scores `[B, K]` float32: `log_probs / lp(lengths)`; −∞ marks a filler slot
    (fewer than K hypotheses of positive probability exist).
  log_probs `[B, K]` float32: the raw sums of token log-probabilities.
  extras: each leaf `[B, K, L, ...]`, the step function's extras for each token
    of the hypothesis (gathered through the beam history), zero after its end.
  """
  tokens: Array
  lengths: Array
  scores: Array
  log_probs: Array
  extras: Any


def tile_beams(tree: Any, beam_size: int) -> Any:
  """Each leaf `[B, ...]` → `[B*K, ...]`, every row repeated K times (row b*K + k = beam k of b)."""
  _check_positive('beam_size', beam_size)
  return jax.tree_util.tree_map(lambda x: jnp.repeat(jnp.asarray(x), beam_size, axis=0), tree)


def length_penalty_factor(lengths: Array, length_penalty: float | Array) -> Array:
  """`lp(n) = ((5 + n) / 6) ** length_penalty`; 1 for length_penalty 0."""
  return ((5.0 + jnp.asarray(lengths, jnp.float32)) / 6.0) ** jnp.asarray(length_penalty,
                                                                          jnp.float32)


def beam_search(step_fn: StepFn, initial_state: Any, batch_size: int, *, beam_size: int,
                max_length: int, bos_id: int, eos_id: int, pad_id: int = 0,
                length_penalty: float = 0.0) -> BeamResult:
  """The K best hypotheses of each of B examples, at most L = max_length tokens each.

  Args:
    step_fn: `(state, tokens [N]) -> (state, log_probs [N, V], extras)`, N = B*K,
      rows batch-major (row b*K + k is beam k of example b); `tokens` is the
      previous token (bos at the first step); `log_probs` are normalised
      (log-softmaxed); the returned state has the structure, shapes and dtypes
      of the given one; `extras` is a pytree of arrays `[N, ...]` (or `()`).
      Rows of finished hypotheses are stepped too (with pad), their outputs unused.
    initial_state: the pytree of leaves `[N, ...]` (see `tile_beams`).
    batch_size: B.
    beam_size: K ≥ 1. max_length: L ≥ 1.
    bos_id / eos_id / pad_id: the first input token, the ending token, the filler.
    length_penalty: α of `lp(n) = ((5 + n) / 6) ** α`, used only for the final ranking.

  Not jitted itself: call it inside your own `jax.jit`, with `step_fn` closing
  over the (traced) parameters; B, K, L and the state shapes fix the compile.
  """
  _check_positive('batch_size', batch_size)
  _check_positive('beam_size', beam_size)
  _check_positive('max_length', max_length)
  b, k, length = batch_size, beam_size, max_length
  n = b * k
  initial_state = jax.tree_util.tree_map(jnp.asarray, initial_state)
  for leaf in jax.tree_util.tree_leaves(initial_state):
    if leaf.shape[:1] != (n,):
      raise ValueError(f'initial_state leaves need a leading axis of batch_size * beam_size = '
                       f'{n}; got shape {leaf.shape} (use tile_beams)')
  first = jnp.full((n,), bos_id, jnp.int32)
  _, lp_shape, extras_shape = jax.eval_shape(step_fn, initial_state, first)
  if len(lp_shape.shape) != 2 or lp_shape.shape[0] != n:
    raise ValueError(f'step_fn must return log_probs [{n}, V]; got {lp_shape.shape}')
  vocab = lp_shape.shape[1]
  offsets = (jnp.arange(b) * k)[:, None]                                    # [B, 1]

  def take(x, flat):                      # x [B, K, ...]: the rows flat [N] of x [N, ...]
    return jnp.take(x.reshape((n,) + x.shape[2:]), flat, axis=0).reshape(x.shape)

  def body(carry):
    t, state, last, acc, finished, lengths, tokens, extras_hist = carry
    state, log_probs, extras = step_fn(state, last)
    log_probs = log_probs.astype(jnp.float32).reshape(b, k, vocab)
    # A finished hypothesis has one continuation (column 0, relabelled pad below) of log-prob 0.
    only_pad = jnp.where(jnp.arange(vocab) == 0, 0.0, -jnp.inf)
    log_probs = jnp.where(finished[..., None], only_pad, log_probs)
    candidates = (acc[..., None] + log_probs).reshape(b, k * vocab)
    acc, index = jax.lax.top_k(candidates, k)                               # [B, K]
    parent = index // vocab
    flat = (offsets + parent).reshape(n)
    was_finished = take(finished, flat)
    token = jnp.where(was_finished, pad_id, index % vocab).astype(jnp.int32)
    lengths = jnp.where(was_finished, take(lengths, flat), t + 1)
    finished = was_finished | (token == eos_id)
    tokens = take(tokens, flat).at[:, :, t].set(token)

    def record(hist, x):                  # hist [B, K, L, ...], x [N, ...] of the parents
      x = jnp.take(x, flat, axis=0).reshape((b, k) + x.shape[1:])
      x = jnp.where(was_finished.reshape((b, k) + (1,) * (x.ndim - 2)), 0, x)
      return take(hist, flat).at[:, :, t].set(x.astype(hist.dtype))

    extras_hist = jax.tree_util.tree_map(record, extras_hist, extras)
    state = jax.tree_util.tree_map(lambda x: jnp.take(x, flat, axis=0), state)
    return t + 1, state, token.reshape(n), acc, finished, lengths, tokens, extras_hist

  def cond(carry):
    t, _, _, acc, finished, *_ = carry
    return (t < length) & ~jnp.all(finished | jnp.isneginf(acc))

  acc = jnp.broadcast_to(jnp.where(jnp.arange(k) == 0, 0.0, -jnp.inf), (b, k))  # beam 0 live
  carry = (jnp.int32(0), initial_state, first, acc.astype(jnp.float32), jnp.zeros((b, k), bool),
           jnp.zeros((b, k), jnp.int32), jnp.full((b, k, length), pad_id, jnp.int32),
           jax.tree_util.tree_map(lambda s: jnp.zeros((b, k, length) + s.shape[1:], s.dtype),
                                  extras_shape))
  _, _, _, acc, _, lengths, tokens, extras = jax.lax.while_loop(cond, body, carry)

  scores = acc / length_penalty_factor(lengths, length_penalty)
  order = jnp.argsort(-scores, axis=1, stable=True)                         # best first
  flat = (offsets + order).reshape(n)
  return BeamResult(tokens=take(tokens, flat), lengths=take(lengths, flat),
                    scores=take(scores, flat), log_probs=take(acc, flat),
                    extras=jax.tree_util.tree_map(lambda x: take(x, flat), extras))


def greedy_search(step_fn: StepFn, initial_state: Any, batch_size: int, *, max_length: int,
                  bos_id: int, eos_id: int, pad_id: int = 0) -> BeamResult:
  """`beam_search` with K = 1: the arg-max token at every step (`initial_state` leaves `[B, ...]`);
  results `[B, 1, ...]`, scores are the raw log-probabilities."""
  return beam_search(step_fn, initial_state, batch_size, beam_size=1, max_length=max_length,
                     bos_id=bos_id, eos_id=eos_id, pad_id=pad_id, length_penalty=0.0)


def _check_positive(name: str, value: int) -> None:
  if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
    raise ValueError(f'{name} must be a positive integer, got {value!r}')
