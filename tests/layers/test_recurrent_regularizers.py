"""Update dropout, zoneout, weight drop, layer norm (cell attributes) and variational
dropout (`sn.RNN`) against NumPy transcriptions of their equations, with the masks the
layers sow into 'intermediates'."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

import seqnets as sn
from seqnets.layers import rnn

B, T, F, H = 3, 5, 4, 3
LENGTHS = np.array([5, 3, 1])
RATE = 0.4
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-5)

CELLS = {
    'elman': lambda **kw: sn.ElmanCell(H, **kw),
    'lstm_peep': lambda **kw: sn.LSTMCell(H, use_peepholes=True, **kw),
    'gru': lambda **kw: sn.GRUCell(H, **kw),
    'gru_after': lambda **kw: sn.GRUCell(H, reset_after=True, **kw),
}
# regulariser -> (cell attributes, RNN attributes)
REGULARIZERS = {
    'update_dropout': (dict(update_dropout_rate=RATE), {}),
    'zoneout': (dict(zoneout_rate=RATE), {}),
    'weight_drop': (dict(weight_drop_rate=RATE), {}),
    'layer_norm': (dict(layer_norm=True), {}),
    'variational': ({}, dict(variational_input_rate=RATE, variational_state_rate=RATE)),
}


def sigmoid(a):
  return 1 / (1 + np.exp(-a))


def numpy_layer_norm(a, scale, bias=0.0, groups=1):
  blocks = a.reshape(a.shape[:-1] + (groups, -1))
  mean, var = blocks.mean(-1, keepdims=True), blocks.var(-1, keepdims=True)
  return ((blocks - mean) / np.sqrt(var + 1e-5)).reshape(a.shape) * scale + bias


def mix(old, new, zone):
  """Zoneout `zone ⊙ old + (1 − zone) ⊙ new`: zone a {0, 1} mask (training) or the rate."""
  return zone * old + (1 - zone) * new


def numpy_step(kind, p, c, h, x, d=1.0, zone_h=0.0, zone_c=0.0, state=1.0, u_mask=1.0,
               layer_norm=False):
  """One step of `kind` with every regulariser: d multiplies the update, `state` the h that
  enters U, `u_mask` U. Returns `(c_t, h_t)` (c is carried unchanged by Elman and GRU)."""
  W, U, b = p['input_kernel'], p['recurrent_kernel'] * u_mask, p['bias']
  h_in = h * state
  gates = U.shape[1] // H

  def norm(a, scale):
    return numpy_layer_norm(a, scale, groups=a.shape[-1] // H) if layer_norm else a

  in_scale, rec_scale = p.get('input_norm_scale'), p.get('recurrent_norm_scale', np.ones(gates * H))
  if kind == 'elman':
    new_h = np.tanh(norm(x @ W, in_scale) + norm(h_in @ U, rec_scale) + b) * d
    return c, mix(h, new_h, zone_h)
  if kind == 'lstm_peep':
    z = norm(x @ W, in_scale) + norm(h_in @ U, rec_scale) + b
    z_i, z_f, z_g, z_o = np.split(z, 4, axis=-1)
    i, f = sigmoid(z_i + p['peephole_i'] * c), sigmoid(z_f + p['peephole_f'] * c)
    new_c = f * c + i * np.tanh(z_g) * d
    o = sigmoid(z_o + p['peephole_o'] * new_c)
    squashed = numpy_layer_norm(new_c, p['cell_norm_scale'], p['cell_norm_bias']) if layer_norm \
        else new_c
    return mix(c, new_c, zone_c), mix(h, o * np.tanh(squashed), zone_h)
  a_x = norm(x @ W, in_scale) + b
  U_rz, U_n = U[:, :2 * H], U[:, 2 * H:]
  r, z = np.split(sigmoid(a_x[:, :2 * H] + norm(h_in @ U_rz, rec_scale[:2 * H])), 2, axis=-1)
  if kind == 'gru_after':
    cand = np.tanh(a_x[:, 2 * H:] + r * (norm(h_in @ U_n, rec_scale[2 * H:]) + p['recurrent_bias']))
  else:
    cand = np.tanh(a_x[:, 2 * H:] + norm((r * h_in) @ U_n, rec_scale[2 * H:]))
  return c, mix(h, (1 - z) * h + z * cand * d, zone_h)


def numpy_rnn(kind, p, x, per_step=lambda t: {}, **fixed):
  """Runs `numpy_step` over time with `LENGTHS` (frozen carry, zero outputs past each end)."""
  c, h, ys = np.zeros((B, H)), np.zeros((B, H)), np.zeros((B, T, H))
  for t in range(T):
    new_c, new_h = numpy_step(kind, p, c, h, x[:, t], **fixed, **per_step(t))
    real = (t < LENGTHS)[:, None]
    c, h = np.where(real, new_c, c), np.where(real, new_h, h)
    ys[:, t] = np.where(real, h, 0)
  return ys


def random_params(params, seed=0):
  leaves, tree = jax.tree_util.tree_flatten(params)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      tree, [rng.normal(0, 0.5, np.shape(l)).astype(np.float32) for l in leaves])


@pytest.fixture(scope='module')
def x():
  return np.random.default_rng(1).normal(size=(B, T, F)).astype(np.float32)


def train(layer, params, x, seed=2, **kwargs):
  """Training-mode outputs and the sown masks."""
  y, state = layer.apply(params, x, lengths=LENGTHS, deterministic=False,
                         rngs={'dropout': jax.random.key(seed)}, mutable=['intermediates'],
                         **kwargs)
  return np.asarray(y), jax.tree_util.tree_map(np.asarray, state.get('intermediates', {}))


def init(layer, x):
  """Random N(0, 0.5) params shaped as `layer.init` makes them (traced, not run)."""
  shapes = jax.eval_shape(lambda: layer.init(jax.random.key(0), x, lengths=LENGTHS,
                                             deterministic=True))
  return random_params(shapes)


def setup(name, regularizer, x):
  cell_kw, rnn_kw = REGULARIZERS[regularizer]
  layer = sn.RNN(CELLS[name](**cell_kw), **rnn_kw)
  params = init(layer, x)
  return layer, params, params['params']['cell']


@pytest.mark.parametrize('name', sorted(CELLS))
@pytest.mark.parametrize('regularizer', sorted(REGULARIZERS))
def test_training_output_matches_numpy_with_the_sown_masks(x, name, regularizer):
  layer, params, p = setup(name, regularizer, x)
  y, sown = train(layer, params, x)
  if regularizer == 'update_dropout':
    (d,) = sown['cell']['update_mask']                                    # [T, B, H]
    np.testing.assert_allclose(np.unique(d), [0, 1 / (1 - RATE)])
    want = numpy_rnn(name, p, x, lambda t: dict(d=d[t]))
  elif regularizer == 'zoneout':
    (m_h,) = sown['cell']['zoneout_h_mask']                               # [T, B, H], bool
    m_c = sown['cell']['zoneout_c_mask'][0] if name == 'lstm_peep' else np.zeros_like(m_h)
    assert m_h.any() and not m_h.all()
    want = numpy_rnn(name, p, x, lambda t: dict(zone_h=m_h[t], zone_c=m_c[t]))
  elif regularizer == 'weight_drop':
    (u_mask,) = sown['recurrent_kernel_mask']                             # [H, G·H], one per call
    assert u_mask.shape == p['recurrent_kernel'].shape and 0 < (u_mask == 0).mean() < 1
    want = numpy_rnn(name, p, x, u_mask=u_mask)
  elif regularizer == 'layer_norm':
    want = numpy_rnn(name, p, x, layer_norm=True)
  else:
    (m_x,), (m_h,) = sown['input_mask'], sown['state_mask']               # [B, F], [B, H]
    assert m_x.shape == (B, F) and m_h.shape == (B, H)
    # One mask per sequence: the same m_x, m_h at every step.
    want = numpy_rnn(name, p, x * m_x[:, None], state=m_h)
  close(y, want)


def test_evaluation_is_the_identity_or_the_expectation(x):
  for name, regularizer in [(name, 'zoneout') for name in ('elman', 'gru')] + [
      ('lstm_peep', regularizer) for regularizer in REGULARIZERS]:
    layer, params, p = setup(name, regularizer, x)
    y, sown = layer.apply(params, x, lengths=LENGTHS, deterministic=True, mutable=['intermediates'])
    assert not sown                                    # no mask drawn
    if regularizer == 'zoneout':
      close(y, numpy_rnn(name, p, x, zone_h=RATE, zone_c=RATE))
    elif regularizer == 'layer_norm':
      close(y, numpy_rnn(name, p, x, layer_norm=True))
    else:
      close(y, numpy_rnn(name, p, x))


def test_variational_input_mask_is_the_same_at_every_step():
  # Constant inputs and U = 0: h_t = tanh(W (m_x ⊙ x) + b) repeats only if m_x does.
  x = np.ones((B, T, 8), np.float32)
  layer = sn.RNN(sn.ElmanCell(H, recurrent_kernel_init=nn.initializers.zeros_init()),
                 variational_input_rate=0.5)
  params = layer.init(jax.random.key(0), x[:, :1], deterministic=True)
  y = layer.apply(params, x, deterministic=False, rngs={'dropout': jax.random.key(1)})
  np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1], y.shape))
  assert not np.allclose(y, layer.apply(params, x, deterministic=True))
  per_step = sn.RNN(sn.ElmanCell(H, recurrent_kernel_init=nn.initializers.zeros_init(),
                                 update_dropout_rate=0.5))
  y = per_step.apply(params, x, deterministic=False, rngs={'dropout': jax.random.key(1)})
  assert not np.allclose(y, y[:, :1])                  # a per-step mask changes with t


def test_weight_drop_one_mask_per_call_and_the_fused_kernel_agrees(x):
  layer, params, _ = setup('lstm_peep', 'weight_drop', x)
  assert rnn.uses_fused_kernel(layer.cell, deterministic=False)
  masks = jax.jit(lambda key: layer.apply(params, x, lengths=LENGTHS, deterministic=False,
                                          rngs={'dropout': key}, mutable=['intermediates'])[1])
  first, again, other = (masks(jax.random.key(seed))['intermediates']['recurrent_kernel_mask'][0]
                         for seed in (2, 2, 3))
  np.testing.assert_array_equal(again, first)
  assert not np.array_equal(other, first)
  # The fused kernel (hand-written backward) and the plain scan: same outputs and gradients.
  def loss(model, p):
    y = model.apply(p, x, lengths=LENGTHS, deterministic=False, rngs={'dropout': jax.random.key(2)})
    return jnp.sum(y ** 2)
  fused = jax.value_and_grad(functools.partial(loss, layer))(params)
  stepwise = jax.value_and_grad(functools.partial(loss, layer.clone(fused=False)))(params)
  jax.tree_util.tree_map(close, fused, stepwise)


def test_layer_norm_lstm_step_matches_numpy():
  rng = np.random.default_rng(4)
  x, c, h = (rng.normal(size=(B, n)).astype(np.float32) for n in (F, H, H))
  cell = CELLS['lstm_peep'](layer_norm=True)
  p = random_params(jax.eval_shape(cell.init, jax.random.key(0), (c, h), x)['params'])
  assert p['cell_norm_scale'].shape == p['cell_norm_bias'].shape == (H,)
  assert p['input_norm_scale'].shape == p['recurrent_norm_scale'].shape == (4 * H,)
  jax.tree_util.tree_map(close, cell.apply({'params': p}, (c, h), x)[0],
                         numpy_step('lstm_peep', p, c, h, x, layer_norm=True))


def test_fused_kernel_only_where_it_computes_the_same():
  expected = {  # regulariser: (training, evaluation)
      'update_dropout': (False, True), 'zoneout': (False, False),
      'weight_drop': (True, True), 'layer_norm': (False, False)}
  for regularizer, modes in expected.items():
    for name in CELLS:
      cell = CELLS[name](**REGULARIZERS[regularizer][0])
      assert (rnn.uses_fused_kernel(cell, False), rnn.uses_fused_kernel(cell, True)) == modes
  assert rnn.uses_fused_kernel(sn.LSTMCell(H, zoneout_rate=0.0), None)


def test_deterministic_must_be_given_once_and_rates_checked(x):
  layer = sn.RNN(sn.LSTMCell(H, zoneout_rate=0.1))
  with pytest.raises(ValueError, match='deterministic'):
    layer.init(jax.random.key(0), x)
  with pytest.raises(ValueError, match='deterministic'):
    sn.RNN(sn.GRUCell(H), variational_input_rate=0.1).init(jax.random.key(0), x)
  with pytest.raises(ValueError, match='deterministic'):
    sn.RNN(sn.GRUCell(H, update_dropout_rate=0.1, deterministic=True)).init(
        jax.random.key(0), x, deterministic=True)
  with pytest.raises(ValueError, match='zoneout_rate'):
    sn.RNN(sn.GRUCell(H, zoneout_rate=1.0)).init(jax.random.key(0), x, deterministic=True)
  with pytest.raises(ValueError, match='variational_state_rate'):
    sn.RNN(nn.GRUCell(H), variational_state_rate=0.1).init(jax.random.key(0), x,
                                                            deterministic=False)
  with pytest.raises(TypeError, match='deterministic'):
    sn.StackedRNN([sn.RNN(sn.GRUCell(H))]).init(jax.random.key(0), x)


def test_cell_attribute_works_inside_flax_rnn(x):
  cell = sn.GRUCell(H, zoneout_rate=RATE, deterministic=False)
  layer = nn.RNN(cell, split_rngs={'params': False, 'dropout': True})
  params = layer.init({'params': jax.random.key(0), 'dropout': jax.random.key(1)}, x)
  expectation = sn.RNN(cell.clone(deterministic=True)).apply(params, x)
  close(nn.RNN(cell.clone(deterministic=True)).apply(params, x), expectation)
  assert not np.allclose(layer.apply(params, x, rngs={'dropout': jax.random.key(1)}), expectation)


def test_stacked_and_bidirectional_pass_deterministic_down(x):
  def build(**kw):
    bi = sn.Bidirectional(sn.RNN(sn.LSTMCell(H, **kw)), sn.RNN(sn.GRUCell(H, **kw)))
    return sn.StackedRNN([sn.RNN(sn.ElmanCell(H, **kw), variational_state_rate=RATE), bi])

  stack = build(update_dropout_rate=RATE, weight_drop_rate=RATE)
  params = init(stack, x)
  # Without deterministic reaching every cell, the cells would raise.
  evaluation, sown = stack.apply(params, x, lengths=LENGTHS, deterministic=True,
                                 mutable=['intermediates'])
  assert not sown
  y, sown = train(stack, params, x)
  assert not np.allclose(y, evaluation)
  assert {'state_mask', 'recurrent_kernel_mask'} <= set(sown['layers_0'])
  for direction in ('forward', 'backward'):
    assert {'update_mask'} <= set(sown['layers_1'][direction]['cell'])
    assert {'recurrent_kernel_mask'} <= set(sown['layers_1'][direction])
