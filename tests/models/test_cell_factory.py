"""`model.cell` entries → cells, with their keys; the gradient-flow study builds the same cells."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import seqnets as sn
from seqnets.analysis import gradient_flow_study as study
from seqnets.analysis import gradient_flow
from seqnets.layers import unitary
from seqnets.models import cells

H = 6


def cell_of(cell, **keys):
  entry = ml_collections.ConfigDict(dict(name=cell, hidden_size=H, **keys))
  return cells.from_config(entry)()


@pytest.mark.parametrize('keys, cls, attributes', [
    (dict(cell='orthogonal', activation='tanh', parametrization='cayley'), sn.OrthogonalRNNCell,
     dict(activation='tanh', parametrization='cayley')),
    (dict(cell='orthogonal'), sn.OrthogonalRNNCell, dict(activation='modrelu',
                                                         parametrization='expm')),
    (dict(cell='unitary', permutation_seed=3), sn.UnitaryRNNCell, dict(permutation_seed=3)),
    (dict(cell='leaky', leak=0.25, learn_leak=True), sn.LeakyRNNCell,
     dict(leak=0.25, learn_leak=True)),
    (dict(cell='skip', skip=7), sn.SkipRNNCell, dict(skip=7)),
    (dict(cell='echo_state', spectral_radius=1.1, input_scale=0.5, leak=0.3, density=0.2,
          bias_scale=0.1, reservoir_seed=4), sn.EchoStateCell,
     dict(spectral_radius=1.1, input_scale=0.5, leak=0.3, density=0.2, bias_scale=0.1,
          reservoir_seed=4)),
])
def test_each_cell_name_builds_its_cell_with_the_config_keys(keys, cls, attributes):
  cell = cell_of(**keys)
  assert type(cell) is cls and cell.features == H
  assert {name: getattr(cell, name) for name in attributes} == attributes


@pytest.mark.parametrize('keys, field', [
    (dict(cell='orthogonal', activation='relu'), 'activation'),
    (dict(cell='orthogonal', parametrization='svd'), 'parametrization'),
    (dict(cell='skip', skip=1), 'skip'),
    (dict(cell='leaky', leak=1.5), 'leak'),
    (dict(cell='echo_state', density=-1.0), 'density'),
    (dict(cell='unitary', zoneout_rate=0.1), 'zoneout_rate'),
    (dict(cell='leaky', layer_norm=True), 'layer_norm'),
])
def test_bad_cell_keys_are_named(keys, field):
  with pytest.raises(ValueError, match=f'model.cell.{field}'):
    cell_of(**keys)


def init_cell(cell, features=3):
  x = jnp.ones((2, features))
  return cell.init(jax.random.key(0), cell.initialize_carry(None, x.shape), x).get('params', {})


def test_recurrent_matrix_of_every_kind_of_cell():
  elman = sn.ElmanCell(H)
  params = init_cell(elman)
  np.testing.assert_array_equal(gradient_flow.recurrent_matrix(elman, params, 3),
                                params['recurrent_kernel'])
  orthogonal = sn.OrthogonalRNNCell(H)
  params = init_cell(orthogonal)
  u = np.asarray(gradient_flow.recurrent_matrix(orthogonal, params, 3))
  np.testing.assert_allclose(u.T @ u, np.eye(H), atol=1e-5)
  esn = sn.EchoStateCell(H, spectral_radius=0.7)
  assert init_cell(esn) == {}
  w = np.asarray(gradient_flow.recurrent_matrix(esn, {}, 3))
  np.testing.assert_allclose(np.max(np.abs(np.linalg.eigvals(w))), 0.7, rtol=1e-5)
  # The unitary cell's W on [Re h; Im h]: row k is W applied to the k-th basis vector.
  cell = sn.UnitaryRNNCell(4)
  params = init_cell(cell)
  m = np.asarray(gradient_flow.recurrent_matrix(cell, params, 3))
  h = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
  expected = unitary.unitary_matmul(params, jax.lax.complex(h[:, :4], h[:, 4:]),
                                    cell.permutation())
  np.testing.assert_allclose(h @ m, np.concatenate([expected.real, expected.imag], -1),
                             atol=1e-5)
  np.testing.assert_allclose(m.T @ m, np.eye(8), atol=1e-5)        # unitary ⇒ orthogonal form


def test_gradient_flow_study_builds_every_factory_cell():
  assert set(study.CELL_KINDS) == set(cells.CELLS)
  assert isinstance(study.make_cell(dict(cell='leaky', leak=0.5), H), sn.LeakyRNNCell)
  with pytest.raises(ValueError, match='recurrent_scale'):
    study.make_cell(dict(cell='orthogonal', recurrent_scale=2.0), H)
  with pytest.raises(ValueError, match="cell='nope'"):
    study.make_cell(dict(cell='nope'), H)


def test_every_cell_key_reaches_the_cell_and_defaults_are_the_cells_own():
  for name, entry in cells.CELLS.items():
    settings = cells.resolve(dict(name=name, hidden_size=H))
    cell = cells.from_config(settings)()
    for key, field in entry.fields().items():
      if hasattr(cell, key) and key != 'hidden_size':
        assert getattr(cell, key) == settings[key] == getattr(entry.cls(H), key), (name, key)


def test_lstm_gate_biases_initialise_their_blocks():
  cell = cell_of('lstm', forget_bias=3.0, input_bias=-1.0, output_bias=2.0)
  bias = init_cell(cell)['bias']
  np.testing.assert_array_equal(bias, np.repeat([-1.0, 3.0, 0.0, 2.0], H))


@pytest.mark.parametrize('entry, message', [
    (dict(name='lstm', hidden_size=H, skip=3), "model.cell.skip is not a setting of the 'lstm'"),
    (dict(name='gru', hidden_size=H, forget_bias=1.0), 'model.cell.forget_bias'),
    (dict(name='lstm'), 'model.cell.hidden_size is required'),
    (dict(name='lstm', hidden_size=True), 'model.cell.hidden_size must be a positive integer'),
    (dict(name='elman', hidden_size=H, zoneout_rate=1.0), r'zoneout_rate must be a finite number in \[0, 1\)'),
    ('lstm', 'must be an entry like'),
])
def test_unknown_or_bad_cell_keys_are_refused_with_the_valid_ones(entry, message):
  with pytest.raises(ValueError, match=message):
    cells.resolve(entry)
