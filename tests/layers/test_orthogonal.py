"""`OrthogonalRNNCell` against a NumPy transcription, its fused path against the per-step
ones, and U's orthogonality through training.

Every gradient goes through `loss_and_grads` (one compiled program per configuration, shared
by the tests): programs holding `expm` and its derivative are slow to compile."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg
from flax import linen as nn
from jax.flatten_util import ravel_pytree

import seqnets as sn
from seqnets.layers import rnn as rnn_module
from seqnets.layers.orthogonal import OrthogonalRNNCell

B, T, F, H = 3, 6, 4, 6
LENGTHS = np.array([6, 3, 0])
close = functools.partial(np.testing.assert_allclose, rtol=2e-5, atol=2e-5)


def random_tree(tree, seed, scale=0.5):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      treedef, [rng.normal(0, scale, l.shape).astype(np.float32) for l in leaves])


def random_params(module, seed, *args, **kwargs):
  """`module.init(key, *args, **kwargs)` with N(0, 0.5) leaves (traced only, not run)."""
  return random_tree(jax.eval_shape(functools.partial(module.init, jax.random.key(0), *args,
                                                      **kwargs)), seed)


def init_params(cell):
  """`sn.RNN(cell)`'s initial params, without running the layer."""
  return {'params': {'cell': cell.init(jax.random.key(0), F, method=cell.cell_params)['params']}}


def numpy_u(skew, parametrization):
  s = np.asarray(skew, np.float64) - np.asarray(skew, np.float64).T
  if parametrization == 'expm':
    return scipy.linalg.expm(s)
  eye = np.eye(len(s))
  return np.linalg.solve(eye + s, eye - s)


def numpy_step(p, h, x, parametrization, activation):
  z = x @ p['input_kernel'] + h @ numpy_u(p['recurrent_skew'], parametrization)
  b = p['bias']
  if activation == 'modrelu':
    return np.sign(z) * np.maximum(np.abs(z) + b, 0)
  return np.tanh(z + b) if activation == 'tanh' else z + b


def numpy_rnn(p, x, lengths, parametrization, activation, reverse=False, h0=None):
  """`(final_carry, outputs)` row by row over the real steps, outputs 0 past each end."""
  batch, steps = x.shape[:2]
  lengths = np.full(batch, steps) if lengths is None else lengths
  hidden = p['bias'].shape[0]
  carry = np.zeros((batch, hidden)) if h0 is None else np.array(h0, np.float64)
  outputs = np.zeros((batch, steps, hidden))
  for b in range(batch):
    order = range(lengths[b])[::-1] if reverse else range(lengths[b])
    for t in order:
      carry[b] = numpy_step(p, carry[b:b + 1], x[b:b + 1, t], parametrization, activation)[0]
      outputs[b, t] = carry[b]
  return carry, outputs


def make_layer(kind, parametrization, activation, reverse):
  cell = OrthogonalRNNCell(H, parametrization=parametrization, activation=activation)
  if kind == 'flax':
    return nn.RNN(cell, return_carry=True)
  return sn.RNN(cell, return_carry=True, reverse=reverse, fused=kind == 'fused')


def run(params, x, carry0, lengths, *, kind, parametrization, activation, reverse=False):
  layer = make_layer(kind, parametrization, activation, reverse)
  if kind == 'flax':
    return layer.apply(params, x, initial_carry=carry0)
  return layer.apply(params, x, lengths=lengths, initial_carry=carry0)


@functools.partial(jax.jit, static_argnames=('kind', 'parametrization', 'activation', 'reverse'))
def loss_and_grads(params, x, carry0, lengths, weights, **config):
  """`((loss, (final_carry, outputs)), grads for (params, x, carry0))` for a toy loss of
  the outputs and final carry."""
  def loss(params, x, carry0):
    carry, ys = run(params, x, carry0, lengths, **config)
    return jnp.sum(jnp.tanh(ys) * weights[0]) + jnp.sum(carry * weights[1]), (carry, ys)
  return jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(params, x, carry0)


def data(seed=0):
  """Inputs, initial carry and loss weights; x[0, 0] = 0 and h0[0] = 0 make z = 0 exactly
  at row 0's first step when read forwards (modReLU's kink)."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(B, T, F)).astype(np.float32)
  carry0 = rng.normal(size=(B, H)).astype(np.float32)
  x[0, 0], carry0[0] = 0, 0
  weights = (rng.normal(size=(B, T, H)).astype(np.float32),
             rng.normal(size=(B, H)).astype(np.float32))
  return x, carry0, weights


@pytest.mark.parametrize('parametrization,bound', [('expm', math.pi), ('cayley', math.pi / 2)])
def test_initial_u_is_block_diagonal_random_rotations(parametrization, bound):
  """Henaff init (expm) and its Cayley analogue: 2 × 2 rotations by angles ~ U[−bound, bound]."""
  hidden = 201                                           # odd: the last unit is a 1 × 1 block
  cell = OrthogonalRNNCell(hidden, parametrization=parametrization)
  skew = np.asarray(cell.init(jax.random.key(0), F, method=cell.cell_params)
                    ['params']['recurrent_skew'])
  pairs = np.arange(0, hidden - 1, 2)
  np.testing.assert_array_equal(np.delete(skew.ravel(), pairs * hidden + pairs + 1), 0)
  u = numpy_u(skew, parametrization)
  np.testing.assert_allclose(u.T @ u, np.eye(hidden), atol=1e-12)
  blocks = np.kron(np.eye(hidden // 2 + 1), np.ones((2, 2)))[:hidden, :hidden]
  np.testing.assert_array_equal(u[blocks == 0], 0)
  assert u[-1, -1] == 1
  angles = np.sort(np.arctan2(u[pairs, pairs + 1], u[pairs, pairs]))
  assert np.all(np.abs(angles) <= bound)
  uniform = np.linspace(-bound, bound, len(angles))
  assert np.abs(angles - uniform).max() < 0.2 * bound    # spread over the whole range


def test_attributes_are_checked_and_carry_is_zeros():
  x = np.zeros((2, 3, F), np.float32)
  for bad in (dict(parametrization='qr'), dict(activation='relu')):
    with pytest.raises(ValueError, match=next(iter(bad))):
      jax.eval_shape(sn.RNN(OrthogonalRNNCell(H, **bad)).init, jax.random.key(0), x)
  carry = OrthogonalRNNCell(H, dtype=jnp.bfloat16).initialize_carry(None, (2, 3, F))
  assert carry.shape == (2, 3, H) and carry.dtype == jnp.bfloat16
  np.testing.assert_array_equal(carry, 0)


@pytest.mark.parametrize('parametrization,reverse', [('expm', False), ('cayley', True)])
def test_u_stays_orthogonal_through_adam_steps(parametrization, reverse):
  x, carry0, weights = data()
  cell = OrthogonalRNNCell(H, parametrization=parametrization)
  params = init_params(cell)
  u0 = np.asarray(cell.recurrent_kernel(params['params']['cell']))
  optimizer = optax.adam(0.05)
  state = optimizer.init(params)
  update = jax.jit(optimizer.update)
  values = []
  for _ in range(20):
    (value, _), (grads, _, _) = loss_and_grads(params, x, carry0, LENGTHS, weights, kind='fused',
                                               parametrization=parametrization,
                                               activation='modrelu', reverse=reverse)
    updates, state = update(grads, state, params)
    params = optax.apply_updates(params, updates)
    values.append(value)
  assert values[-1] < values[0] - 1
  u = np.asarray(cell.recurrent_kernel(params['params']['cell']))
  assert np.abs(u - u0).max() > 0.05                     # U did move
  assert np.linalg.norm(u.T @ u - np.eye(H)) < 1e-5


@pytest.mark.parametrize('parametrization', ['expm', 'cayley'])
def test_step_matches_numpy(parametrization):
  rng = np.random.default_rng(1)
  x, h = rng.normal(size=(B, F)).astype(np.float32), rng.normal(size=(B, H)).astype(np.float32)
  for activation in ('modrelu', 'tanh', 'identity'):
    cell = OrthogonalRNNCell(H, parametrization=parametrization, activation=activation)
    p = random_params(cell, 2, F, method=cell.cell_params)['params']
    new_h, y = cell.apply({'params': p}, h, x)
    want = numpy_step(p, h, x, parametrization, activation)
    close(new_h, want)
    np.testing.assert_array_equal(new_h, y)
    if activation == 'modrelu':                          # both branches of modReLU are exercised
      assert (want == 0).any() and (want != 0).any()


CASES = {   # parametrization, activation, lengths, reverse, per-step paths to compare
    'expm_modrelu_lengths': ('expm', 'modrelu', LENGTHS, False, ('stepwise',)),
    'cayley_modrelu_lengths_reverse': ('cayley', 'modrelu', LENGTHS, True, ('stepwise',)),
    'cayley_tanh': ('cayley', 'tanh', None, False, ('flax',)),
}


@pytest.mark.parametrize('case', sorted(CASES))
def test_fused_path_equals_per_step_paths_and_numpy(case, monkeypatch):
  """Fused vs `sn.RNN(fused=False)` (and `flax.linen.RNN`): outputs, final carry and
  gradients for params, inputs and initial carry; padding changes nothing."""
  parametrization, activation, lengths, reverse, others = CASES[case]
  config = dict(parametrization=parametrization, activation=activation)
  x, carry0, weights = data()
  params = random_params(sn.RNN(OrthogonalRNNCell(H)), 1, x)
  calls = []
  fused_scan = rnn_module.fused_scan
  monkeypatch.setattr(rnn_module, 'fused_scan',
                      lambda *args: calls.append(args[0]) or fused_scan(*args))
  for kind in ('fused',) + others:                        # only 'fused' runs fused_scan
    jax.eval_shape(functools.partial(run, kind=kind, reverse=reverse, **config),
                   params, x, carry0, lengths)
    assert len(calls) == 1
  results = {}
  for kind in ('fused',) + others:
    (_, results[kind]), grads = loss_and_grads(params, x, carry0, lengths, weights, kind=kind,
                                               reverse=reverse, **config)
    results[kind] += grads                                # carry, outputs, grads

  want_carry, want_outputs = numpy_rnn(params['params']['cell'], x, lengths, parametrization,
                                       activation, reverse, carry0)
  close(results['fused'][0], want_carry)
  close(results['fused'][1], want_outputs)
  for kind in others:
    jax.tree_util.tree_map(close, results[kind], results['fused'])
  for part in jax.tree_util.tree_leaves(results['fused'][2:]):
    assert np.abs(part).max() > 1e-3
  if lengths is not None:
    mask = np.asarray(sn.sequence_mask(lengths, T))[..., None]
    noise = np.random.default_rng(5).normal(size=x.shape).astype(np.float32) * 10
    (_, noisy), grads = loss_and_grads(params, np.where(mask, x, noise), carry0, lengths,
                                       weights, kind='fused', reverse=reverse, **config)
    jax.tree_util.tree_map(np.testing.assert_array_equal, noisy + grads, results['fused'])
    np.testing.assert_array_equal(np.where(mask, 0, results['fused'][3]), 0)
    np.testing.assert_array_equal(results['fused'][0][2], carry0[2])   # length 0: carry kept


def test_bidirectional_and_stacked_match_numpy():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(B, T, F)).astype(np.float32)
  bi = sn.Bidirectional(sn.RNN(OrthogonalRNNCell(H)),
                        sn.RNN(OrthogonalRNNCell(H, parametrization='cayley')))
  top = sn.RNN(OrthogonalRNNCell(H, parametrization='cayley', activation='tanh'))
  model = sn.StackedRNN([bi, top])
  params = random_params(model, 1, x, deterministic=True)
  got = model.apply(params, x, LENGTHS, deterministic=True)
  p = params['params']
  _, forward = numpy_rnn(p['layers_0']['forward']['cell'], x, LENGTHS, 'expm', 'modrelu')
  _, backward = numpy_rnn(p['layers_0']['backward']['cell'], x, LENGTHS, 'cayley', 'modrelu',
                          reverse=True)
  _, want = numpy_rnn(p['layers_1']['cell'], np.concatenate([forward, backward], -1), LENGTHS,
                      'cayley', 'tanh')
  close(got, want)


@pytest.mark.parametrize('parametrization', ['expm', 'cayley'])
def test_identity_activation_preserves_norm_over_100_steps(parametrization):
  rng = np.random.default_rng(0)
  steps = 100
  model = sn.RNN(OrthogonalRNNCell(H, parametrization=parametrization, activation='identity'))
  x = np.zeros((B, steps, F), np.float32)
  params = init_params(model.cell)
  cell_params = params['params']['cell']
  np.testing.assert_array_equal(cell_params['bias'], 0)
  cell_params['recurrent_skew'] = rng.normal(size=(H, H)).astype(np.float32)
  h0 = rng.normal(size=(B, H)).astype(np.float32)
  hs = np.asarray(model.apply(params, x, initial_carry=h0))
  norms = np.linalg.norm(hs, axis=-1)
  np.testing.assert_allclose(norms, np.repeat(np.linalg.norm(h0, axis=-1)[:, None], steps, 1),
                             rtol=1e-4)
  assert np.abs(hs[:, -1] - h0).max() > 0.1


def test_fused_gradients_match_float64_finite_differences():
  """A modReLU layer under an identity one (cayley, with lengths): the gradients of both
  against central differences along random directions."""
  b, t, f, hidden = 2, 4, 3, 4
  lengths = np.array([4, 2])
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(b, t, f))
    layers = [sn.RNN(OrthogonalRNNCell(hidden, parametrization='cayley', activation=activation,
                                       param_dtype=jnp.float64), return_carry=True)
              for activation in ('modrelu', 'identity')]
    params = [random_params(layers[0], 3, x), random_params(layers[1], 4, np.zeros((b, t, hidden)))]
    params = jax.tree_util.tree_map(lambda a: a.astype(np.float64), params)
    carry0 = rng.normal(size=(b, hidden))
    out_weights = rng.normal(size=(b, t, hidden))
    # Finite differences need every real step's z away from modReLU's kinks (z = 0 and
    # |z| = −b), and some units cut to 0.
    p, h, margin, cut = params[0]['params']['cell'], carry0, np.inf, 0
    for step in range(t):
      real = step < lengths
      z = (x[:, step] @ p['input_kernel'] + h @ numpy_u(p['recurrent_skew'], 'cayley'))[real]
      margin = min(margin, np.abs(z).min(), np.abs(np.abs(z) + p['bias']).min())
      h = np.where(real[:, None], numpy_step(p, h, x[:, step], 'cayley', 'modrelu'), h)
      cut += np.sum(h[real] == 0)
    assert margin > 0.05 and cut > 0

    def loss(params, x, carry0):
      carry, ys = layers[0].apply(params[0], x, lengths=lengths, initial_carry=carry0)
      top_carry, ys = layers[1].apply(params[1], ys, lengths=lengths)
      return (jnp.sum(jnp.tanh(ys) * out_weights) + jnp.sum(carry ** 2)
              + jnp.sum(top_carry * carry0))

    assert all(rnn_module.uses_fused_kernel(layer.cell) for layer in layers)
    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, x, carry0)
    for part in jax.tree_util.tree_leaves(grads):
      assert np.abs(part).max() > 1e-3
    theta, unravel = ravel_pytree((params, x, carry0))
    directions = rng.normal(size=(6, theta.size))
    eps = 1e-6
    losses = jax.jit(jax.vmap(lambda th: loss(*unravel(th))))
    want = (losses(theta + eps * directions) - losses(theta - eps * directions)) / (2 * eps)
    np.testing.assert_allclose(directions @ ravel_pytree(grads)[0], want, rtol=1e-6, atol=1e-8)
