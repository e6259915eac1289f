import functools

import jax
import ml_collections
import numpy as np
import pytest

import seqnets as sn
from seqnets.data.factory import DataInfo
from seqnets.models import RecurrentTagger, factory

INFO = DataInfo(vocab_size=5, num_outputs=4, objective='next_symbol_sets')


def model_cfg(**kwargs):
  base = dict(name='recurrent_tagger', cell='lstm', hidden_size=3, num_layers=1, embedding_size=0,
              activation='tanh', use_peepholes=False, forget_bias=1.0, input_bias=0.0,
              output_bias=0.0, reset_after=False, bidirectional=False, dropout_rate=0.0, unroll=1)
  base.update(kwargs)
  return ml_collections.ConfigDict(base)


def init(model, tokens, lengths):
  return model.init(jax.random.key(0), tokens, lengths)['params']


@pytest.mark.parametrize('cell,extra,expected_param', [
    ('elman', {'activation': 'relu'}, 'recurrent_kernel'),
    ('lstm', {'use_peepholes': True}, 'peephole_o'),
    ('gru', {'reset_after': True}, 'recurrent_bias'),
])
def test_factory_builds_each_cell(cell, extra, expected_param):
  model = factory.from_config(model_cfg(cell=cell, **extra), INFO)
  tokens = np.array([[1, 2, 3, 0]])
  params = init(model, tokens, np.array([3]))
  assert expected_param in params['layer0_cell']
  assert model.apply({'params': params}, tokens, np.array([3])).shape == (1, 4, 4)


def test_factory_sets_lstm_gate_biases():
  model = factory.from_config(model_cfg(forget_bias=3.0, input_bias=-1.0, output_bias=-2.0), INFO)
  bias = init(model, np.array([[1, 2]]), np.array([2]))['layer0_cell']['bias']
  np.testing.assert_array_equal(bias, np.repeat([-1.0, 3.0, 0.0, -2.0], 3))


def test_factory_relu_elman_is_relu():
  model = factory.from_config(model_cfg(cell='elman', activation='relu'), INFO)
  tokens = np.array([[1, 2, 3]])
  params = init(model, tokens, np.array([3]))
  cell_params = params['layer0_cell']
  x = jax.nn.one_hot(tokens, 5)
  h = sn.RNN(sn.ElmanCell(3, activation_fn=jax.nn.relu)).apply({'params': {'cell': cell_params}}, x)
  assert np.all(np.asarray(h) >= 0)


@pytest.mark.parametrize('field,value', [
    ('cell', 'lstmm'), ('hidden_size', 0), ('num_layers', -1), ('activation', 'gelu'),
    ('dropout_rate', 1.0), ('name', 'transformer')])
def test_factory_errors_name_the_field(field, value):
  with pytest.raises(ValueError, match=f'model.{field}'):
    factory.from_config(model_cfg(**{field: value}), INFO)


def test_tagger_stacked_bidirectional_embedded_shapes_and_padding():
  model = RecurrentTagger(cell_fn=functools.partial(sn.GRUCell, 3), vocab_size=5, num_outputs=4,
                          num_layers=2, embedding_size=6, bidirectional=True, dropout_rate=0.5)
  tokens = np.array([[1, 2, 3, 4], [2, 2, 0, 0]])
  lengths = np.array([4, 2])
  params = init(model, tokens, lengths)
  assert set(params) == {'Embed_0', 'layer0_forward_cell', 'layer0_backward_cell',
                         'layer1_forward_cell', 'layer1_backward_cell', 'output'}
  assert params['layer1_forward_cell']['input_kernel'].shape == (6, 9)  # 2·H in, 3 gates
  out = model.apply({'params': params}, tokens, lengths)
  garbage = tokens.copy()
  garbage[1, 2:] = 4
  np.testing.assert_allclose(model.apply({'params': params}, garbage, lengths)[1, :2], out[1, :2],
                             rtol=1e-6)
  dropped = model.apply({'params': params}, tokens, lengths, deterministic=False,
                        rngs={'dropout': jax.random.key(1)})
  assert not np.allclose(dropped, out)
