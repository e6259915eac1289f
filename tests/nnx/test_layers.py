"""`seqnets.nnx` against the linen layers: the same weights give bit-identical outputs,
carries and gradients (lengths with a 0, initial and all carries, bidirectional with remat in
its reverse layer, a 2-layer stack) inside `nnx.jit` and `nnx.grad`; the weights move both
ways bit for bit; the constructors take the linen cells' settings and defaults."""

import dataclasses
import inspect
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax import nnx

import seqnets as sn
import seqnets.nnx as snx

B, T, F, H = 2, 5, 3, 4
LENGTHS = np.array([3, 0])
CELLS = {   # (NNX cell for F inputs, the same linen cell)
    'elman': (lambda f, rngs: snx.ElmanCell(f, H, hidden_bias=True, rngs=rngs),
              lambda: sn.ElmanCell(H, hidden_bias=True)),
    'lstm': (lambda f, rngs: snx.LSTMCell(f, H, use_peepholes=True, rngs=rngs),
             lambda: sn.LSTMCell(H, use_peepholes=True)),
    'gru': (lambda f, rngs: snx.GRUCell(f, H, rngs=rngs), lambda: sn.GRUCell(H)),
    'gru_reset_after': (lambda f, rngs: snx.GRUCell(f, H, reset_after=True, hidden_bias=True,
                                                    rngs=rngs),
                        lambda: sn.GRUCell(H, reset_after=True, hidden_bias=True)),
}


class Models(nnx.Module):
  """Three layers of one cell type, called as `LinenModels` calls its linen twins."""

  def __init__(self, make: Callable, rngs: nnx.Rngs):
    self.uni = snx.RNN(make(F, rngs), return_carry=True, return_all_carries=True)
    self.bi = snx.Bidirectional(snx.RNN(make(F, rngs)), snx.RNN(make(F, rngs), remat=2),
                                return_carry=True)
    self.stack = snx.StackedRNN([snx.RNN(make(F, rngs)), snx.RNN(make(H, rngs))],
                                return_carry=True)

  def __call__(self, x, carry0):
    return {'uni': self.uni(x, LENGTHS, carry0), 'bi': self.bi(x, LENGTHS),
            'stack': self.stack(x)}


class LinenModels(nn.Module):
  """The linen twins of `Models` (layers built outside, so that they take the field names)."""
  uni: nn.Module
  bi: nn.Module
  stack: nn.Module

  @classmethod
  def of(cls, make: Callable) -> 'LinenModels':
    return cls(uni=sn.RNN(make(), return_carry=True, return_all_carries=True),
               bi=sn.Bidirectional(sn.RNN(make()), sn.RNN(make(), remat=2), return_carry=True),
               stack=sn.StackedRNN([sn.RNN(make()), sn.RNN(make())], return_carry=True))

  def __call__(self, x, carry0):
    return {'uni': self.uni(x, LENGTHS, carry0), 'bi': self.bi(x, LENGTHS),
            'stack': self.stack(x, deterministic=True)}


def random_tree(tree: Any, seed: int) -> Any:
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda a: rng.normal(0, 0.5, np.shape(a)).astype(np.float32), tree)


def weighted_sum(tree: Any) -> jax.Array:
  """A scalar that weights every output element differently (a random cotangent)."""
  return sum(jnp.sum(a * jnp.cos(jnp.arange(a.size, dtype=a.dtype).reshape(a.shape)))
             for a in jax.tree_util.tree_leaves(tree))


def assert_trees_equal(actual: Any, expected: Any) -> None:
  assert jax.tree_util.tree_structure(actual) == jax.tree_util.tree_structure(expected)
  jax.tree_util.tree_map(np.testing.assert_array_equal, actual, expected)


@pytest.mark.parametrize('name', sorted(CELLS))
def test_outputs_and_gradients_equal_linen(name):
  make_nnx, make_linen = CELLS[name]
  x = np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)
  models = nnx.eval_shape(lambda: Models(make_nnx, nnx.Rngs(0)))      # from_linen fills it
  carry0 = random_tree(models.uni.cell.initialize_carry((B, F)), seed=2)
  linen = LinenModels.of(make_linen)
  shapes = jax.eval_shape(linen.init, jax.random.key(0), x, carry0)
  # The NNX state is the linen tree; random weights make peepholes and second biases count.
  assert_trees_equal(jax.tree_util.tree_map(np.shape, snx.to_linen(models)),
                     jax.tree_util.tree_map(np.shape, dict(shapes)))
  variables = random_tree(snx.to_linen(models), seed=1)
  snx.from_linen(models, variables)

  @nnx.jit
  def nnx_run(models, x, carry0):
    def loss(models, x, carry0):
      outputs = models(x, carry0)
      return weighted_sum(outputs), outputs
    (_, outputs), grads = nnx.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(
        models, x, carry0)
    return outputs, (snx.to_linen(grads[0]),) + grads[1:]

  @jax.jit
  def linen_run(variables, x, carry0):
    def loss(variables, x, carry0):
      outputs = linen.apply(variables, x, carry0)
      return weighted_sum(outputs), outputs
    (_, outputs), grads = jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True)(
        variables, x, carry0)
    return outputs, grads

  outputs, grads = nnx_run(models, x, carry0)
  ref_outputs, ref_grads = linen_run(variables, x, carry0)
  assert_trees_equal(outputs, ref_outputs)
  assert_trees_equal(grads, ref_grads)
  y = outputs['uni'][2]
  assert np.all(np.asarray(y)[1] == 0) and np.all(np.asarray(y)[0, 3:] == 0)


def test_long_memory_cells_equal_linen():
  """Leaky (learned per-unit α) forward, orthogonal (Cayley, tanh) backward, one jit each."""
  x = np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)
  leak = (0.2, 0.5, 0.7, 0.9)
  model = nnx.eval_shape(lambda: snx.Bidirectional(
      snx.RNN(snx.LeakyRNNCell(F, H, leak=list(leak), learn_leak=True, rngs=nnx.Rngs(0))),
      snx.RNN(snx.OrthogonalRNNCell(F, H, parametrization='cayley', activation='tanh',
                                    rngs=nnx.Rngs(0))), return_carry=True))
  linen = sn.Bidirectional(
      sn.RNN(sn.LeakyRNNCell(H, leak=leak, learn_leak=True)),
      sn.RNN(sn.OrthogonalRNNCell(H, parametrization='cayley', activation='tanh')),
      return_carry=True)
  variables = random_tree(snx.to_linen(model), seed=5)
  snx.from_linen(model, variables)

  @nnx.jit
  def nnx_run(model, x):
    (_, outputs), grads = nnx.value_and_grad(
        lambda m, x: (weighted_sum(m(x, LENGTHS)), m(x, LENGTHS)), argnums=(0, 1),
        has_aux=True)(model, x)
    return outputs, (snx.to_linen(grads[0]), grads[1])

  @jax.jit
  def linen_run(variables, x):
    (_, outputs), grads = jax.value_and_grad(
        lambda v, x: (weighted_sum(linen.apply(v, x, LENGTHS)), linen.apply(v, x, LENGTHS)),
        argnums=(0, 1), has_aux=True)(variables, x)
    return outputs, grads

  assert_trees_equal(nnx_run(model, x), linen_run(variables, x))
  u = model.backward.cell.recurrent_kernel()
  np.testing.assert_allclose(u @ u.T, np.eye(H), atol=1e-5)


def test_weights_move_both_ways_bit_for_bit():
  linen_stack = sn.StackedRNN([sn.Bidirectional(sn.RNN(sn.GRUCell(H)), sn.RNN(sn.GRUCell(H))),
                               sn.RNN(sn.LSTMCell(H, hidden_bias=True))])
  x = np.zeros((B, T, F), np.float32)
  variables = random_tree(jax.eval_shape(linen_stack.init, jax.random.key(0), x,
                                         deterministic=True), seed=3)

  def factory():
    rngs = nnx.Rngs(0)
    return snx.StackedRNN([snx.Bidirectional(snx.RNN(snx.GRUCell(F, H, rngs=rngs)),
                                             snx.RNN(snx.GRUCell(F, H, rngs=rngs))),
                           snx.RNN(snx.LSTMCell(2 * H, H, hidden_bias=True, rngs=rngs))])

  model = snx.from_linen(factory, variables)
  assert model.layers[1].cell.hidden_bias[...].shape == (4 * H,)
  assert_trees_equal(snx.to_linen(model), variables)
  assert_trees_equal(snx.from_linen(factory, variables['params']).layers[0].forward.cell
                     .bias[...], variables['params']['layers_0']['forward']['cell']['bias'])


def test_from_linen_names_what_differs():
  model = snx.RNN(snx.LSTMCell(F, H, rngs=nnx.Rngs(0)))
  params = snx.to_linen(model)['params']
  wrong = {'cell': dict(params['cell'], bias=np.zeros(3 * H, np.float32),
                        peephole_i=np.zeros(H, np.float32))}
  del wrong['cell']['input_kernel']
  with pytest.raises(ValueError) as error:
    snx.from_linen(model, {'params': wrong})
  message = str(error.value)
  assert 'cell/bias: linen float32[12], NNX float32[16]' in message
  assert 'cell/input_kernel: not in the linen params' in message
  assert 'cell/peephole_i: no NNX param' in message
  with pytest.raises(ValueError, match='params only'):
    snx.from_linen(model, {'params': params, 'batch_stats': {}})


@pytest.mark.parametrize('nnx_type,linen_type', [(snx.ElmanCell, sn.ElmanCell),
                                                 (snx.LSTMCell, sn.LSTMCell),
                                                 (snx.GRUCell, sn.GRUCell),
                                                 (snx.LeakyRNNCell, sn.LeakyRNNCell),
                                                 (snx.OrthogonalRNNCell, sn.OrthogonalRNNCell),
                                                 (snx.UnitaryRNNCell, sn.UnitaryRNNCell),
                                                 (snx.SkipRNNCell, sn.SkipRNNCell),
                                                 (snx.EchoStateCell, sn.EchoStateCell),
                                                 (snx.ConvLSTMCell, sn.ConvLSTMCell)])
def test_constructors_take_the_linen_settings_and_defaults(nnx_type, linen_type):
  """Every linen field is a keyword with the linen default, but `deterministic`: False
  (training, as nnx.Dropout). `image_size` is the ConvLSTM's own; the echo state cell has
  no params, so no rngs to require."""
  parameters = inspect.signature(nnx_type.__init__).parameters
  fields = {f.name: f for f in dataclasses.fields(linen_type)}
  nnx_only = {'image_size'}
  options = [p for p in parameters.values() if p.kind is p.KEYWORD_ONLY and p.name != 'rngs']
  assert list(parameters)[1:3] == ['in_features', 'hidden_features']
  assert (parameters['rngs'].default is inspect.Parameter.empty) == (nnx_type is not
                                                                     snx.EchoStateCell)
  for option in options:
    if option.name == 'deterministic':
      assert option.default is False
    elif option.name not in nnx_only:
      assert option.default == fields[option.name].default, option.name
  assert set(fields) - {'features', 'parent', 'name'} == {o.name for o in options} - nnx_only
  cell = nnx_type(F, H, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
  assert (cell.in_features, cell.hidden_features, cell.dtype, cell.param_dtype) == (
      F, H, jnp.bfloat16, jnp.float32)
  assert isinstance(cell, nnx.RNNCellBase)
  assert cell.num_feature_axes == (3 if nnx_type is snx.ConvLSTMCell else 1)
  assert cell.linen_cell == linen_type(H, dtype=jnp.bfloat16)


def test_edges_empty_sequences_jvp_and_errors():
  rnn = snx.RNN(snx.LSTMCell(F, H, rngs=nnx.Rngs(0)), return_carry=True,
                return_all_carries=True)
  carry0 = random_tree(rnn.cell.initialize_carry((B, F)), seed=4)
  carry, carries, y = rnn(np.zeros((B, 0, F), np.float32), initial_carry=carry0)
  assert y.shape == (B, 0, H) and carries[0].shape == (B, 0, H)
  assert_trees_equal(carry, carry0)
  x = np.ones((B, T, F), np.float32)
  with pytest.raises(TypeError, match="implementation='scan'"):
    jax.jvp(lambda x: rnn(x)[2], (x,), (x,))
  with pytest.raises(ValueError, match='initial_carry has a different shape'):
    rnn(x, initial_carry=(np.zeros((B, H + 1)), np.zeros((B, H + 1))))
  with pytest.raises(ValueError, match=r'lengths must lie in \[0, T\]'):
    rnn(x, np.array([T + 1, 0]))
  with pytest.raises(ValueError, match='remat'):
    snx.RNN(rnn.cell, remat=-1)
  with pytest.raises(ValueError, match='merge'):
    snx.Bidirectional(rnn, rnn, merge='max')
  with pytest.raises(flax.errors.ScopeParamShapeError, match='input_kernel'):
    rnn(np.ones((B, T, F + 1), np.float32))
  with pytest.raises(ValueError, match=r'zoneout_rate must be in \[0, 1\)'):
    snx.FusedCell(F, sn.GRUCell(H, zoneout_rate=1.0), rngs=nnx.Rngs(0))
