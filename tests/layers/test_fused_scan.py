"""`sn.RNN`'s fused path (hand-written backward) against autodiff of a plain per-step scan
and against finite differences."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import seqnets as sn
from seqnets.layers import rnn as rnn_module

B, T, F, H = 3, 7, 5, 4
LENGTHS = np.array([7, 4, 1])

CELLS = {
    'elman': lambda: sn.ElmanCell(H),
    'elman_relu': lambda: sn.ElmanCell(H, activation_fn=jax.nn.relu),
    'lstm': lambda: sn.LSTMCell(H),
    'lstm_peep': lambda: sn.LSTMCell(H, use_peepholes=True),
    'gru': lambda: sn.GRUCell(H),
    'gru_after': lambda: sn.GRUCell(H, reset_after=True),
}
close = functools.partial(np.testing.assert_allclose, rtol=2e-5, atol=2e-5)


def random_tree(tree, seed):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      treedef, [rng.normal(0, 0.5, np.shape(l)).astype(np.float32) for l in leaves])


def random_tree64(tree, seed):
  """Like `random_tree`, in float64 (call under `jax.enable_x64`)."""
  return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), random_tree(tree, seed))


def stepwise_reference(cell, params, x, lengths, carry, reverse):
  """Per-step `cell.apply` in a `lax.scan`, masked as the RNN contract says; plain autodiff."""
  mask = jnp.ones((B, T), bool) if lengths is None else sn.sequence_mask(lengths, T)
  if reverse:
    x = sn.flip_sequences(x, lengths)

  def step(carry, inputs):
    x_t, m_t = inputs
    new_carry, y = cell.apply({'params': params['params']['cell']}, carry, x_t)
    keep = m_t[:, None]
    new_carry = jax.tree_util.tree_map(lambda n, o: jnp.where(keep, n, o), new_carry, carry)
    return new_carry, jnp.where(keep, y, 0)

  carry, ys = jax.lax.scan(step, carry, (jnp.swapaxes(x, 0, 1), mask.T))
  ys = jnp.swapaxes(ys, 0, 1)
  if reverse:
    ys = sn.flip_sequences(ys, lengths)
  return carry, ys


# Lengths and `reverse` are handled around the kernel, the same for every cell: each cell
# meets two of the four (lengths, reverse) cases, and every case meets gated and plain cells.
CASES = [('elman', False, False), ('elman', True, True), ('elman_relu', True, False),
         ('elman_relu', False, True), ('gru', True, True), ('gru', False, False),
         ('gru_after', True, False), ('gru_after', False, True), ('lstm', True, True),
         ('lstm', False, True), ('lstm_peep', True, False), ('lstm_peep', True, True)]


@pytest.mark.parametrize('name,use_lengths,reverse', CASES)
def test_fused_gradients_equal_autodiff_of_stepwise_scan(name, use_lengths, reverse):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(B, T, F)).astype(np.float32)
  lengths = LENGTHS if use_lengths else None
  cell = CELLS[name]()
  rnn = sn.RNN(cell, return_carry=True, reverse=reverse)
  params = random_tree(rnn.init(jax.random.key(0), x), seed=1)
  carry0 = random_tree(cell.initialize_carry(None, (B, F)), seed=2)
  out_weights = rng.normal(size=(B, T, H)).astype(np.float32)
  carry_weights = random_tree(carry0, seed=3)

  def loss(run, params, x, carry0):
    carry, ys = run(params, x, carry0)
    carry_term = sum(jnp.sum(c * w) for c, w in zip(jax.tree_util.tree_leaves(carry),
                                                     jax.tree_util.tree_leaves(carry_weights)))
    return jnp.sum(jnp.tanh(ys) * out_weights) + carry_term

  fused = lambda p, x, c: rnn.apply(p, x, lengths=lengths, initial_carry=c)
  reference = lambda p, x, c: stepwise_reference(cell, p, x, lengths, c, reverse)
  jax.tree_util.tree_map(close, fused(params, x, carry0), reference(params, x, carry0))
  got = jax.jit(jax.grad(functools.partial(loss, fused), argnums=(0, 1, 2)))(params, x, carry0)
  want = jax.jit(jax.grad(functools.partial(loss, reference), argnums=(0, 1, 2)))(params, x, carry0)
  jax.tree_util.tree_map(close, got, want)


@pytest.mark.parametrize('name', ['lstm', 'gru_after'])
def test_fused_path_under_vmap_of_grad(name):
  """Seeds vmapped over params (the ablation use) give per-seed gradients."""
  x = np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)
  rnn = sn.RNN(CELLS[name]())
  params = rnn.init(jax.random.key(0), x)
  stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a, 0.5 * a]), params)
  loss = lambda p: jnp.sum(rnn.apply(p, x, lengths=LENGTHS) ** 2)
  batched = jax.vmap(jax.grad(loss))(stacked)
  second = jax.grad(loss)(jax.tree_util.tree_map(lambda a: 0.5 * a, params))
  jax.tree_util.tree_map(close, jax.tree_util.tree_map(lambda a: a[1], batched), second)


@pytest.mark.parametrize('name,reverse', [(name, index % 2 == 1) for index, name in
                                          enumerate(sorted(CELLS))])
def test_fused_gradients_match_float64_finite_differences(name, reverse, monkeypatch):
  """The hand-written backward pass against central differences of the forward, in float64."""
  b, t, f = 3, 5, 3
  lengths = np.array([5, 3, 1])
  calls = []
  fused_scan = rnn_module.fused_scan
  monkeypatch.setattr(rnn_module, 'fused_scan',
                      lambda *args: calls.append(args[0]) or fused_scan(*args))
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(b, t, f))
    cell = CELLS[name]()
    rnn = sn.RNN(cell, return_carry=True, reverse=reverse)
    params = random_tree64(rnn.init(jax.random.key(0), x), seed=1)
    carry0 = random_tree64(cell.initialize_carry(None, (b, f)), seed=2)
    out_weights = rng.normal(size=(b, t, H))
    carry_weights = random_tree64(carry0, seed=3)

    def loss(params, x, carry0):
      carry, ys = rnn.apply(params, x, lengths=lengths, initial_carry=carry0)
      carry_term = sum(jnp.sum(c * w) for c, w in zip(jax.tree_util.tree_leaves(carry),
                                                       jax.tree_util.tree_leaves(carry_weights)))
      return jnp.sum(jnp.tanh(ys) * out_weights) + carry_term

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, x, carry0)
    assert calls, 'sn.RNN did not take the fused path'
    for part in grads:
      assert np.abs(ravel_pytree(part)[0]).max() > 1e-3
    got = ravel_pytree(grads)[0]
    theta, unravel = ravel_pytree((params, x, carry0))
    assert theta.dtype == got.dtype == np.float64
    eps = 1e-6
    losses = jax.jit(jax.vmap(lambda th: loss(*unravel(th))))
    steps = eps * np.eye(theta.size)
    want = (losses(theta + steps) - losses(theta - steps)) / (2 * eps)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)
