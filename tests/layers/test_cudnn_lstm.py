"""cuDNN's weight layout for `LSTMCell` layers: with the packed weights, jax's own reference
LSTM (`jax.experimental.rnn.lstm_ref`) equals `sn.RNN` / `Bidirectional` / `StackedRNN` over
`LSTMCell` (the fused kernel), outputs, final carries and gradients; pack and unpack are
inverses."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn
from seqnets import interop
from seqnets.layers import cudnn_lstm

B, T, F, H = 4, 6, 3, 5
LENGTHS = np.array([6, 3, 0, 1])
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-5)
SHAPES = [(1, False), (1, True), (2, False), (2, True)]


def random_tree(tree, seed):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      treedef, [rng.normal(0, 0.5, np.shape(l)).astype(np.float32) for l in leaves])


def seqnets_model(num_layers, bidirectional, hidden_bias=False):
  """The seqnets layer and random params: an RNN or Bidirectional alone for one layer."""
  model = interop.create_module('lstm', H, num_layers, bidirectional, stack=num_layers > 1,
                                hidden_bias=hidden_bias)
  x = np.zeros((B, T, F), np.float32)
  kwargs = dict(deterministic=True) if num_layers > 1 else {}
  params = model.init(jax.random.key(0), x, lengths=LENGTHS, **kwargs)['params']
  return model, random_tree(params, seed=1), kwargs


def inputs(seed=2):
  return np.random.default_rng(seed).normal(size=(B, T, F)).astype(np.float32)


@pytest.mark.parametrize('num_layers,bidirectional', SHAPES)
@pytest.mark.parametrize('hidden_bias', [False, True])
def test_lstm_ref_equals_seqnets(num_layers, bidirectional, hidden_bias):
  model, params, kwargs = seqnets_model(num_layers, bidirectional, hidden_bias)
  x = inputs()
  carry, y = model.apply({'params': params}, x, lengths=LENGTHS, return_carry=True, **kwargs)
  ref_carry, ref_y = cudnn_lstm.lstm(params, jnp.asarray(x), LENGTHS)
  assert ref_y.shape == (B, T, (2 if bidirectional else 1) * H)
  close(ref_y, y)
  assert jax.tree_util.tree_structure(ref_carry) == jax.tree_util.tree_structure(carry)
  jax.tree_util.tree_map(close, ref_carry, carry)


@pytest.mark.parametrize('num_layers,bidirectional', SHAPES)
def test_gradients_through_pack_and_lstm_ref_equal_seqnets(num_layers, bidirectional):
  model, params, kwargs = seqnets_model(num_layers, bidirectional)
  x = inputs()
  weights = random_tree(jax.eval_shape(
      lambda: model.apply({'params': params}, x, lengths=LENGTHS, return_carry=True, **kwargs)),
      seed=3)

  def loss(run, p, x):
    carry, y = run(p, x)
    return sum(jnp.sum(a * w) for a, w in zip(jax.tree_util.tree_leaves((carry, y)),
                                               jax.tree_util.tree_leaves(weights)))

  seqnets_run = lambda p, x: model.apply({'params': p}, x, lengths=LENGTHS, return_carry=True,
                                         **kwargs)
  cudnn_run = lambda p, x: cudnn_lstm.lstm(p, x, LENGTHS)
  want = jax.grad(functools.partial(loss, seqnets_run), argnums=(0, 1))(params, x)
  got = jax.grad(functools.partial(loss, cudnn_run), argnums=(0, 1))(params, x)
  jax.tree_util.tree_map(close, got, want)


def test_a_given_initial_carry_and_no_lengths():
  model, params, kwargs = seqnets_model(2, True)
  x = inputs()
  initial = random_tree(jax.eval_shape(
      lambda: model.apply({'params': params}, x, return_carry=True, **kwargs))[0], seed=4)
  carry, y = model.apply({'params': params}, x, initial_carry=initial, return_carry=True,
                         **kwargs)
  ref_carry, ref_y = cudnn_lstm.lstm(params, jnp.asarray(x), initial_carry=initial)
  close(ref_y, y)
  jax.tree_util.tree_map(close, ref_carry, carry)


def test_no_steps_keep_the_initial_carry():
  model, params, kwargs = seqnets_model(2, True)
  x = np.zeros((B, 0, F), np.float32)
  carry, y = model.apply({'params': params}, x, return_carry=True, **kwargs)
  ref_carry, ref_y = cudnn_lstm.lstm(params, jnp.asarray(x))
  assert ref_y.shape == y.shape == (B, 0, 2 * H)
  jax.tree_util.tree_map(close, ref_carry, carry)


@pytest.mark.parametrize('num_layers,bidirectional', SHAPES)
@pytest.mark.parametrize('hidden_bias', [False, True])
def test_pack_then_unpack_is_the_identity(num_layers, bidirectional, hidden_bias):
  _, params, _ = seqnets_model(num_layers, bidirectional, hidden_bias)
  cells, found_bidirectional = cudnn_lstm.layer_cells(params)
  assert found_bidirectional == bidirectional
  assert len(cells) == num_layers * (2 if bidirectional else 1)
  weights = cudnn_lstm.pack(cells, bidirectional)
  assert weights.shape == (jax.experimental.rnn.get_num_params_in_lstm(
      F, H, num_layers, bidirectional),)
  back = cudnn_lstm.unpack(weights, F, H, num_layers, bidirectional, hidden_bias=hidden_bias)
  jax.tree_util.tree_map(np.testing.assert_array_equal, back, [dict(c) for c in cells])
  np.testing.assert_array_equal(cudnn_lstm.pack(back, bidirectional), weights)


def test_unpack_without_hidden_bias_sums_the_two_biases():
  weights = jax.random.normal(jax.random.key(0), (jax.experimental.rnn.get_num_params_in_lstm(
      F, H, 1, False),))
  (two,) = cudnn_lstm.unpack(weights, F, H, hidden_bias=True)
  (one,) = cudnn_lstm.unpack(weights, F, H)
  np.testing.assert_array_equal(one['bias'], two['bias'] + two['hidden_bias'])


def test_the_layout_is_pytorchs_per_pseudo_layer():
  """W_ih = input_kernelᵀ first, then W_hh; all kernels before all biases."""
  _, params, _ = seqnets_model(1, True)
  cells, _ = cudnn_lstm.layer_cells(params)
  weights = np.asarray(cudnn_lstm.pack(cells, bidirectional=True))
  forward, backward = cells
  ih, hh = 4 * H * F, 4 * H * H
  np.testing.assert_array_equal(weights[:ih], np.asarray(forward['input_kernel']).T.ravel())
  np.testing.assert_array_equal(weights[ih + hh:2 * ih + hh],
                                np.asarray(backward['input_kernel']).T.ravel())
  biases = weights[2 * (ih + hh):]
  np.testing.assert_array_equal(biases[:4 * H], forward['bias'])
  np.testing.assert_array_equal(biases[4 * H:8 * H], 0)                  # b_hh
  np.testing.assert_array_equal(biases[8 * H:12 * H], backward['bias'])


@pytest.mark.parametrize('cell,needle', [
    (sn.LSTMCell(H, use_peepholes=True), 'peephole_f'),
    (sn.LSTMCell(H, layer_norm=True), 'input_norm_scale'),
])
def test_cells_cudnn_cannot_run_are_refused_by_name(cell, needle):
  params = sn.RNN(cell).init(jax.random.key(0), inputs())['params']
  with pytest.raises(ValueError, match=needle):
    cudnn_lstm.lstm(params, jnp.asarray(inputs()))


def test_other_dtypes_and_mixed_stacks_are_refused():
  _, params, _ = seqnets_model(1, False)
  with pytest.raises(ValueError, match='bfloat16'):
    cudnn_lstm.lstm(params, jnp.asarray(inputs(), jnp.bfloat16))
  _, bi_params, _ = seqnets_model(1, True)
  with pytest.raises(ValueError, match='bidirectional or none'):
    cudnn_lstm.layer_cells({'layers_0': bi_params, 'layers_1': {'cell': params['cell']}})
  with pytest.raises(ValueError, match='lengths'):
    cudnn_lstm.lstm(params, jnp.asarray(inputs()), np.array([7, 1, 1, 1]))
