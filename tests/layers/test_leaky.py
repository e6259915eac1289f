"""`LeakyRNNCell` against NumPy, `ElmanCell` (α = 1), and its fused path against plain scans."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

import seqnets as sn
from seqnets.layers import rnn as rnn_module
from seqnets.layers.elman import ElmanCell
from seqnets.layers.leaky import LeakyRNNCell

B, T, F, H = 3, 6, 4, 5
LENGTHS = np.array([6, 3, 1])
PER_UNIT = (0.1, 0.3, 0.5, 0.8, 1.0)
close = functools.partial(np.testing.assert_allclose, rtol=2e-5, atol=2e-5)


def random_tree(tree, seed):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      treedef, [rng.normal(0, 0.5, np.shape(l)).astype(np.float32) for l in leaves])


def numpy_leaky(p, h, x, alpha):
  g = np.tanh(x @ p['input_kernel'] + h @ p['recurrent_kernel'] + p['bias'])
  return (1 - alpha) * h + alpha * g


def sigmoid(v):
  return 1 / (1 + np.exp(-v))


@pytest.fixture
def data():
  rng = np.random.default_rng(1)
  return rng.normal(size=(B, F)).astype(np.float32), rng.normal(size=(B, H)).astype(np.float32)


@pytest.mark.parametrize('leak,learn', [(0.3, False), (PER_UNIT, False), (0.3, True)])
def test_step_matches_numpy(data, leak, learn):
  x, h = data
  cell = LeakyRNNCell(H, leak=leak, learn_leak=learn)
  p = random_tree(jax.eval_shape(cell.init, jax.random.key(0), h, x)['params'], seed=2)
  alpha = sigmoid(p['leak_logit']) if learn else np.asarray(leak)
  new_h, y = cell.apply({'params': p}, h, x)
  close(new_h, numpy_leaky(p, h, x, alpha))
  np.testing.assert_array_equal(new_h, y)


def test_learned_leak_starts_at_the_given_value_and_fixed_leak_has_no_param(data):
  x, h = data
  p = jax.jit(LeakyRNNCell(H, leak=PER_UNIT[:-1] + (0.9,), learn_leak=True).init)(
      jax.random.key(0), h, x)['params']
  close(sigmoid(np.asarray(p['leak_logit'], np.float64)), PER_UNIT[:-1] + (0.9,))
  fixed = jax.jit(LeakyRNNCell(H, leak=0.5).init)(jax.random.key(0), h, x)['params']
  assert set(fixed) == {'input_kernel', 'recurrent_kernel', 'bias'}
  assert fixed['recurrent_kernel'].shape == (H, H) and fixed['input_kernel'].shape == (F, H)
  u = np.asarray(fixed['recurrent_kernel'])
  close(u.T @ u, np.eye(H))                          # orthogonal, as ElmanCell's


@pytest.mark.parametrize('leak,learn', [(0.0, False), (1.5, False), (1.0, True),
                                        ((0.5,) * 3, False)])
def test_bad_leak_raises(data, leak, learn):
  x, h = data
  with pytest.raises(ValueError, match='leak'):
    LeakyRNNCell(H, leak=leak, learn_leak=learn).init(jax.random.key(0), h, x)


def test_leak_one_equals_elman_tanh_with_gradients():
  x = np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)
  leaky = sn.RNN(LeakyRNNCell(H, leak=1.0))
  params = random_tree(jax.eval_shape(leaky.init, jax.random.key(0), x), seed=3)
  weights = np.random.default_rng(1).normal(size=(B, T, H)).astype(np.float32)

  def run(layer):
    def loss(p):
      y = layer.apply(p, x, lengths=LENGTHS)
      return jnp.sum(jnp.tanh(y) * weights), y
    return jax.jit(jax.grad(loss, has_aux=True))(params)

  grads, y = run(leaky)
  elman_grads, elman_y = run(sn.RNN(ElmanCell(H)))
  np.testing.assert_array_equal(y, elman_y)
  jax.tree_util.tree_map(close, grads, elman_grads)
  h, x_t = np.ones((B, H), np.float32), x[:, 0]
  cell_params = {'params': params['params']['cell']}
  np.testing.assert_array_equal(LeakyRNNCell(H, leak=1.0).apply(cell_params, h, x_t),
                                ElmanCell(H).apply(cell_params, h, x_t))


@pytest.mark.parametrize('leak,learn', [(PER_UNIT, False), (0.4, True)])
def test_fused_equals_plain_scans_with_gradients(leak, learn, monkeypatch):
  """A loss of the outputs and final carry, and its gradients (params incl. leak_logit, inputs,
  initial carry), on the fused path against autodiff of `sn.RNN(fused=False)` and (learned α)
  of `flax.linen.RNN`."""
  calls = []
  fused_scan = rnn_module.fused_scan
  monkeypatch.setattr(rnn_module, 'fused_scan',
                      lambda *args: calls.append(args[0]) or fused_scan(*args))
  rng = np.random.default_rng(0)
  x = rng.normal(size=(B, T, F)).astype(np.float32)
  cell = LeakyRNNCell(H, leak=leak, learn_leak=learn)
  params = random_tree(jax.eval_shape(sn.RNN(cell).init, jax.random.key(0), x), seed=1)
  calls.clear()
  carry0 = rng.normal(size=(B, H)).astype(np.float32)
  weights = rng.normal(size=(B, T, H)).astype(np.float32)
  carry_weights = rng.normal(size=(B, H)).astype(np.float32)

  def run_ours(fused, p, x, c):
    return sn.RNN(cell, fused=fused, return_carry=True).apply(p, x, lengths=LENGTHS,
                                                                initial_carry=c)

  def run_flax(p, x, c):
    carry, ys = nn.RNN(cell, return_carry=True).apply(p, x, seq_lengths=LENGTHS, initial_carry=c)
    mask = (np.arange(T)[None] < LENGTHS[:, None])[..., None]
    return carry, jnp.where(mask, ys, 0)

  def loss(run, p, x, c):
    carry, ys = run(p, x, c)
    return jnp.sum(jnp.tanh(ys) * weights) + jnp.sum(carry * carry_weights)

  runs = {'fused': functools.partial(run_ours, True), 'plain': functools.partial(run_ours, False)}
  if learn:
    runs['flax'] = run_flax
  results = {name: jax.jit(jax.value_and_grad(functools.partial(loss, run), argnums=(0, 1, 2)))(
      params, x, carry0) for name, run in runs.items()}
  assert len(calls) == 1 and calls[0].leak == (None if learn else PER_UNIT)
  for name in set(runs) - {'fused'}:
    jax.tree_util.tree_map(close, results['fused'], results[name])
  grads = results['fused'][1][0]['params']['cell']
  if learn:
    assert np.abs(grads['leak_logit']).min() > 1e-4
  assert np.abs(grads['recurrent_kernel']).max() > 1e-3
