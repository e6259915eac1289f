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


def np_log_softmax(z):
  shifted = z - z.max(-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


NUMPY_ACTIVATIONS = {
    'relu': lambda z: np.maximum(z, 0),
    'tanh': np.tanh,
    'elu': lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    'softsign': lambda z: z / (1 + np.abs(z)),
    'sigmoid': lambda z: 1 / (1 + np.exp(-z)),
    'softmax': lambda z: np.exp(np_log_softmax(z)),
    'log_softmax': np_log_softmax,
    None: lambda z: z,
}


def numpy_mlp(params, x, activation, output_activation, masks=None):
  """h_l = φ(h_{l−1} W_l + b_l) (times masks[l] if given), y = ψ(h_{L−1} W_L + b_L), in float64."""
  layers = [params[f'Dense_{i}'] for i in range(len(params))]
  h = np.asarray(x, np.float64)
  for i, layer in enumerate(layers[:-1]):
    h = NUMPY_ACTIVATIONS[activation](h @ np.asarray(layer['kernel'], np.float64) + np.asarray(layer['bias']))
    if masks is not None:
      h = h * masks[i]
  z = h @ np.asarray(layers[-1]['kernel'], np.float64) + np.asarray(layers[-1]['bias'])
  return NUMPY_ACTIVATIONS[output_activation](z)


@pytest.mark.parametrize('activation,output_activation', [
    ('tanh', 'softmax'), ('relu', None), ('elu', 'sigmoid'), ('softsign', 'log_softmax')])
def test_mlp_matches_numpy_forward_pass(activation, output_activation):
  x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
  mlp = sn.MLP((5, 2), activation=activation, output_activation=output_activation)
  params = mlp.init(jax.random.key(0), x)['params']
  # Random biases, so a wrong bias shape or placement shows.
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(1), p.shape), params)
  assert jax.tree.map(jnp.shape, params) == {
      'Dense_0': {'kernel': (4, 5), 'bias': (5,)}, 'Dense_1': {'kernel': (5, 2), 'bias': (2,)}}
  assert sn.analysis.count_params(params) == 4 * 5 + 5 + 5 * 2 + 2
  np.testing.assert_allclose(mlp.apply({'params': params}, x),
                             numpy_mlp(params, x, activation, output_activation), rtol=1e-5, atol=1e-6)


def test_mlp_on_leading_axes_is_per_row():
  x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype(np.float32)
  mlp = sn.MLP((5, 2), activation='tanh')
  params = mlp.init(jax.random.key(0), x)['params']
  expected = numpy_mlp(params, x.reshape(6, 4), 'tanh', None).reshape(2, 3, 2)
  np.testing.assert_allclose(mlp.apply({'params': params}, x), expected, rtol=1e-5, atol=1e-6)


def test_dropout_only_when_not_deterministic():
  x = np.random.default_rng(2).normal(size=(2, 8)).astype(np.float32)
  rate = 0.5
  mlp = sn.MLP((16, 16, 3), dropout_rate=rate)
  variables = mlp.init(jax.random.key(0), x)
  params = variables['params']
  np.testing.assert_allclose(mlp.apply(variables, x), numpy_mlp(params, x, 'relu', None),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(mlp.apply(variables, x), mlp.apply(variables, x, deterministic=True))
  y, state = mlp.apply(variables, x, deterministic=False, rngs={'dropout': jax.random.key(1)},
                       capture_intermediates=True)
  seen = state['intermediates']
  masks = []
  for i in range(2):
    hidden = np.asarray(jax.nn.relu(seen[f'Dense_{i}']['__call__'][0]))
    dropped = np.asarray(seen[f'Dropout_{i}']['__call__'][0])
    # Each hidden unit is dropped (0) or kept and scaled by 1 / (1 − rate).
    kept = np.isclose(dropped, hidden / (1 - rate), rtol=1e-6) & (hidden != 0)
    assert np.all(kept | (dropped == 0))
    assert kept.any() and (~kept & (hidden != 0)).any()
    masks.append(np.where(kept, 1 / (1 - rate), 0.0))
  # With the masks read off the layers, the whole pass is the NumPy one.
  np.testing.assert_allclose(y, numpy_mlp(params, x, 'relu', None, masks), rtol=1e-5, atol=1e-6)


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
