"""`ConvLSTMCell` against a NumPy transcription of its equations and flax's cell;
`sn.RNN` and `sn.Bidirectional` over image sequences `[B, T, H, W, C]`."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

import seqnets as sn
from seqnets.layers import conv_lstm
from seqnets.layers.conv_lstm import ConvLSTMCell

B, T, S, C_IN, C = 3, 4, 6, 2, 3          # S×S images
LENGTHS = np.array([4, 2, 0])
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-5)


def sigmoid(v):
  return 1.0 / (1.0 + np.exp(-v))


def numpy_conv_same(x, kernel):
  """'SAME' cross-correlation of `x [N, H, W, Ci]` with `kernel [kh, kw, Ci, Co]` (stride 1;
  ⌊(k − 1)/2⌋ zeros before, the rest after)."""
  kh, kw = kernel.shape[:2]
  height, width = x.shape[1:3]
  padded = np.pad(x, ((0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)))
  out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
  for m in range(kh):
    for n in range(kw):
      out += np.einsum('nhwc,cd->nhwd', padded[:, m:m + height, n:n + width], kernel[m, n])
  return out


def numpy_step(p, c, h, x, peepholes):
  z = (numpy_conv_same(x, p['input_conv']['kernel']) + p['input_conv']['bias']
       + numpy_conv_same(h, p['recurrent_conv']['kernel']))
  z_i, z_f, z_g, z_o = np.split(z, 4, axis=-1)
  if peepholes:
    z_i = z_i + p['peephole_i'] * c
    z_f = z_f + p['peephole_f'] * c
  c = sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_g)
  if peepholes:
    z_o = z_o + p['peephole_o'] * c
  return c, sigmoid(z_o) * np.tanh(c)


def numpy_rnn(p, x, lengths, carry, peepholes=True, reverse=False):
  """Each row's real steps only (read backwards with `reverse`), padding never seen:
  `(outputs, final (c, h), all carries (c, h))`, all `[B, (T,) S, S, C]`, aligned with x."""
  outputs = np.zeros(x.shape[:4] + (carry[0].shape[-1],))
  all_c, all_h = np.zeros_like(outputs), np.zeros_like(outputs)
  final_c, final_h = np.array(carry[0], np.float64), np.array(carry[1], np.float64)
  for b, length in enumerate(lengths):
    c, h = final_c[b:b + 1], final_h[b:b + 1]
    order = range(length)[::-1] if reverse else range(length)
    for t in order:
      c, h = numpy_step(p, c, h, x[b:b + 1, t], peepholes)
      outputs[b, t], all_c[b, t], all_h[b, t] = h[0], c[0], h[0]
    final_c[b], final_h[b] = c[0], h[0]
    all_c[b, length:], all_h[b, length:] = c[0], h[0]
  return outputs, (final_c, final_h), (all_c, all_h)


def random_params(tree, seed=0, scale=0.3):
  """N(0, scale) values for every leaf of `tree` (shapes only: an `eval_shape` suffices)."""
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda leaf: rng.normal(0, scale, leaf.shape).astype(np.float32), tree)


def params_for(module, *args, seed=0, **kwargs):
  return random_params(jax.eval_shape(functools.partial(module.init, **kwargs),
                                      jax.random.key(0), *args), seed)


@pytest.fixture(scope='module')
def x():
  return np.random.default_rng(1).normal(size=(B, T, S, S, C_IN)).astype(np.float32)


@pytest.fixture(scope='module')
def carry0():
  rng = np.random.default_rng(2)
  return tuple(rng.normal(size=(B, S, S, C)).astype(np.float32) for _ in range(2))


@pytest.mark.parametrize('peepholes,kernel_size', [(False, (3, 3)), (True, (3, 2))])
def test_step_matches_numpy(x, carry0, peepholes, kernel_size):
  cell = ConvLSTMCell(C, kernel_size, use_peepholes=peepholes)
  p = params_for(cell, carry0, x[:, 0])
  (new_c, new_h), y = jax.jit(cell.apply)(p, carry0, x[:, 0])
  ref_c, ref_h = numpy_step(p['params'], *carry0, x[:, 0], peepholes)
  close(new_c, ref_c)
  close(new_h, ref_h)
  np.testing.assert_array_equal(y, new_h)


def test_parameters_carry_and_default_init(x):
  cell = ConvLSTMCell(C, use_peepholes=True, forget_bias=2.5)
  assert cell.num_feature_axes == 3 and cell.kernel_size == (3, 3)
  carry = cell.initialize_carry(None, x[:, 0].shape)
  assert [(a.shape, a.dtype) for a in carry] == [((B, S, S, C), jnp.float32)] * 2
  p = jax.jit(cell.init)(jax.random.key(0), carry, x[:, 0])['params']
  shapes = jax.tree_util.tree_map(np.shape, p)
  assert shapes == {'input_conv': {'kernel': (3, 3, C_IN, 4 * C), 'bias': (4 * C,)},
                    'recurrent_conv': {'kernel': (3, 3, C, 4 * C)},
                    'peephole_i': (S, S, C), 'peephole_f': (S, S, C), 'peephole_o': (S, S, C)}
  np.testing.assert_array_equal(p['input_conv']['bias'], np.repeat([0.0, 2.5, 0.0, 0.0], C))
  for gate in 'ifo':
    np.testing.assert_array_equal(p[f'peephole_{gate}'], 0.0)
  assert np.std(p['recurrent_conv']['kernel']) > 0.05
  assert ConvLSTMCell(C, 5).kernel_size == (5, 5)
  with pytest.raises(ValueError, match='kernel_size'):
    ConvLSTMCell(C, (3, 3, 3))


def to_seqnets(fp):
  """flax ConvLSTMCell params (gates i, g, f, o; a bias per conv; +1 on f at run time) ->
  ConvLSTMCell's (gates i, f, g, o; one bias with the 1 in b_f)."""
  order = lambda a: np.concatenate([np.split(np.asarray(a), 4, axis=-1)[k] for k in (0, 2, 1, 3)],
                                   axis=-1)
  bias = order(fp['ih']['bias'] + fp['hh']['bias']) + np.repeat([0.0, 1.0, 0.0, 0.0], C)
  return {'input_conv': {'kernel': order(fp['ih']['kernel']), 'bias': bias.astype(np.float32)},
          'recurrent_conv': {'kernel': order(fp['hh']['kernel'])}}


def test_equals_flax_conv_lstm_cell(x, carry0):
  flax_cell = nn.ConvLSTMCell(C, (3, 3))
  fp = params_for(flax_cell, carry0, x[:, 0])['params']
  expected = jax.jit(flax_cell.apply)({'params': fp}, carry0, x[:, 0])
  got = jax.jit(ConvLSTMCell(C).apply)({'params': to_seqnets(fp)}, carry0, x[:, 0])
  jax.tree_util.tree_map(close, got, expected)
  # flax's cell runs in sn.RNN and ours in flax's RNN (num_feature_axes = 3).
  y = jax.jit(sn.RNN(flax_cell).apply)({'params': {'cell': fp}}, x, LENGTHS)
  ref_y, _, _ = numpy_rnn(to_seqnets(fp), x, LENGTHS, np.zeros((2, B, S, S, C)), False)
  close(y, ref_y)
  y = jax.jit(nn.RNN(ConvLSTMCell(C)).apply)({'params': {'cell': to_seqnets(fp)}}, x)
  ref_y, _, _ = numpy_rnn(to_seqnets(fp), x, [T] * B, np.zeros((2, B, S, S, C)), False)
  close(y, ref_y)


@pytest.mark.parametrize('reverse', [False, True])
def test_rnn_over_images_matches_numpy_and_padding_never_matters(x, carry0, reverse):
  rnn = sn.RNN(ConvLSTMCell(C, use_peepholes=True), reverse=reverse, return_carry=True,
               return_all_carries=True)
  apply = jax.jit(rnn.apply)
  params = params_for(rnn, x, seed=3)
  final, carries, y = apply(params, x, LENGTHS, carry0)
  ref_y, ref_final, ref_carries = numpy_rnn(params['params']['cell'], x, LENGTHS, carry0,
                                            reverse=reverse)
  assert y.shape == (B, T, S, S, C)
  close(y, ref_y)
  jax.tree_util.tree_map(close, final, ref_final)
  jax.tree_util.tree_map(close, carries, ref_carries)
  mask = np.asarray(sn.sequence_mask(LENGTHS, T))
  np.testing.assert_array_equal(np.asarray(y)[~mask], 0.0)
  # Garbage in the padding changes nothing.
  noisy = np.where(mask[:, :, None, None, None], x, 1e3 * np.random.default_rng(4).normal(
      size=x.shape)).astype(np.float32)
  jax.tree_util.tree_map(np.testing.assert_array_equal, apply(params, noisy, LENGTHS, carry0),
                         (final, carries, y))


def test_bidirectional_concatenates_channels(x):
  bi = sn.Bidirectional(sn.RNN(ConvLSTMCell(C, use_peepholes=True)),
                        sn.RNN(ConvLSTMCell(2, use_peepholes=True)))
  params = params_for(bi, x, seed=5)
  y = jax.jit(bi.apply)(params, x, LENGTHS)
  assert y.shape == (B, T, S, S, C + 2)
  zeros = lambda channels: np.zeros((2, B, S, S, channels))
  fwd, _, _ = numpy_rnn(params['params']['forward']['cell'], x, LENGTHS, zeros(C))
  bwd, _, _ = numpy_rnn(params['params']['backward']['cell'], x, LENGTHS, zeros(2), reverse=True)
  close(y, np.concatenate([fwd, bwd], axis=-1))


def test_time_major_zero_steps_and_initial_carry_check(x, carry0):
  rnn = sn.RNN(ConvLSTMCell(C), return_carry=True)
  params = params_for(rnn, x)
  _, y = jax.jit(functools.partial(rnn.apply, time_major=True))(
      params, np.swapaxes(x, 0, 1), initial_carry=carry0)
  ref_y, _, _ = numpy_rnn(params['params']['cell'], x, [T] * B, carry0, peepholes=False)
  close(np.swapaxes(y, 0, 1), ref_y)
  carry, y0 = rnn.apply(params, x[:, :0], initial_carry=carry0)
  assert y0.shape == (B, 0, S, S, C)
  jax.tree_util.tree_map(np.testing.assert_array_equal, carry, carry0)
  with pytest.raises(ValueError, match='initial_carry has a different shape'):
    rnn.apply(params, x, initial_carry=tuple(a[:, :-1] for a in carry0))


def test_wrong_rank_names_the_expected_shape(x):
  with pytest.raises(ValueError, match=r'\[batch, time, feature_1, feature_2, feature_3\].*'
                                       r'num_feature_axes = 3'):
    sn.RNN(ConvLSTMCell(C)).init(jax.random.key(0), x[..., 0])
  with pytest.raises(ValueError, match=r'\[batch, time, feature_1, feature_2, feature_3\]'):
    sn.Bidirectional(sn.RNN(ConvLSTMCell(C)), sn.RNN(ConvLSTMCell(C))).init(
        jax.random.key(0), x[0])
  with pytest.raises(ValueError, match=r'\[batch, time, features\]'):
    sn.RNN(sn.LSTMCell(C)).init(jax.random.key(0), x)


def test_variational_input_dropout_masks_each_pixel_once_per_sequence(x):
  rnn = sn.RNN(ConvLSTMCell(C), variational_input_rate=0.5)
  params = params_for(rnn, x, deterministic=True)
  y, state = jax.jit(functools.partial(rnn.apply, deterministic=False, mutable='intermediates'))(
      params, x, LENGTHS, rngs={'dropout': jax.random.key(7)})
  (mask,) = state['intermediates']['input_mask']
  assert mask.shape == (B, S, S, C_IN)
  assert set(np.unique(mask)) == {0.0, 2.0}
  ref_y, _, _ = numpy_rnn(params['params']['cell'], x * np.asarray(mask)[:, None], LENGTHS,
                          np.zeros((2, B, S, S, C)), peepholes=False)
  close(y, ref_y)


def test_conv_same_gradient_equals_xla():
  rng = np.random.default_rng(8)
  x1, k1, dy = (rng.normal(size=shape).astype(np.float32)
                for shape in ((2, 5, 6, 3), (4, 2, 3, 4), (2, 5, 6, 4)))
  y, vjp = jax.vjp(conv_lstm.conv_same, x1, k1)
  y_ref, vjp_ref = jax.vjp(lambda a, k: jax.lax.conv_general_dilated(
      a, k, (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC')), x1, k1)
  close(y, numpy_conv_same(x1, k1))
  jax.tree_util.tree_map(close, vjp(dy), vjp_ref(dy))


def test_gradients_finite_zero_on_padding_and_as_with_xla_gradients(x):
  results = {}
  for im2col in (False, True):
    rnn = sn.RNN(ConvLSTMCell(C, use_peepholes=True, im2col_grad=im2col))
    loss = lambda p, inputs: jnp.sum(rnn.apply(p, inputs, LENGTHS) ** 2)
    results[im2col] = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(
        params_for(rnn, x, seed=6), x)
  (loss, (g_params, g_x)), (loss_xla, grads_xla) = results[True], results[False]
  close(loss, loss_xla)
  jax.tree_util.tree_map(close, (g_params, g_x), grads_xla)
  for leaf in jax.tree_util.tree_leaves(g_params):
    assert np.all(np.isfinite(leaf)) and np.any(leaf != 0)
  mask = np.asarray(sn.sequence_mask(LENGTHS, T))
  np.testing.assert_array_equal(np.asarray(g_x)[~mask], 0.0)
  assert np.all(np.abs(np.asarray(g_x)[mask]).sum(axis=(1, 2, 3)) > 0)
