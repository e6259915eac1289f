"""MultiHeadAttention: flax's MultiHeadDotProductAttention with the same parameters, written out
in NumPy, with keys and values that can be computed once and kept."""

import jax
import numpy as np
import pytest
from flax import linen as nn

import seqnets as sn

B, T, S, D, H = 2, 3, 5, 8, 2
RNG = np.random.default_rng(0)
X_Q = RNG.normal(size=(B, T, D)).astype(np.float32)
X_KV = RNG.normal(size=(B, S, D)).astype(np.float32)
MASK = np.broadcast_to((np.arange(S)[None] < np.array([5, 2])[:, None])[:, None, None, :],
                       (B, 1, T, S))


def numpy_attention(params, x_q, x_kv, mask):
  project = lambda p, x: np.einsum('btd,dhk->bthk', x, p['kernel']) + p['bias']
  q, k, v = (project(params[name], x) for name, x in
             (('query', x_q), ('key', x_kv), ('value', x_kv)))
  scores = np.einsum('bthk,bshk->bhts', q, k) / np.sqrt(D // H)
  scores = np.where(mask, scores, -np.inf)
  weights = np.exp(scores - scores.max(-1, keepdims=True))
  weights /= weights.sum(-1, keepdims=True)
  mixed = np.einsum('bhts,bshk->bthk', weights, v)
  out = np.einsum('bthk,hkd->btd', mixed, params['out']['kernel']) + params['out']['bias']
  return out, weights


def test_matches_flax_and_numpy_with_the_same_parameters():
  flax_attention = nn.MultiHeadDotProductAttention(H)
  params = flax_attention.init(jax.random.key(0), X_Q, X_KV, mask=MASK)['params']
  attention = sn.MultiHeadAttention(H, D)
  assert (jax.tree_util.tree_structure(attention.init(jax.random.key(1), X_Q, X_KV, MASK))
          == jax.tree_util.tree_structure({'params': params}))
  out = attention.apply({'params': params}, X_Q, X_KV, MASK)
  np.testing.assert_allclose(out, flax_attention.apply({'params': params}, X_Q, X_KV, mask=MASK),
                             rtol=1e-5, atol=1e-6)
  expected, expected_weights = numpy_attention(jax.tree_util.tree_map(np.asarray, params), X_Q,
                                               X_KV, MASK)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
  keys, values = attention.apply({'params': params}, X_KV, method='keys_values')
  assert keys.shape == values.shape == (B, S, H, D // H)
  kept, weights = attention.apply({'params': params}, X_Q, keys, values, MASK, method='attend')
  np.testing.assert_allclose(kept, out, rtol=1e-6)
  np.testing.assert_allclose(weights, expected_weights, rtol=1e-4, atol=1e-6)
  assert np.all(np.asarray(weights)[~np.broadcast_to(MASK, weights.shape)] == 0)


def test_dropout_on_the_weights_in_training_only():
  attention = sn.MultiHeadAttention(H, D, dropout_rate=0.5)
  variables = attention.init(jax.random.key(0), X_Q, X_KV)
  train = lambda key: attention.apply(variables, X_Q, X_KV, deterministic=False,
                                      rngs={'dropout': jax.random.key(key)})
  assert not np.allclose(train(1), train(2))
  np.testing.assert_array_equal(attention.apply(variables, X_Q, X_KV),
                                attention.apply(variables, X_Q, X_KV))


def test_features_must_divide_into_heads():
  with pytest.raises(ValueError, match='features=10 must be divisible by num_heads=3'):
    sn.MultiHeadAttention(3, 10).init(jax.random.key(0), X_Q, X_KV)
