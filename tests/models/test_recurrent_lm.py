"""RecurrentLM: a carried state continues the sequence; gradients stop where the state is stored."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn
from seqnets.models import RecurrentLM

V, E, H, B = 7, 4, 5, 2


def make(num_layers=1, **kw):
  return RecurrentLM(cell_fn=functools.partial(sn.LSTMCell, H), vocab_size=V, embedding_size=E,
                     num_layers=num_layers, **kw)


def random_params(model, tokens, seed=1):
  params = model.init(jax.random.key(0), tokens, np.full(len(tokens), tokens.shape[1]),
                      deterministic=True)['params']
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(0, 0.5, a.shape), jnp.float32),
                                params)


TOKENS = np.random.default_rng(0).integers(0, V, (B, 12)).astype(np.int32)


def windowed(model, params, windows, resets):
  """Runs the windows one after the other, the state carried in the 'carry' collection."""
  state, logits = {}, []
  for window, reset in zip(windows, resets):
    variables = {'params': params, **state}
    out, state = model.apply(variables, window, np.full(B, window.shape[1]), reset=reset,
                             deterministic=True, mutable=['carry'])
    logits.append(out)
  return logits, state


def test_carried_state_continues_the_sequence():
  model = make(num_layers=2)
  params = random_params(model, TOKENS)
  whole = model.apply({'params': params}, TOKENS, np.full(B, 12), deterministic=True)
  logits, state = windowed(model, params, [TOKENS[:, :4], TOKENS[:, 4:8], TOKENS[:, 8:]],
                           [np.ones(B, np.int32), np.zeros(B, np.int32), np.zeros(B, np.int32)])
  np.testing.assert_allclose(np.concatenate(logits, 1), whole, rtol=1e-5, atol=1e-5)
  assert jax.tree_util.tree_structure(state['carry']['state']) == jax.tree_util.tree_structure(
      model.zero_carry(B))
  # A reset row starts again from zeros; the other row goes on.
  logits, _ = windowed(model, params, [TOKENS[:, :4], TOKENS[:, 4:8]],
                       [np.ones(B, np.int32), np.array([1, 0], np.int32)])
  fresh = model.apply({'params': params}, TOKENS[:, 4:8], np.full(B, 4), deterministic=True)
  np.testing.assert_allclose(logits[1][0], fresh[0], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(logits[1][1], whole[1, 4:8], rtol=1e-5, atol=1e-5)


def test_state_stored_after_carry_steps():
  """k₁ = 3 of a window of 6: the next window starts 3 tokens later and continues the text."""
  model = make(carry_steps=3)
  params = random_params(model, TOKENS)
  whole = make().apply({'params': params}, TOKENS, np.full(B, 12), deterministic=True)
  logits, _ = windowed(model, params, [TOKENS[:, 0:6], TOKENS[:, 3:9], TOKENS[:, 6:12]],
                       [np.ones(B, np.int32)] + [np.zeros(B, np.int32)] * 2)
  for index, out in enumerate(logits):
    np.testing.assert_allclose(out, whole[:, 3 * index:3 * index + 6], rtol=1e-5, atol=1e-5)


def chunk_loss(model, params, state, window, reset):
  out, _ = model.apply({'params': params, **state}, window, np.full(B, window.shape[1]),
                       reset=reset, deterministic=True, mutable=['carry'])
  return jnp.sum(jax.nn.log_softmax(out)[..., 0])


def test_truncated_gradient_stops_at_the_window_and_equals_full_bptt_for_one_window():
  model = make()
  params = random_params(model, TOKENS)
  first, second = TOKENS[:, :6], TOKENS[:, 6:]
  _, state = windowed(model, params, [first], [np.ones(B, np.int32)])
  truncated = jax.grad(lambda p: chunk_loss(model, p, state, second, np.zeros(B, np.int32)))(params)

  # Reference: the state after the first window, held constant, as the initial carry.
  def constant_start(p):
    carry, _ = model.apply({'params': p}, first, np.full(B, 6), deterministic=True,
                           return_carry=True)
    carry = jax.lax.stop_gradient(carry)
    out = model.apply({'params': p}, second, np.full(B, 6), initial_carry=carry, deterministic=True)
    return jnp.sum(jax.nn.log_softmax(out)[..., 0])

  jax.tree_util.tree_map(functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-6),
                         truncated, jax.grad(constant_start)(params))

  # Full BPTT through both windows differs: the gradient would cross the boundary.
  def full(p):
    out = model.apply({'params': p}, TOKENS, np.full(B, 12), deterministic=True)[:, 6:]
    return jnp.sum(jax.nn.log_softmax(out)[..., 0])
  full_grads = jax.grad(full)(params)
  assert not np.allclose(full_grads['embed']['embedding'], truncated['embed']['embedding'])

  # With k equal to the whole sequence, truncated BPTT is full BPTT.
  one_window = jax.grad(lambda p: chunk_loss(model, p, {}, TOKENS, np.ones(B, np.int32)))(params)
  whole = jax.grad(lambda p: jnp.sum(jax.nn.log_softmax(
      model.apply({'params': p}, TOKENS, np.full(B, 12), deterministic=True))[..., 0]))(params)
  jax.tree_util.tree_map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6),
                         one_window, whole)


def test_tied_embeddings_share_the_matrix():
  """logits = (h P + b_P) Eᵀ + b, with E the input embedding and h the top layer's outputs."""
  model = make(num_layers=2, tie_embeddings=True)
  params = random_params(model, TOKENS)
  assert sorted(params) == ['embed', 'layer0_cell', 'layer1_cell', 'output_bias', 'projection']
  out = model.apply({'params': params}, TOKENS, np.full(B, 12), deterministic=True)
  stack = sn.StackedRNN([sn.RNN(sn.LSTMCell(H)), sn.RNN(sn.LSTMCell(H))])
  embedding = params['embed']['embedding']
  h = stack.apply({'params': {f'layers_{i}': {'cell': params[f'layer{i}_cell']} for i in range(2)}},
                  embedding[TOKENS], np.full(B, 12), deterministic=True)
  projected = h @ params['projection']['kernel'] + params['projection']['bias']
  np.testing.assert_allclose(out, projected @ embedding.T + params['output_bias'],
                             rtol=1e-5, atol=1e-5)


def test_carry_steps_longer_than_the_window_is_an_error():
  model = make(carry_steps=20)
  with pytest.raises(ValueError, match='carry_steps=20 is longer than the window'):
    model.init(jax.random.key(0), TOKENS, np.full(B, 12), reset=np.ones(B, np.int32),
               deterministic=True)
