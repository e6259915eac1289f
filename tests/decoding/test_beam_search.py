"""Beam search against brute force and a greedy loop; finished hypotheses, batching, no recompiles."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqnets.decoding import BeamResult, beam_search, greedy_search, tile_beams

V, EOS, BOS, PAD = 4, 3, 4, 0          # output tokens 0..3; bos is an input-only id
MOD = 1009                             # prefix codes: a hash of the whole prefix
TABLES = np.random.default_rng(0).normal(0, 1.5, (3, MOD, V)).astype(np.float32)  # per example


def prefix_code(code, token):
  return (code * 31 + token + 1) % MOD


def make_step(tables):
  """Log-probs of the next token depend on the whole prefix (through its hash) and the example."""
  def step(state, tokens):
    code = prefix_code(state['code'], tokens)
    log_probs = jax.nn.log_softmax(tables[state['row'], code])
    extras = {'step': state['t'], 'prev': tokens, 'log_probs': log_probs}
    return {'code': code, 'row': state['row'], 't': state['t'] + 1}, log_probs, extras
  return step


def initial_state(rows, beam_size):
  rows = jnp.asarray(rows, jnp.int32)
  return tile_beams({'code': jnp.zeros_like(rows), 'row': rows, 't': jnp.zeros_like(rows)},
                    beam_size)


@functools.partial(jax.jit, static_argnames=('beam_size', 'max_length', 'pad_id'))
def decode(tables, rows, length_penalty=0.0, *, beam_size, max_length, pad_id=PAD):
  return beam_search(make_step(tables), initial_state(rows, beam_size), rows.shape[0],
                     beam_size=beam_size, max_length=max_length, bos_id=BOS, eos_id=EOS,
                     pad_id=pad_id, length_penalty=length_penalty)


def log_softmax(x):
  x = np.asarray(x, np.float64)
  return x - x.max() - np.log(np.exp(x - x.max()).sum())


def lp(n, alpha):
  return ((5 + n) / 6) ** alpha


def brute_force(row, max_length, alpha):
  """Every hypothesis (ended by eos, or max_length long) as (tokens, score, log-prob), best first."""
  out = []

  def visit(prefix, code, total):
    log_probs = log_softmax(TABLES[row, code])
    for tok in range(V):
      seq, logp = prefix + (tok,), total + log_probs[tok]
      if tok == EOS or len(seq) == max_length:
        out.append((seq, logp / lp(len(seq), alpha), logp))
      else:
        visit(seq, prefix_code(code, tok), logp)

  visit((), prefix_code(0, BOS), 0.0)
  return sorted(out, key=lambda h: -h[1])


def hypotheses(result, b=0):
  tokens, lengths = np.asarray(result.tokens[b]), np.asarray(result.lengths[b])
  return [tuple(int(x) for x in row[:n]) for row, n in zip(tokens, lengths)]


@pytest.mark.parametrize('alpha', [0.0, 1.0])
def test_all_hypotheses_equal_brute_force(alpha):
  reference = brute_force(1, 3, alpha)
  assert len(reference) == 1 + 3 + 3 * 3 * 4                       # 40 < V**L = 64
  result = decode(jnp.asarray(TABLES), jnp.array([1]), alpha, beam_size=V ** 3, max_length=3)
  assert isinstance(result, BeamResult) and result.tokens.shape == (1, 64, 3)
  found = len(reference)
  assert hypotheses(result)[:found] == [h[0] for h in reference]   # the same, in the same order
  np.testing.assert_allclose(result.scores[0, :found], [h[1] for h in reference], rtol=1e-5)
  np.testing.assert_allclose(result.log_probs[0, :found], [h[2] for h in reference], rtol=1e-5)
  assert np.all(np.isneginf(np.asarray(result.scores[0, found:])))  # filler slots


def test_beam_keeps_the_best_by_raw_log_prob():
  # K = 16 holds every prefix shorter than 3 (13 at most), so the last step sees all 40
  # hypotheses and keeps exactly the 16 best.
  reference = brute_force(2, 3, 0.0)
  result = decode(jnp.asarray(TABLES), jnp.array([2]), beam_size=16, max_length=3)
  assert hypotheses(result) == [h[0] for h in reference[:16]]
  np.testing.assert_allclose(result.scores[0], [h[1] for h in reference[:16]], rtol=1e-5)


def greedy_reference(row, max_length):
  tokens, total, code = [], 0.0, prefix_code(0, BOS)
  for _ in range(max_length):
    log_probs = log_softmax(TABLES[row, code])
    tok = int(np.argmax(log_probs))
    tokens.append(tok)
    total += log_probs[tok]
    if tok == EOS:
      break
    code = prefix_code(code, tok)
  return tokens, total


def test_beam_size_one_is_greedy():
  rows = jnp.array([0, 1, 2])
  greedy = jax.jit(lambda tables, rows: greedy_search(
      make_step(tables), initial_state(rows, 1), 3, max_length=6, bos_id=BOS, eos_id=EOS))
  result = greedy(jnp.asarray(TABLES), rows)
  beam = decode(jnp.asarray(TABLES), rows, beam_size=1, max_length=6)
  for a, b in zip(jax.tree_util.tree_leaves(result), jax.tree_util.tree_leaves(beam)):
    np.testing.assert_allclose(a, b, rtol=1e-6)
  assert result.tokens.shape == (3, 1, 6)
  for b, row in enumerate(rows.tolist()):
    tokens, total = greedy_reference(row, 6)
    assert hypotheses(result, b) == [tuple(tokens)]
    np.testing.assert_allclose(result.log_probs[b, 0], total, rtol=1e-5)
    np.testing.assert_allclose(result.scores[b, 0], total, rtol=1e-5)


def test_finished_hypotheses_and_extras_through_the_history():
  pad, length, alpha = 7, 6, 0.6                                    # pad outside the vocabulary
  result = decode(jnp.asarray(TABLES), jnp.array([0, 1]), alpha, beam_size=4, max_length=length,
                  pad_id=pad)
  tokens, lengths = np.asarray(result.tokens), np.asarray(result.lengths)
  extras = jax.tree_util.tree_map(np.asarray, result.extras)
  assert extras['log_probs'].shape == (2, 4, length, V)
  assert (lengths < length).any()                                  # some ended early
  scores = np.asarray(result.scores)
  assert np.all(np.diff(scores, axis=1) <= 0)                      # best first
  for b in range(2):
    assert len(set(hypotheses(result, b))) == 4                     # distinct
    for k in range(4):
      n = lengths[b, k]
      seq = tokens[b, k, :n].tolist()
      assert EOS not in seq[:-1] and (seq[-1] == EOS or n == length)
      assert np.all(tokens[b, k, n:] == pad)
      # Recompute every step along the hypothesis: its extras are those of its own history.
      total, code, prev = 0.0, prefix_code(0, BOS), BOS
      for i, tok in enumerate(seq):
        log_probs = log_softmax(TABLES[b, code])
        assert extras['step'][b, k, i] == i and extras['prev'][b, k, i] == prev
        np.testing.assert_allclose(extras['log_probs'][b, k, i], log_probs, rtol=1e-5, atol=1e-6)
        total += log_probs[tok]
        code, prev = prefix_code(code, tok), tok
      for leaf in extras.values():
        assert np.all(leaf[b, k, n:] == 0)                           # zero after the end
      # The score stopped changing at eos: pads add nothing.
      np.testing.assert_allclose(result.log_probs[b, k], total, rtol=1e-5)
      np.testing.assert_allclose(scores[b, k], total / lp(n, alpha), rtol=1e-5)


def test_batch_equals_each_example_alone():
  tables = jnp.asarray(TABLES)
  batch = decode(tables, jnp.array([2, 0, 1]), 0.6, beam_size=3, max_length=6)
  for b, row in enumerate([2, 0, 1]):
    alone = decode(tables, jnp.array([row]), 0.6, beam_size=3, max_length=6)
    for x, y in zip(jax.tree_util.tree_leaves(batch), jax.tree_util.tree_leaves(alone)):
      np.testing.assert_allclose(x[b], y[0], rtol=1e-6)


def test_no_recompilation():
  traces = []

  @jax.jit
  def run(tables, rows, length_penalty):
    traces.append(1)
    return beam_search(make_step(tables), initial_state(rows, 2), 2, beam_size=2, max_length=5,
                       bos_id=BOS, eos_id=EOS, length_penalty=length_penalty)

  a = run(jnp.asarray(TABLES), jnp.array([0, 1]), 0.0)
  b = run(jnp.asarray(TABLES[::-1].copy()), jnp.array([2, 2]), 0.6)
  assert len(traces) == 1 and run._cache_size() == 1
  assert hypotheses(a, 0) != hypotheses(b, 0) or hypotheses(a, 1) != hypotheses(b, 1)


def test_bad_arguments():
  step, state = make_step(jnp.asarray(TABLES)), initial_state(jnp.array([0]), 1)
  with pytest.raises(ValueError, match='beam_size'):
    beam_search(step, state, 1, beam_size=0, max_length=3, bos_id=BOS, eos_id=EOS)
  with pytest.raises(ValueError, match='max_length'):
    beam_search(step, state, 1, beam_size=1, max_length=0, bos_id=BOS, eos_id=EOS)
  with pytest.raises(ValueError, match='leading axis'):
    beam_search(step, state, 1, beam_size=2, max_length=3, bos_id=BOS, eos_id=EOS)
