import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import seqnets as sn


@pytest.mark.parametrize('name,expected', [
    ('relu', [0.0, 0.0, 2.0]),
    ('tanh', np.tanh([-1.0, 0.0, 2.0])),
    ('sigmoid', 1 / (1 + np.exp([1.0, 0.0, -2.0]))),
    ('elu', [np.exp(-1.0) - 1, 0.0, 2.0]),
    ('selu', 1.0507009873554805 * np.array([1.6732632423543772 * (np.exp(-1.0) - 1), 0.0, 2.0])),
    ('softplus', np.log1p(np.exp([-1.0, 0.0, 2.0]))),
    ('softsign', [-0.5, 0.0, 2 / 3]),
    ('identity', [-1.0, 0.0, 2.0]),
])
def test_activations_by_name(name, expected):
  np.testing.assert_allclose(sn.ACTIVATIONS[name](jnp.array([-1.0, 0.0, 2.0])), expected, rtol=1e-6)


def test_unknown_activation_lists_valid_names():
  with pytest.raises(ValueError, match="unknown activation 'swish'.*relu"):
    sn.MLP((3,), activation='swish')
  with pytest.raises(ValueError, match='softmax'):
    sn.MLP((3,), output_activation='softmin')
  with pytest.raises(ValueError, match='features'):
    sn.MLP(())


def test_shapes_and_output_activations():
  x = jnp.ones((3, 4))
  mlp = sn.MLP((5, 2), activation='tanh', output_activation='softmax')
  params = mlp.init(jax.random.key(0), x)['params']
  assert jax.tree.map(jnp.shape, params) == {
      'Dense_0': {'kernel': (4, 5), 'bias': (5,)}, 'Dense_1': {'kernel': (5, 2), 'bias': (2,)}}
  y = mlp.apply({'params': params}, x)
  assert y.shape == (3, 2)
  np.testing.assert_allclose(jnp.sum(y, axis=-1), 1.0, rtol=1e-6)
  p = sn.MLP((5, 1), output_activation='sigmoid').apply(
      sn.MLP((5, 1)).init(jax.random.key(0), x), x)
  assert jnp.all((p > 0) & (p < 1))


def test_dropout_only_when_not_deterministic():
  x = jnp.ones((2, 8))
  mlp = sn.MLP((16, 16, 3), dropout_rate=0.5)
  variables = mlp.init(jax.random.key(0), x)
  a = mlp.apply(variables, x)
  np.testing.assert_array_equal(a, mlp.apply(variables, x, deterministic=True))
  b = mlp.apply(variables, x, deterministic=False, rngs={'dropout': jax.random.key(1)})
  assert not np.allclose(a, b)


def test_two_layer_mlp_learns_xor():
  x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
  y = jnp.array([0.0, 1.0, 1.0, 0.0])
  # 8 hidden tanh units learn XOR from 20 of 20 seeds (4 units: 19 of 20, seed 0 stalls).
  mlp = sn.MLP((8, 1), activation='tanh')
  params = mlp.init(jax.random.key(0), x)
  tx = optax.adam(0.05)

  def loss_fn(params):
    logits = mlp.apply(params, x)[:, 0]
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y))

  @jax.jit
  def train(params):
    def step(carry, _):
      params, opt_state = carry
      grads = jax.grad(loss_fn)(params)
      updates, opt_state = tx.update(grads, opt_state)
      return (optax.apply_updates(params, updates), opt_state), None
    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), None, length=500)
    return params

  params = train(params)
  probs = sn.MLP((8, 1), activation='tanh', output_activation='sigmoid').apply(params, x)[:, 0]
  np.testing.assert_array_equal(probs > 0.5, y > 0.5)
  assert loss_fn(params) < 0.1
