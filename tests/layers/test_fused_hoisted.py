"""The fused kernel's hoisted variant (input projection before the loop): the results and
gradients of the in-loop variant and of the plain scan; the choice per platform."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import seqnets as sn
from seqnets.layers import fused_scan
from seqnets.layers import rnn as rnn_module

B, T, F, H, K = 3, 5, 2, 4, 2
LENGTHS = np.array([5, 2, 0])           # full, short, empty
CELLS = {
    'lstm': lambda **kw: sn.LSTMCell(H, **kw),
    'lstm_peep': lambda **kw: sn.LSTMCell(H, use_peepholes=True, **kw),
    'gru': lambda **kw: sn.GRUCell(H, **kw),
    'gru_after': lambda **kw: sn.GRUCell(H, reset_after=True, **kw),
    'elman': lambda **kw: sn.ElmanCell(H, **kw),
}
OTHER_CELLS = {
    'leaky': lambda: sn.LeakyRNNCell(H, leak=0.5, learn_leak=True),
    'orthogonal': lambda: sn.OrthogonalRNNCell(H),
}
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-5)


def random_like(tree, seed):
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda a: jnp.asarray(rng.normal(size=np.shape(a)), jnp.result_type(a)), tree)


def results_and_gradients(layer, params, x, carry0):
  """`((d_params, d_x, d_carry0), (final_carry, all_carries, outputs))` of a weighted sum of
  everything the layer returns."""
  def loss(params, x, carry0):
    results = layer.apply(params, x, LENGTHS, carry0)
    weights = random_like(results, seed=3)
    total = sum(jnp.sum(w * r.astype(jnp.float32)) for w, r in
                zip(jax.tree_util.tree_leaves(weights), jax.tree_util.tree_leaves(results)))
    return total, results
  return jax.grad(loss, argnums=(0, 1, 2), has_aux=True)(params, x, carry0)


@pytest.mark.parametrize('name', list(CELLS))
def test_hoisted_equals_in_loop_and_scan_with_lengths_reverse_and_remat(name):
  x = random_like(jnp.zeros((B, T, F)), seed=0)
  carry0 = random_like(CELLS[name]().initialize_carry(None, (B, F)), seed=1)
  layer = lambda implementation, remat=None: sn.RNN(
      CELLS[name](), implementation=implementation, remat=remat, reverse=True,
      return_carry=True, return_all_carries=True)
  layers = [layer('fused_hoisted'), layer('fused_hoisted', K), layer('fused_in_loop'),
            layer('scan')]
  params = random_like(layers[0].init(jax.random.key(0), x, LENGTHS), seed=2)
  every = jax.jit(lambda *args: [results_and_gradients(l, *args) for l in layers])
  hoisted, *others = every(params, x, carry0)
  for other in others:
    jax.tree_util.tree_map(close, hoisted, other)
  assert np.abs(ravel_pytree(hoisted[0])[0]).max() > 1e-2


def test_the_leaky_and_orthogonal_cells_hoisted_equal_in_loop():
  """Their in-loop variants are held to the plain scan elsewhere (test_leaky.py,
  test_orthogonal.py); one program for both cells."""
  x = random_like(jnp.zeros((B, T, F)), seed=0)
  pairs = {name: [sn.RNN(cell(), implementation=v, reverse=True, return_carry=True)
                  for v in ('fused_hoisted', 'fused_in_loop')]
           for name, cell in OTHER_CELLS.items()}
  params = {name: random_like(layers[0].init(jax.random.key(0), x, LENGTHS), seed=2)
            for name, layers in pairs.items()}
  carry0 = random_like(jnp.zeros((B, H)), seed=1)
  every = jax.jit(lambda params: {
      name: [results_and_gradients(l, params[name], x, carry0) for l in layers]
      for name, layers in pairs.items()})
  for hoisted, in_loop in every(params).values():
    jax.tree_util.tree_map(close, hoisted, in_loop)


def test_hoisted_under_vmap_of_grad_gives_each_seeds_gradients():
  x = random_like(jnp.zeros((B, T, F)), seed=0)
  rnn = sn.RNN(sn.LSTMCell(H), implementation='fused_hoisted')
  params = rnn.init(jax.random.key(0), x)
  stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a, 0.5 * a]), params)
  loss = lambda p: jnp.sum(rnn.apply(p, x, lengths=LENGTHS) ** 2)
  both = jax.jit(lambda s, p: (jax.vmap(jax.grad(loss))(s), jax.grad(loss)(p)))
  batched, second = both(stacked, jax.tree_util.tree_map(lambda a: 0.5 * a, params))
  jax.tree_util.tree_map(close, jax.tree_util.tree_map(lambda a: a[1], batched), second)


def test_bfloat16_hoisted_gradients_come_back_in_float32_near_the_float32_ones():
  x = random_like(jnp.zeros((B, T, F)), seed=0)
  layers = {dtype: sn.RNN(sn.LSTMCell(H, dtype=dtype), implementation=implementation)
            for dtype, implementation in ((jnp.bfloat16, 'fused_hoisted'),
                                          (jnp.float32, 'fused_in_loop'))}
  params = random_like(layers[jnp.float32].init(jax.random.key(0), x), seed=2)
  grad = lambda layer: jax.grad(
      lambda p: jnp.sum(jnp.sin(layer.apply(p, x, LENGTHS).astype(jnp.float32))))(params)
  low, full = jax.jit(lambda: [grad(layers[jnp.bfloat16]), grad(layers[jnp.float32])])()
  assert {a.dtype for a in jax.tree_util.tree_leaves(low)} == {jnp.dtype(jnp.float32)}
  jax.tree_util.tree_map(
      functools.partial(np.testing.assert_allclose, rtol=0.05, atol=0.05), low, full)


def test_the_platform_picks_the_variant_and_the_unroll(monkeypatch):
  lstm = sn.LSTMCell(H).scan_kernel()
  assert rnn_module.hoists('fused', lstm, 'gpu') and rnn_module.hoists('auto', lstm, 'tpu')
  assert not rnn_module.hoists('fused', lstm, 'cpu')        # measured: in-loop faster there
  assert not rnn_module.hoists('fused_in_loop', lstm, 'gpu')
  assert rnn_module.hoists('fused_hoisted', lstm, 'cpu')
  assert (rnn_module.default_unroll('cpu'), rnn_module.default_unroll('gpu')) == (1, 8)

  calls = []
  monkeypatch.setattr(rnn_module, 'fused_scan',
                      lambda *args: calls.append(args) or fused_scan.fused_scan(*args))
  x = jnp.zeros((B, T, F))
  for platform in ('gpu', 'cpu'):
    monkeypatch.setattr(jax, 'default_backend', lambda: platform)
    jax.eval_shape(sn.RNN(sn.GRUCell(H)).init, jax.random.key(0), x)
    jax.eval_shape(sn.RNN(sn.GRUCell(H), unroll=2).init, jax.random.key(0), x)
  # (unroll, remat, hoist_inputs) of each call: the platform's, or the given unroll.
  assert [args[5:] for args in calls] == [(8, False, None, True), (2, False, None, True),
                                          (1, False, None, False), (2, False, None, False)]


def test_a_kernel_without_the_hoisted_variant_keeps_the_loop_or_refuses():
  kernel = _InLoopOnly(sn.ElmanCell(H).scan_kernel())
  assert not fused_scan.hoists_inputs(kernel)
  assert not rnn_module.hoists('fused', kernel, 'gpu')
  with pytest.raises(ValueError, match='fused_hoisted'):
    rnn_module.hoists('fused_hoisted', kernel, 'gpu')
  with pytest.raises(ValueError, match='hoist_inputs'):
    fused_scan.fused_scan(kernel, {}, jnp.zeros((B, H)), jnp.zeros((B, T, F)), None,
                          hoist_inputs=True)


class _InLoopOnly:
  """A kernel with the in-loop step only (a wrapper hiding `project`)."""

  def __init__(self, kernel):
    self._kernel = kernel

  def __getattr__(self, name):
    if name in ('project', 'forward_projected'):
      raise AttributeError(name)
    return getattr(self._kernel, name)
