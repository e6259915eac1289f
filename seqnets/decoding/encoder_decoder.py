"""Decoding an encoder-decoder: greedy, sampling or beam search, from arrays or from text.

Synopsis:
  result = decode_arrays(model, params, source [B, S], source_lengths [B], beam_size=5,
                         max_length=50, bos_id=2, eos_id=3)     # BeamResult, [B, K, L]
  hypotheses = translate(load_run(workdir), ['source one', 'source two'], beam_size=5)

`model` is any decoding model of `seqnets.models` (methods `encode`,
`initial_carry`, `step`; see `seqnets.models.seq2seq`). Sources are padded to
a width bucket (a power of two, at least 16) and batches to `batch_size`
rows, and the search runs in one jitted loop with fixed shapes: one compile
per (bucket, beam size, maximum length), none per sentence. `temperature > 0`
with `beam_size=1` samples each token instead of taking the arg-max.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from seqnets.decoding import sampling
from seqnets.decoding.beam_search import BeamResult, beam_search, tile_beams
from seqnets.decoding.generation import prime_bucket

Array = jax.Array


def _step_fn(model, variables, encoded):
  def step(carry, tokens):
    return model.apply(variables, encoded, carry, tokens, method='step')
  return step


@functools.partial(jax.jit, static_argnames=('model', 'beam_size', 'max_length', 'bos_id',
                                             'eos_id', 'pad_id'))
def _beam(model, params, source, source_lengths, length_penalty, *, beam_size, max_length,
          bos_id, eos_id, pad_id):
  variables = {'params': params}
  encoded = model.apply(variables, source, source_lengths, method='encode')
  carry = model.apply(variables, encoded, max_length, method='initial_carry')
  encoded, carry = tile_beams((encoded, carry), beam_size)
  return beam_search(_step_fn(model, variables, encoded), carry, source.shape[0],
                              beam_size=beam_size, max_length=max_length, bos_id=bos_id,
                              eos_id=eos_id, pad_id=pad_id, length_penalty=length_penalty)


@functools.partial(jax.jit, static_argnames=('model', 'max_length', 'bos_id', 'eos_id', 'pad_id'))
def _sample(model, params, source, source_lengths, key, temperature, *, max_length, bos_id,
            eos_id, pad_id):
  variables = {'params': params}
  encoded = model.apply(variables, source, source_lengths, method='encode')
  carry = model.apply(variables, encoded, max_length, method='initial_carry')
  step = _step_fn(model, variables, encoded)
  batch = source.shape[0]

  def body(state, key_t):
    carry, tokens, done, total = state
    carry, log_probs, weights = step(carry, tokens)
    token = sampling.sample(key_t, log_probs, temperature=temperature)
    token = jnp.where(done, pad_id, token)
    total = total + jnp.where(done, 0.0, jnp.take_along_axis(log_probs, token[:, None], 1)[:, 0])
    weights = jnp.where(done[:, None], 0.0, weights)
    return (carry, token, done | (token == eos_id), total), (token, weights)

  start = (carry, jnp.full(batch, bos_id, jnp.int32), jnp.zeros(batch, bool),
           jnp.zeros(batch, jnp.float32))
  (_, _, _, total), (tokens, weights) = jax.lax.scan(body, start, jax.random.split(key, max_length))
  tokens = tokens.T                                                        # [B, L]
  ended = tokens == eos_id
  lengths = jnp.where(ended.any(1), jnp.argmax(ended, 1) + 1, max_length)
  return BeamResult(tokens=tokens[:, None], lengths=lengths[:, None],
                             scores=total[:, None], log_probs=total[:, None],
                             extras=jnp.swapaxes(weights, 0, 1)[:, None])


def decode_arrays(model, params, source: Array, source_lengths: Array, *, max_length: int,
                  bos_id: int, eos_id: int, pad_id: int = 0, beam_size: int = 1,
                  length_penalty: float = 0.0, temperature: float = 0.0,
                  key: Array | None = None) -> BeamResult:
  """Hypotheses for `source [B, S]`: `BeamResult` with tokens `[B, K, L]`, lengths and
  scores `[B, K]` (best first) and `extras` = the attention weights `[B, K, L, S]`
  (zeros for models without attention). `beam_size=1, temperature=0` is greedy;
  `temperature > 0` samples (with `key`; beam size 1 only)."""
  if not isinstance(beam_size, int) or beam_size < 1:
    raise ValueError(f'beam_size must be a positive integer, got {beam_size!r}')
  if not isinstance(max_length, int) or max_length < 1:
    raise ValueError(f'max_length must be a positive integer, got {max_length!r}')
  if temperature < 0:
    raise ValueError(f'temperature must be >= 0, got {temperature!r}')
  if temperature > 0:
    if beam_size != 1:
      raise ValueError(f'sampling (temperature={temperature}) needs beam_size=1, got {beam_size}')
    key = jax.random.key(0) if key is None else key
    return _sample(model, params, source, source_lengths, key, jnp.float32(temperature),
                   max_length=max_length, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id)
  return _beam(model, params, source, source_lengths, jnp.float32(length_penalty),
               beam_size=beam_size, max_length=max_length, bos_id=bos_id, eos_id=eos_id,
               pad_id=pad_id)


def default_max_length(source_width: int) -> int:
  """Target tokens allowed for sources padded to `source_width`: 2 × width + 8."""
  return 2 * source_width + 8


def decode_sources(model, params, source: np.ndarray, source_lengths: np.ndarray, *,
                   bos_id: int, eos_id: int, pad_id: int = 0, beam_size: int = 1,
                   length_penalty: float = 0.0, max_length: int = 0, temperature: float = 0.0,
                   seed: int = 0, batch_size: int = 64) -> tuple[list[np.ndarray], list[BeamResult]]:
  """The best hypothesis (ids up to, not with, `</s>`) of every row of `source [N, S]`
  (token ids; or any array `[N, ...]`, e.g. images, whose rows are only padded to
  `batch_size`), decoded `batch_size` rows at a time with fixed shapes (see the module
  docstring), and the `BeamResult` of every batch (trimmed to the real rows)."""
  source, source_lengths = np.asarray(source), np.asarray(source_lengths)
  hypotheses, results = [], []
  key = jax.random.key(seed)
  for start in range(0, len(source), batch_size):
    chunk_lengths = source_lengths[start:start + batch_size]
    rows = len(chunk_lengths)
    longest = max(int(chunk_lengths.max()), 1)
    width = prime_bucket(longest)
    if source.ndim == 2:
      padded = np.zeros((batch_size, width), np.int32)
      padded[:rows, :longest] = source[start:start + batch_size, :longest]
    else:
      padded = np.zeros((batch_size, *source.shape[1:]), source.dtype)
      padded[:rows] = source[start:start + batch_size]
    padded_lengths = np.zeros(batch_size, np.int32)
    padded_lengths[:rows] = chunk_lengths
    key, batch_key = jax.random.split(key)
    result = decode_arrays(model, params, padded, padded_lengths,
                           max_length=max_length or default_max_length(width), bos_id=bos_id,
                           eos_id=eos_id, pad_id=pad_id, beam_size=beam_size,
                           length_penalty=length_penalty, temperature=temperature, key=batch_key)
    result = jax.tree_util.tree_map(lambda a: np.asarray(a)[:rows], result)
    for tokens, length in zip(result.tokens[:, 0], result.lengths[:, 0]):
      ended = length > 0 and tokens[length - 1] == eos_id
      hypotheses.append(tokens[:length - 1] if ended else tokens[:length])
    results.append(result)
  return hypotheses, results


def translate(run: Any, lines: Sequence[str], *, beam_size: int = 1, length_penalty: float = 0.0,
              max_length: int = 0, temperature: float = 0.0, seed: int = 0, batch_size: int = 64,
              seed_index: int = 0, return_results: bool = False):
  """One detokenised hypothesis per source line, in order (the best of the beam).

  `run` is a trained sequence-to-sequence run (`training.saved_run.load_run`);
  lines are untokenised and read with the run's tokenisation. `max_length` 0
  allows `default_max_length` of each batch's bucket. With `return_results`,
  also the `BeamResult` of every batch (trimmed to the real rows).
  """
  if run.config.task != 'seq2seq':
    raise ValueError(f'{run.workdir} is a {run.config.task!r} run, not a sequence-to-sequence model')
  from seqnets.tasks import seq2seq as task_lib
  source, source_lengths = task_lib.encode_sources(run.config.data, run.preprocessing, list(lines))
  params, _ = run.seed(seed_index)
  ids, results = decode_sources(
      run.model, params, source, source_lengths, bos_id=task_lib.BOS_ID, eos_id=task_lib.EOS_ID,
      beam_size=beam_size, length_penalty=length_penalty, max_length=max_length,
      temperature=temperature, seed=seed, batch_size=batch_size)
  hypotheses = [task_lib.decode_targets(run.config.data, run.preprocessing, i) for i in ids]
  return (hypotheses, results) if return_results else hypotheses
