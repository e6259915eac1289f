"""`sn.RNN(..., remat=k)`: the same outputs, carries and gradients as without, on both loops,
for less memory (compiled, and as `seqnets.analysis.memory` predicts)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn
from seqnets.analysis import rnn_activation_bytes, training_memory

B, T, F, H, K = 3, 7, 2, 3, 3
LENGTHS = np.array([7, 5, 0])           # full, not a multiple of K, empty
CELLS = {'lstm': lambda: sn.LSTMCell(H), 'gru': lambda: sn.GRUCell(H),
         'elman': lambda: sn.ElmanCell(H)}
VARIANTS = [('fused', None), ('fused', K), ('scan', None), ('scan', K)]


def random_like(tree, seed):
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda a: jnp.asarray(rng.normal(size=np.shape(a)), jnp.float32), tree)


@pytest.mark.parametrize('name', list(CELLS))
def test_remat_gives_the_results_and_gradients_of_no_remat_on_both_loops(name):
  x = random_like(jnp.zeros((B, T, F)), seed=0)
  carry0 = random_like(CELLS[name]().initialize_carry(None, (B, F)), seed=1)
  layers = [sn.RNN(CELLS[name](), implementation=implementation, remat=remat, reverse=True,
                   return_carry=True, return_all_carries=True)
            for implementation, remat in VARIANTS]
  params = random_like(layers[0].init(jax.random.key(0), x, LENGTHS), seed=2)

  def results_and_gradients(layer, params, x, carry0):
    def loss(params, x, carry0):
      results = layer.apply(params, x, LENGTHS, carry0)
      weights = random_like(results, seed=3)
      return sum(jnp.sum(w * r) for w, r in zip(jax.tree_util.tree_leaves(weights),
                                                  jax.tree_util.tree_leaves(results))), results
    return jax.grad(loss, argnums=(0, 1, 2), has_aux=True)(params, x, carry0)

  # All four variants in one program: one compile.
  every = jax.jit(lambda *args: [results_and_gradients(layer, *args) for layer in layers])
  (fused, fused_remat, scan, scan_remat) = every(params, x, carry0)
  close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-5)
  jax.tree_util.tree_map(close, fused_remat, fused)
  jax.tree_util.tree_map(close, scan_remat, scan)
  jax.tree_util.tree_map(close, scan, fused)
  # The contract past each end holds with remat too: outputs 0, carries frozen.
  (final, carries, outputs) = fused_remat[1]
  assert not np.any(outputs[2]) and not np.any(outputs[1, 5:])
  jax.tree_util.tree_map(lambda c, c0: close(c[2], c0[2]), final, carry0)


@pytest.mark.parametrize('remat', [-1, 2.5, True, '3'])
def test_bad_remat_is_a_value_error_naming_it(remat):
  with pytest.raises(ValueError, match='remat'):
    sn.RNN(sn.ElmanCell(H), remat=remat).init(jax.random.key(0), jnp.zeros((B, T, F)))


@pytest.mark.parametrize('implementation', ['fused', 'scan'])
def test_remat_cuts_the_compiled_gradient_memory(implementation):
  x = jax.ShapeDtypeStruct((2, 1000, F), jnp.float32)

  def temp_bytes(remat):
    layer = sn.RNN(sn.LSTMCell(16), implementation=implementation, remat=remat)
    params = jax.eval_shape(layer.init, jax.random.key(0), x)
    grad = jax.grad(lambda p, x: jnp.sum(layer.apply(p, x)))
    return jax.jit(grad).lower(params, x).compile().memory_analysis().temp_size_in_bytes

  assert temp_bytes(32) < temp_bytes(None) / 4


@pytest.mark.parametrize('remat', [None, K])
def test_training_memory_keeps_what_rnn_activation_bytes_says(remat):
  x = jax.ShapeDtypeStruct((B, T, F), jnp.float32)
  traced = training_memory(sn.RNN(sn.LSTMCell(H), remat=remat), x).activations
  prepared = 4 * (4 * (F + H) * H + 4 * H)      # the kernel's per-gate [W_g; U_g] and b_g
  assert traced == rnn_activation_bytes(B, T, H, cell='lstm', remat=remat, features=F) + prepared
  if remat:                                     # ⌈7/3⌉ = 3 carries (c, h) [B, H], and x
    assert traced - prepared == 4 * (3 * 2 * B * H + B * T * F)
