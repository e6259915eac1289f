"""`SkipRNNCell` against a NumPy loop, its k-step dependency, in `sn.RNN` and `sn.Bidirectional`."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn
from seqnets.layers import attention
from seqnets.layers.time_skip import SkipRNNCell

B, T, F, H, K = 3, 10, 4, 5, 3
LENGTHS = np.array([10, 6, 2])
close = functools.partial(np.testing.assert_allclose, rtol=2e-5, atol=2e-5)


def random_tree(tree, seed):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      treedef, [rng.normal(0, 0.5, np.shape(l)).astype(np.float32) for l in leaves])


def numpy_skip_rnn(p, x, k, history=None):
  """`x [T, F]` -> states `[T, H]`; `history [k, H]`: h_{1-k}, …, h_0 (zeros if None)."""
  states = list(np.zeros((k, H)) if history is None else history)
  for x_t in x:
    states.append(np.tanh(x_t @ p['input_kernel'] + states[-1] @ p['recurrent_kernel']
                          + states[-k] @ p['skip_kernel'] + p['bias']))
  return np.array(states[k:])


RNN = sn.RNN(SkipRNNCell(H, skip=K), return_carry=True)
# One compiled program for the tests below: always an initial carry and lengths.
APPLY = jax.jit(lambda p, x, carry, lengths: RNN.apply(p, x, lengths=lengths, initial_carry=carry))
ZEROS = (np.zeros((B, K - 1, H), np.float32), np.zeros((B, H), np.float32))
FULL = np.full(B, T)


@pytest.fixture
def x():
  return np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)


@pytest.fixture
def params(x):
  return random_tree(jax.eval_shape(RNN.init, jax.random.key(0), x), seed=1)


def test_sequence_matches_numpy_with_initial_history(x, params):
  history = np.random.default_rng(2).normal(size=(B, K, H)).astype(np.float32)
  (past, h), y = APPLY(params, x, (history[:, :-1], history[:, -1]), FULL)
  p = params['params']['cell']
  want = np.stack([numpy_skip_rnn(p, x[b], K, history[b]) for b in range(B)])
  close(y, want)
  close(h, want[:, -1])
  close(past, want[:, -K:-1])                        # h_{T-k+1}, …, h_{T-1}, oldest first
  assert attention.hidden_state((past, h)) is h


def test_shapes_and_bad_skip(params):
  past, h = SkipRNNCell(H, skip=4).initialize_carry(None, (B, F))
  assert past.shape == (B, 3, H) and h.shape == (B, H)
  assert {n: v.shape for n, v in params['params']['cell'].items()} == {
      'input_kernel': (F, H), 'recurrent_kernel': (H, H), 'skip_kernel': (H, H), 'bias': (H,)}
  with pytest.raises(ValueError, match='skip'):
    SkipRNNCell(H, skip=1).initialize_carry(None, (B, F))


def test_state_reaches_k_steps_ahead_through_the_skip_kernel_alone(x, params):
  """With U = 0, h_0 reaches h_t only through S, so only at t = k, 2k, …: a change of h_0
  changes exactly those outputs."""
  params = jax.tree_util.tree_map(np.array, params)
  params['params']['cell']['recurrent_kernel'][:] = 0
  _, y = APPLY(params, x, ZEROS, FULL)
  _, y2 = APPLY(params, x, (ZEROS[0], ZEROS[1] + 0.5), FULL)
  change = np.abs(np.asarray(y2 - y)).max(axis=(0, 2))            # [T], steps t = 1 … T
  t = np.arange(1, T + 1)
  assert np.all(change[t % K == 0] > 1e-3), change
  np.testing.assert_array_equal(change[t % K != 0], 0)


def test_padding_never_changes_a_result(x, params):
  carry, y = APPLY(params, x, ZEROS, LENGTHS)
  noisy = x + 5 * (np.arange(T)[None, :, None] >= LENGTHS[:, None, None])
  carry2, y2 = APPLY(params, noisy, ZEROS, LENGTHS)
  jax.tree_util.tree_map(np.testing.assert_array_equal, (carry, y), (carry2, y2))
  p = params['params']['cell']
  for b, n in enumerate(LENGTHS):
    want = numpy_skip_rnn(p, x[b, :n], K)
    close(y[b, :n], want)
    np.testing.assert_array_equal(y[b, n:], 0)
    close(carry[1][b], want[-1])
    padded = np.concatenate([np.zeros((K, H)), want])             # h_{1-k}, …, h_n
    close(carry[0][b], padded[n:n + K - 1])                        # h_{n-k+1}, …, h_{n-1}


def test_bidirectional_backward_reads_each_row_reversed(x, params):
  bi = sn.Bidirectional(sn.RNN(SkipRNNCell(H, skip=K)), sn.RNN(SkipRNNCell(H, skip=K)),
                        return_carry=True)
  pf = params['params']['cell']
  pb = random_tree(pf, seed=4)
  variables = {'params': {'forward': {'cell': pf}, 'backward': {'cell': pb}}}
  (_, (_, h_back)), y = jax.jit(bi.apply)(variables, x, LENGTHS)
  assert y.shape == (B, T, 2 * H)
  for b, n in enumerate(LENGTHS):
    close(y[b, :n, :H], numpy_skip_rnn(pf, x[b, :n], K))
    backward = numpy_skip_rnn(pb, x[b, :n][::-1], K)[::-1]
    close(y[b, :n, H:], backward)
    close(h_back[b], backward[0])
    np.testing.assert_array_equal(y[b, n:], 0)
