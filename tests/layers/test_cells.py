"""Each cell against a plain-NumPy transcription of its equations."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from jax.test_util import check_grads

import seqnets as sn

B, F, H = 3, 5, 4


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def numpy_elman(p, h, x, act):
  return act(x @ p['input_kernel'] + h @ p['recurrent_kernel'] + p['bias'])


def numpy_lstm(p, c, h, x, peepholes):
  W, U, b = p['input_kernel'], p['recurrent_kernel'], p['bias']
  Wi, Wf, Wg, Wo = np.split(W, 4, axis=1)
  Ui, Uf, Ug, Uo = np.split(U, 4, axis=1)
  bi, bf, bg, bo = np.split(b, 4)
  pi = p['peephole_i'] if peepholes else 0.0
  pf = p['peephole_f'] if peepholes else 0.0
  po = p['peephole_o'] if peepholes else 0.0
  i = sigmoid(x @ Wi + h @ Ui + bi + pi * c)
  f = sigmoid(x @ Wf + h @ Uf + bf + pf * c)
  g = np.tanh(x @ Wg + h @ Ug + bg)
  c_new = f * c + i * g
  o = sigmoid(x @ Wo + h @ Uo + bo + po * c_new)
  return c_new, o * np.tanh(c_new)


def numpy_gru(p, h, x, reset_after):
  Wr, Wz, Wn = np.split(p['input_kernel'], 3, axis=1)
  Ur, Uz, Un = np.split(p['recurrent_kernel'], 3, axis=1)
  br, bz, bn = np.split(p['bias'], 3)
  r = sigmoid(x @ Wr + h @ Ur + br)
  z = sigmoid(x @ Wz + h @ Uz + bz)
  if reset_after:
    cand = np.tanh(x @ Wn + bn + r * (h @ Un + p['recurrent_bias']))
  else:
    cand = np.tanh(x @ Wn + (r * h) @ Un + bn)
  return (1 - z) * h + z * cand


def random_params(params, seed=0):
  """Replaces every leaf by N(0, 0.5) noise so biases and peepholes are non-trivial."""
  leaves, tree = jax.tree_util.tree_flatten(params)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      tree, [rng.normal(0, 0.5, np.shape(l)).astype(np.float32) for l in leaves])


def init_cell(cell, carry, x):
  params = cell.init(jax.random.key(0), carry, x)['params']
  return random_params(params)


@pytest.fixture
def data():
  rng = np.random.default_rng(1)
  return rng.normal(size=(B, F)).astype(np.float32), rng.normal(size=(B, H)).astype(np.float32)


@pytest.mark.parametrize('name,act,np_act', [
    ('tanh', jnp.tanh, np.tanh), ('relu', jax.nn.relu, lambda v: np.maximum(v, 0))])
def test_elman_matches_numpy(data, name, act, np_act):
  x, h = data
  cell = sn.ElmanCell(H, activation_fn=act)
  p = init_cell(cell, h, x)
  new_h, y = cell.apply({'params': p}, h, x)
  np.testing.assert_allclose(new_h, numpy_elman(p, h, x, np_act), rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(new_h, y)


@pytest.mark.parametrize('peepholes', [False, True])
def test_lstm_matches_numpy(data, peepholes):
  x, h = data
  c = np.random.default_rng(2).normal(size=(B, H)).astype(np.float32)
  cell = sn.LSTMCell(H, use_peepholes=peepholes)
  p = init_cell(cell, (c, h), x)
  (new_c, new_h), y = cell.apply({'params': p}, (c, h), x)
  ref_c, ref_h = numpy_lstm(p, c, h, x, peepholes)
  np.testing.assert_allclose(new_c, ref_c, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(new_h, ref_h, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(new_h, y)


def test_lstm_default_init_sets_forget_bias_and_zero_peepholes(data):
  x, h = data
  cell = sn.LSTMCell(H, use_peepholes=True)
  p = cell.init(jax.random.key(0), cell.initialize_carry(None, x.shape), x)['params']
  np.testing.assert_array_equal(p['bias'], np.repeat([0.0, 1.0, 0.0, 0.0], H))
  for gate in 'ifo':
    np.testing.assert_array_equal(p[f'peephole_{gate}'], np.zeros(H))
  p2 = sn.LSTMCell(H, forget_bias=2.5).init(jax.random.key(0), (h, h), x)['params']
  np.testing.assert_array_equal(p2['bias'][H:2 * H], np.full(H, 2.5))


@pytest.mark.parametrize('reset_after', [False, True])
def test_gru_matches_numpy(data, reset_after):
  x, h = data
  cell = sn.GRUCell(H, reset_after=reset_after)
  p = init_cell(cell, h, x)
  new_h, _ = cell.apply({'params': p}, h, x)
  np.testing.assert_allclose(new_h, numpy_gru(p, h, x, reset_after), rtol=1e-5, atol=1e-5)


def test_gru_reset_after_equals_flax_gru_cell(data):
  """flax's GRUCell computes the reset-after GRU with z ↔ 1 − z (see GRUCell docstring)."""
  x, h = data
  flax_cell = nn.GRUCell(H)
  fp = random_params(flax_cell.init(jax.random.key(0), h, x)['params'])
  ours = {
      'input_kernel': np.concatenate(
          [fp['ir']['kernel'], -fp['iz']['kernel'], fp['in']['kernel']], axis=1),
      'recurrent_kernel': np.concatenate(
          [fp['hr']['kernel'], -fp['hz']['kernel'], fp['hn']['kernel']], axis=1),
      'bias': np.concatenate([fp['ir']['bias'], -fp['iz']['bias'], fp['in']['bias']]),
      'recurrent_bias': fp['hn']['bias'],
  }
  expected, _ = flax_cell.apply({'params': fp}, h, x)
  got, _ = sn.GRUCell(H, reset_after=True).apply({'params': ours}, h, x)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_lstm_equals_flax_lstm_cell(data):
  x, h = data
  c = np.random.default_rng(3).normal(size=(B, H)).astype(np.float32)
  flax_cell = nn.LSTMCell(H)
  fp = random_params(flax_cell.init(jax.random.key(0), (c, h), x)['params'])
  gates = 'ifgo'
  ours = {
      'input_kernel': np.concatenate([fp[f'i{g}']['kernel'] for g in gates], axis=1),
      'recurrent_kernel': np.concatenate([fp[f'h{g}']['kernel'] for g in gates], axis=1),
      'bias': np.concatenate([fp[f'h{g}']['bias'] for g in gates]),
  }
  expected = flax_cell.apply({'params': fp}, (c, h), x)
  got = sn.LSTMCell(H).apply({'params': ours}, (c, h), x)
  jax.tree_util.tree_map(
      functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-5), got, expected)


CELLS = {
    'elman': lambda: sn.ElmanCell(H),
    'lstm': lambda: sn.LSTMCell(H),
    'lstm_peep': lambda: sn.LSTMCell(H, use_peepholes=True),
    'gru': lambda: sn.GRUCell(H),
    'gru_after': lambda: sn.GRUCell(H, reset_after=True),
}


@pytest.mark.parametrize('name', sorted(CELLS))
def test_cell_gradients_match_finite_differences(data, name):
  x, _ = data
  cell = CELLS[name]()
  carry = cell.initialize_carry(jax.random.key(0), x.shape)
  carry = jax.tree_util.tree_map(lambda c: c + 0.3, carry)
  p = init_cell(cell, carry, x)
  x64 = x.astype(np.float64)

  def f(params, inputs):
    new_carry, y = cell.apply({'params': params}, carry, inputs)
    return jnp.sum(y ** 2) + sum(jnp.sum(l) for l in jax.tree_util.tree_leaves(new_carry))

  check_grads(f, (p, x64), order=1, modes=['rev'], atol=5e-2, rtol=5e-2, eps=1e-2)


@pytest.mark.parametrize('name', sorted(CELLS))
def test_cell_works_inside_flax_rnn(name):
  x = np.random.default_rng(0).normal(size=(2, 6, F)).astype(np.float32)
  rnn = nn.RNN(CELLS[name]())
  params = rnn.init(jax.random.key(0), x)
  assert rnn.apply(params, x).shape == (2, 6, H)
  ours = sn.RNN(CELLS[name]())
  np.testing.assert_allclose(ours.apply(params, x), rnn.apply(params, x), rtol=1e-5, atol=1e-6)


def test_cells_work_inside_flax_bidirectional():
  x = np.random.default_rng(0).normal(size=(2, 6, F)).astype(np.float32)
  bi = nn.Bidirectional(nn.RNN(sn.LSTMCell(H)), nn.RNN(sn.GRUCell(H)))
  params = bi.init(jax.random.key(0), x)
  assert bi.apply(params, x, seq_lengths=np.array([6, 3])).shape == (2, 6, 2 * H)
