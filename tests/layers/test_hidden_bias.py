"""`hidden_bias=True` (PyTorch's second bias) is the one-bias cell with the biases summed, in
the fused scan and in the plain step, outputs and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn

B, T, F, H = 2, 5, 3, 4
LENGTHS = np.array([5, 2])
CELLS = {
    'lstm': lambda **kw: sn.LSTMCell(H, **kw),
    'gru_reset_after': lambda **kw: sn.GRUCell(H, reset_after=True, **kw),
    'gru_reset_before': lambda **kw: sn.GRUCell(H, **kw),
    'elman': lambda **kw: sn.ElmanCell(H, **kw),
}


def random_tree(tree, seed):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      treedef, [rng.normal(0, 0.5, np.shape(l)).astype(np.float32) for l in leaves])


def merged(cell_params, name):
  """The one-bias params: bias + hidden_bias (the GRU reset-after's n part as recurrent_bias)."""
  p = dict(cell_params)
  b_h = p.pop('hidden_bias')
  if name == 'gru_reset_after':
    p['bias'] = p['bias'] + np.concatenate([b_h[:2 * H], np.zeros(H, b_h.dtype)])
    p['recurrent_bias'] = b_h[2 * H:]
  else:
    p['bias'] = p['bias'] + b_h
  return p


@pytest.mark.parametrize('name', sorted(CELLS))
@pytest.mark.parametrize('fused', [True, False])
def test_two_biases_are_their_sum(name, fused):
  x = np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)
  two = sn.RNN(CELLS[name](hidden_bias=True), fused=fused)
  one = sn.RNN(CELLS[name](), fused=fused)
  params = random_tree(two.init(jax.random.key(0), x, lengths=LENGTHS)['params'], seed=1)
  assert params['cell']['hidden_bias'].shape == ((4 if name == 'lstm' else 3 if 'gru' in name
                                                  else 1) * H,)
  one_params = {'cell': merged(params['cell'], name)}
  np.testing.assert_allclose(jax.jit(two.apply)({'params': params}, x, lengths=LENGTHS),
                             jax.jit(one.apply)({'params': one_params}, x, lengths=LENGTHS),
                             rtol=1e-6, atol=1e-6)

  def loss(model, p):
    return jnp.sum(model.apply({'params': p}, x, lengths=LENGTHS) ** 2)

  grads = jax.jit(jax.grad(lambda p: loss(two, p)))(params)['cell']
  one_grads = jax.jit(jax.grad(lambda p: loss(one, p)))(one_params)['cell']
  np.testing.assert_allclose(grads['bias'], one_grads['bias'], rtol=1e-5, atol=1e-6)
  want_hidden = one_grads['bias']
  if name == 'gru_reset_after':
    want_hidden = jnp.concatenate([one_grads['bias'][:2 * H], one_grads['recurrent_bias']])
  np.testing.assert_allclose(grads['hidden_bias'], want_hidden, rtol=1e-5, atol=1e-6)


def test_hidden_bias_starts_at_zero():
  params = sn.LSTMCell(H, hidden_bias=True).init(
      jax.random.key(0), sn.LSTMCell(H).initialize_carry(None, (B, F)), jnp.ones((B, F)))
  np.testing.assert_array_equal(params['params']['hidden_bias'], 0)
  assert params['params']['bias'][H] == 1.0                 # the forget bias is not doubled
