"""`sn.RNN` against a Python loop over its cell, plus the padding/reverse contract."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn

B, T, F, H = 3, 7, 5, 4
LENGTHS = np.array([7, 4, 1])

CELLS = {
    'elman': lambda: sn.ElmanCell(H),
    'lstm_peep': lambda: sn.LSTMCell(H, use_peepholes=True),
    'gru': lambda: sn.GRUCell(H),
}
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)


@pytest.fixture
def x():
  return np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)


def init(rnn, x, **kwargs):
  return rnn.init(jax.random.key(0), x, **kwargs)


def python_loop(cell, params, x, lengths, carry=None):
  """Runs the cell step by step on each row's real steps only (the reference)."""
  outputs = np.zeros(x.shape[:2] + (H,), np.float32)
  finals = []
  for b in range(x.shape[0]):
    c = carry if carry is None else jax.tree_util.tree_map(lambda a: a[b:b + 1], carry)
    if c is None:
      c = cell.initialize_carry(None, (1, x.shape[-1]))
    for t in range(lengths[b]):
      c, y = cell.apply({'params': params['params']['cell']}, c, x[b:b + 1, t])
      outputs[b, t] = y[0]
    finals.append(c)
  final = jax.tree_util.tree_map(lambda *rows: np.concatenate(rows), *finals)
  return final, outputs


@pytest.mark.parametrize('name', sorted(CELLS))
def test_scan_equals_python_loop_with_lengths(x, name):
  rnn = sn.RNN(CELLS[name](), return_carry=True)
  params = init(rnn, x, lengths=LENGTHS)
  carry, y = rnn.apply(params, x, lengths=LENGTHS)
  ref_carry, ref_y = python_loop(CELLS[name](), params, x, LENGTHS)
  close(y, ref_y)
  jax.tree_util.tree_map(close, carry, ref_carry)


@pytest.mark.parametrize('name', sorted(CELLS))
def test_padding_never_changes_a_result(x, name):
  rnn = sn.RNN(CELLS[name](), return_carry=True)
  params = init(rnn, x, lengths=LENGTHS)
  carry, y = rnn.apply(params, x, lengths=LENGTHS)
  # Garbage in the padding and 5 extra padded steps.
  noisy = np.concatenate([x, np.full((B, 5, F), 9.0, np.float32)], axis=1)
  for b, length in enumerate(LENGTHS):
    noisy[b, length:] = 7.0
  carry2, y2 = rnn.apply(params, noisy, lengths=LENGTHS)
  close(y2[:, :T], y)
  np.testing.assert_array_equal(y2[:, T:], 0.0)
  jax.tree_util.tree_map(close, carry2, carry)
  mask = np.asarray(sn.sequence_mask(LENGTHS, T))
  np.testing.assert_array_equal(np.asarray(y)[~mask], 0.0)


@pytest.mark.parametrize('name', sorted(CELLS))
def test_full_lengths_equal_no_lengths(x, name):
  rnn = sn.RNN(CELLS[name]())
  params = init(rnn, x)
  close(rnn.apply(params, x, lengths=np.full(B, T)), rnn.apply(params, x))


@pytest.mark.parametrize('name', sorted(CELLS))
def test_reverse_with_lengths_equals_manual_flip(x, name):
  fwd = sn.RNN(CELLS[name](), return_carry=True)
  bwd = sn.RNN(CELLS[name](), reverse=True, return_carry=True)
  params = init(fwd, x)
  flipped = np.zeros_like(x)
  for b, length in enumerate(LENGTHS):
    flipped[b, :length] = x[b, :length][::-1]
  ref_carry, ref_y = fwd.apply(params, flipped, lengths=LENGTHS)
  carry, y = bwd.apply(params, x, lengths=LENGTHS)
  jax.tree_util.tree_map(close, carry, ref_carry)
  for b, length in enumerate(LENGTHS):
    close(y[b, :length], np.asarray(ref_y)[b, :length][::-1])
    np.testing.assert_array_equal(np.asarray(y)[b, length:], 0.0)


def test_initial_carry_is_used_and_chunks_compose(x):
  """Running T in two chunks, passing the carry, equals one run (truncated BPTT relies on it)."""
  rnn = sn.RNN(sn.LSTMCell(H), return_carry=True)
  params = init(rnn, x)
  carry, y = rnn.apply(params, x)
  carry1, y1 = rnn.apply(params, x[:, :3])
  carry2, y2 = rnn.apply(params, x[:, 3:], initial_carry=carry1)
  close(np.concatenate([y1, y2], axis=1), y)
  jax.tree_util.tree_map(close, carry2, carry)


@pytest.mark.parametrize('unroll', [2, 3, 7])
def test_unroll_changes_nothing(x, unroll):
  params = init(sn.RNN(sn.GRUCell(H)), x)
  close(sn.RNN(sn.GRUCell(H), unroll=unroll).apply(params, x, lengths=LENGTHS),
        sn.RNN(sn.GRUCell(H)).apply(params, x, lengths=LENGTHS))


def test_jit_vmap_grad(x):
  rnn = sn.RNN(sn.LSTMCell(H))
  params = init(rnn, x)

  def loss(p, inputs, lengths):
    return jnp.sum(rnn.apply(p, inputs, lengths=lengths) ** 2)

  grads = jax.jit(jax.grad(loss))(params, x, LENGTHS)
  assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))
  # vmap over a leading "seed" axis of params equals a loop.
  stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a, 2 * a]), params)
  batched = jax.vmap(lambda p: rnn.apply(p, x, lengths=LENGTHS))(stacked)
  close(batched[1], rnn.apply(jax.tree_util.tree_map(lambda a: 2 * a, params), x, lengths=LENGTHS))


def test_gradient_of_padding_is_zero(x):
  rnn = sn.RNN(sn.GRUCell(H))
  params = init(rnn, x)
  g = jax.grad(lambda inputs: jnp.sum(rnn.apply(params, inputs, lengths=LENGTHS) ** 2))(x)
  mask = np.asarray(sn.sequence_mask(LENGTHS, T))
  np.testing.assert_array_equal(np.asarray(g)[~mask], 0.0)
  assert np.all(np.abs(np.asarray(g)[mask]).sum(-1) > 0)


def test_rejects_wrong_rank():
  with pytest.raises(ValueError, match='batch, time, features'):
    sn.RNN(sn.GRUCell(H)).init(jax.random.key(0), np.zeros((T, F)))
