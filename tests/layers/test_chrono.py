"""Chrono initialisation (Tallec & Ollivier 2018) against its definition:
LSTM b_f = log u, b_i = −b_f, GRU b_z = −log u, u ~ U(1, T_max − 1) per unit."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from scipy import stats

import seqnets as sn
import seqnets.nnx as snx
from seqnets.layers import initializers
from seqnets.models import cells

F, T_MAX = 3, 400


def bias_of(cell, hidden):
  carry = cell.initialize_carry(jax.random.key(1), (2, F))
  params = cell.init(jax.random.key(0), carry, jnp.ones((2, F)))['params']
  return {k: np.asarray(v) for k, v in params.items() if 'bias' in k}


def assert_uniform_between_1_and(u, t_max):
  """u looks like draws of U(1, t_max − 1): within the bounds, and a Kolmogorov-Smirnov
  test against that law does not reject it (a wrong law, e.g. U(0, T), is rejected at
  this size: p ~ 1e-30)."""
  assert u.min() >= 1.0 - 1e-4 and u.max() <= t_max - 1 + 1e-3
  assert stats.kstest(u, stats.uniform(loc=1.0, scale=t_max - 2).cdf).pvalue > 1e-3


def test_lstm_chrono_sets_forget_to_log_u_and_input_to_its_negative():
  hidden = 2000
  b = bias_of(sn.LSTMCell(hidden, forget_bias='chrono', chrono_max_length=T_MAX), hidden)['bias']
  b_i, b_f, b_g, b_o = np.split(b, 4)
  np.testing.assert_array_equal(b_i, -b_f)
  np.testing.assert_array_equal(b_g, 0.0)
  np.testing.assert_array_equal(b_o, 0.0)
  assert_uniform_between_1_and(np.exp(b_f.astype(np.float64)), T_MAX)
  assert len(np.unique(b_f)) > 0.99 * hidden   # one draw per unit (float32 may collide)


def test_gru_chrono_sets_the_update_gate_to_minus_log_u():
  hidden = 2000
  params = bias_of(sn.GRUCell(hidden, update_bias='chrono', chrono_max_length=T_MAX,
                              reset_after=True), hidden)
  b_r, b_z, b_n = np.split(params['bias'], 3)
  np.testing.assert_array_equal(b_r, 0.0)
  np.testing.assert_array_equal(b_n, 0.0)
  np.testing.assert_array_equal(params['recurrent_bias'], 0.0)
  assert_uniform_between_1_and(np.exp(-b_z.astype(np.float64)), T_MAX)


def test_a_chrono_gru_unit_keeps_about_one_minus_one_over_u_of_its_state():
  """With zero weights the step is h_t = (1 − z) h_{t−1} + z tanh(0), z = σ(−log u) =
  1 / (1 + u): the state decays by u / (1 + u) per step."""
  cell = sn.GRUCell(5, update_bias='chrono', chrono_max_length=50,
                    kernel_init=jax.nn.initializers.zeros,
                    recurrent_kernel_init=jax.nn.initializers.zeros)
  h = jnp.ones((1, 5))
  params = cell.init(jax.random.key(0), h, jnp.zeros((1, 2)))
  h_next, _ = cell.apply(params, h, jnp.zeros((1, 2)))
  u = np.exp(-np.split(np.asarray(params['params']['bias']), 3)[1])
  np.testing.assert_allclose(np.asarray(h_next)[0], u / (1 + u), rtol=1e-5)


def test_the_initialiser_rejects_a_short_horizon_and_unknown_gate_values():
  with pytest.raises(ValueError, match='max_length must be >= 3'):
    initializers.chrono_gate_bias_init(('chrono',), 2)
  with pytest.raises(ValueError, match="'chron'"):
    initializers.chrono_gate_bias_init(('chron',), 10)


@pytest.mark.parametrize('make, message', [
    (lambda: sn.LSTMCell(4, forget_bias='chrono'), 'needs chrono_max_length'),
    (lambda: sn.LSTMCell(4, chrono_max_length=10), "only with forget_bias='chrono'"),
    (lambda: sn.LSTMCell(4, forget_bias='chrono_', chrono_max_length=10), "'chrono_'"),
    (lambda: sn.GRUCell(4, update_bias='chrono'), 'needs chrono_max_length'),
    (lambda: sn.GRUCell(4, chrono_max_length=10), "only with update_bias='chrono'"),
])
def test_the_cells_reject_half_a_chrono_setting(make, message):
  with pytest.raises(ValueError, match=message):
    bias_of(make(), 4)


def entry(**keys):
  return ml_collections.ConfigDict(dict(hidden_size=8, **keys))


@pytest.mark.parametrize('keys', [
    dict(name='lstm', forget_bias='chrono', chrono_max_length=T_MAX),
    dict(name='gru', update_bias='chrono', chrono_max_length=T_MAX),
])
def test_a_config_entry_gives_the_same_initialisation_as_the_cell(keys):
  direct = {'lstm': lambda: sn.LSTMCell(8, forget_bias='chrono', chrono_max_length=T_MAX),
            'gru': lambda: sn.GRUCell(8, update_bias='chrono', chrono_max_length=T_MAX)}
  from_config = bias_of(cells.from_config(entry(**keys))(), 8)
  np.testing.assert_array_equal(from_config['bias'], bias_of(direct[keys['name']](), 8)['bias'])
  assert np.any(from_config['bias'] != 0.0)


@pytest.mark.parametrize('keys, message', [
    (dict(name='lstm', forget_bias='chrono'), r"model.cell: forget_bias='chrono' needs"),
    (dict(name='lstm', forget_bias='crono', chrono_max_length=9),
     r"model.cell.forget_bias must be a finite number or one of \['chrono'\]"),
    (dict(name='lstm', chrono_max_length=9), 'model.cell: chrono_max_length is read only'),
    (dict(name='lstm', forget_bias='chrono', chrono_max_length=2),
     'model.cell.chrono_max_length must be an integer >= 3'),
    (dict(name='lstm', forget_bias='chrono', chrono_max_length=9, input_bias=1.0),
     'model.cell: input_bias cannot be set'),
    (dict(name='gru', update_bias='chrono'), "model.cell: update_bias='chrono' needs"),
    (dict(name='gru', chrono_max_length=9), 'model.cell: chrono_max_length is read only'),
])
def test_config_errors_name_the_key(keys, message):
  with pytest.raises(ValueError, match=message):
    cells.from_config(entry(**keys))


def test_the_nnx_cells_take_the_same_keywords():
  lstm = snx.LSTMCell(F, 8, forget_bias='chrono', chrono_max_length=T_MAX, rngs=nnx.Rngs(0))
  b_i, b_f, _, _ = np.split(np.asarray(lstm.bias.value), 4)
  np.testing.assert_array_equal(b_i, -b_f)
  assert np.all((b_f >= 0.0) & (b_f <= np.log(T_MAX - 1) + 1e-5)) and np.any(b_f > 1.0)
  gru = snx.GRUCell(F, 8, update_bias='chrono', chrono_max_length=T_MAX, rngs=nnx.Rngs(0))
  assert np.all(np.split(np.asarray(gru.bias.value), 3)[1] <= 0.0)
