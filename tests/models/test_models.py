import functools
import importlib
import re

import jax
import ml_collections
import numpy as np
import pytest

import seqnets as sn
from seqnets.tasks import DataInfo
from seqnets.models import SequenceReadout, factory
from seqnets.training import optimizers

INFO = DataInfo(vocab_size=5, num_outputs=4)


# Each cell's keys, at the values the flat layout used to spell beside the model's keys.
CELL_DEFAULTS = {'elman': dict(activation='tanh'),
                 'lstm': dict(use_peepholes=False, forget_bias=1.0, input_bias=0.0, output_bias=0.0),
                 'gru': dict(reset_after=False)}
CELL_KEYS = {'hidden_size', *(key for keys in CELL_DEFAULTS.values() for key in keys)}


def model_cfg(cell='lstm', **kwargs):
  """A recurrent_tagger config in the nested layout: `cell` a name (the keys in
  `CELL_KEYS` among `kwargs` go into `model.cell`) or the whole `model.cell` entry."""
  base = dict(name='recurrent_tagger', num_layers=1, embedding_size=0, bidirectional=False,
              dropout_rate=0.0, unroll=1)
  cell_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key in CELL_KEYS}
  if isinstance(cell, str):
    cell = {'name': cell, 'hidden_size': 3, **CELL_DEFAULTS.get(cell, {}), **cell_kwargs}
  base.update(kwargs, cell=cell)
  return ml_collections.ConfigDict(base)


def init(model, tokens, lengths):
  return model.init(jax.random.key(0), tokens, lengths, deterministic=True)['params']


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
  assert model.apply({'params': params}, tokens, np.array([3]), deterministic=True).shape == (1, 4, 4)


def test_factory_sets_lstm_gate_biases():
  model = factory.from_config(model_cfg(forget_bias=3.0, input_bias=-1.0, output_bias=-2.0), INFO)
  bias = init(model, np.array([[1, 2]]), np.array([2]))['layer0_cell']['bias']
  np.testing.assert_array_equal(bias, np.repeat([-1.0, 3.0, 0.0, -2.0], 3))


def numpy_elman_tagger(params, tokens, lengths, activation):
  """One-hot → Elman `h_t = φ(x_t W + h_{t-1} U + b)` (frozen past `lengths`, outputs 0) → Dense."""
  cell, out = params['layer0_cell'], params['output']
  (batch, steps), hidden = tokens.shape, cell['bias'].shape[0]
  x = np.eye(INFO.vocab_size)[tokens]
  h, hs, pre = np.zeros((batch, hidden)), np.zeros((batch, steps, hidden)), []
  for t in range(steps):
    a = x[:, t] @ cell['input_kernel'] + h @ cell['recurrent_kernel'] + cell['bias']
    real = (t < lengths)[:, None]
    pre.append(a[real[:, 0]])
    h = np.where(real, activation(a), h)
    hs[:, t] = np.where(real, h, 0)
  return hs @ out['kernel'] + out['bias'], np.concatenate(pre)


def test_factory_relu_elman_is_relu():
  tokens, lengths = np.array([[1, 2, 3, 4], [4, 3, 0, 0]]), np.array([4, 2])
  models = {activation: factory.from_config(model_cfg(cell='elman', activation=activation), INFO)
            for activation in ('relu', 'tanh')}
  initial = init(models['relu'], tokens, lengths)
  rng = np.random.default_rng(0)
  params = jax.tree_util.tree_map(lambda a: rng.normal(size=a.shape).astype(np.float32), initial)
  relu = lambda a: np.maximum(a, 0)
  want_relu, pre = numpy_elman_tagger(params, tokens, lengths, relu)
  want_tanh, _ = numpy_elman_tagger(params, tokens, lengths, np.tanh)
  assert np.any(pre < -0.5) and np.any(pre > 1.0)      # ReLU and tanh differ on these
  assert not np.allclose(want_relu, want_tanh, atol=0.1)
  got = {name: np.asarray(model.apply({'params': params}, tokens, lengths, deterministic=True))
         for name, model in models.items()}
  np.testing.assert_allclose(got['relu'], want_relu, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(got['tanh'], want_tanh, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('cell,field,value,name', [
    ('lstmm', None, None, 'cell.name'), ('lstm', 'hidden_size', 0, 'cell.hidden_size'),
    ('lstm', 'num_layers', -1, 'num_layers'), ('elman', 'activation', 'gelu', 'cell.activation'),
    ('lstm', 'dropout_rate', 1.0, 'dropout_rate'), ('lstm', 'name', 'transformer', 'name')])
def test_factory_errors_name_the_field(cell, field, value, name):
  overrides = {} if field is None else {field: value}
  with pytest.raises(ValueError, match=f'^model\\.{re.escape(name)}\\b'):
    factory.from_config(model_cfg(cell, **overrides), INFO)


def test_tagger_stacked_bidirectional_embedded_shapes_and_padding():
  model = SequenceReadout(cell_fn=functools.partial(sn.GRUCell, 3), vocab_size=5, num_outputs=4,
                          input_mode='one_hot', readout='every_step', num_layers=2,
                          embedding_size=6, bidirectional=True, dropout_rate=0.5)
  tokens = np.array([[1, 2, 3, 4], [2, 2, 0, 0]])
  lengths = np.array([4, 2])
  params = init(model, tokens, lengths)
  assert set(params) == {'Embed_0', 'layer0_cell', 'layer0_backward_cell',
                         'layer1_cell', 'layer1_backward_cell', 'output'}
  assert params['layer1_cell']['input_kernel'].shape == (6, 9)  # 2·H in, 3 gates
  out = model.apply({'params': params}, tokens, lengths, deterministic=True)
  garbage = tokens.copy()
  garbage[1, 2:] = 4
  np.testing.assert_allclose(model.apply({'params': params}, garbage, lengths, deterministic=True)[1, :2], out[1, :2],
                             rtol=1e-6)
  dropped = model.apply({'params': params}, tokens, lengths, deterministic=False,
                        rngs={'dropout': jax.random.key(1)})
  assert not np.allclose(dropped, out)
  with pytest.raises(TypeError, match='deterministic'):
    model.apply({'params': params}, tokens, lengths)


NAN, INF = float('nan'), float('inf')


def image_cnn_cfg(**kwargs):
  base = dict(name='image_cnn', features=(4, 8), kernel_size=(3, 3), strides=1, padding='SAME',
              activation='relu', pool_kind='max', pool_window=2, pool_strides=None,
              pool_padding='VALID', spatial_dropout_rate=0.0, dense_features=(8,), dropout_rate=0.0)
  base.update(kwargs)
  return ml_collections.ConfigDict(base)


def text_cnn_cfg(**kwargs):
  base = dict(name='text_cnn', embedding_size=8, filter_widths=(2, 3), num_filters=3,
              dropout_rate=0.5, channels='rand')
  base.update(kwargs)
  return ml_collections.ConfigDict(base)


CONFIGS = {'recurrent_tagger': model_cfg, 'elman_tagger': functools.partial(model_cfg, 'elman'),
           'gru_tagger': functools.partial(model_cfg, 'gru'), 'image_cnn': image_cnn_cfg,
           'text_cnn': text_cnn_cfg}


@pytest.mark.parametrize('model,field,value,message', [
    ('recurrent_tagger', 'name', None, 'model.name=None'),
    ('recurrent_tagger', 'cell', None, 'model.cell must be an entry like'),
    ('recurrent_tagger', 'cell', dict(name=None, hidden_size=3), 'model.cell.name=None; valid:'),
    ('recurrent_tagger', 'cell', dict(name='lstm'), "model.cell.hidden_size is required for the 'lstm' cell"),
    ('recurrent_tagger', 'hidden_size', None, 'model.cell.hidden_size must be a positive integer, got None'),
    ('recurrent_tagger', 'hidden_size', True, 'model.cell.hidden_size must be a positive integer, got True'),
    ('recurrent_tagger', 'hidden_size', 8.0, 'model.cell.hidden_size must be a positive integer, got 8.0'),
    ('recurrent_tagger', 'hidden_size', '8', 'model.cell.hidden_size'),
    ('recurrent_tagger', 'num_layers', 0, 'model.num_layers must be a positive integer, got 0'),
    ('recurrent_tagger', 'num_layers', False, 'model.num_layers'),
    ('recurrent_tagger', 'unroll', 0, 'model.unroll must be a positive integer or None, got 0'),
    ('recurrent_tagger', 'unroll', True, 'model.unroll'),
    ('recurrent_tagger', 'embedding_size', -1, 'model.embedding_size must be a non-negative integer'),
    ('recurrent_tagger', 'embedding_size', 2.5, 'model.embedding_size'),
    ('elman_tagger', 'activation', None, 'model.cell.activation=None'),
    ('recurrent_tagger', 'activation', 'tanh', "model.cell.activation is not a setting of the 'lstm' cell"),
    ('recurrent_tagger', 'dropout_rate', -0.1, 'model.dropout_rate must be a finite number in [0, 1), '
                                               'got -0.1'),
    ('recurrent_tagger', 'dropout_rate', NAN, 'model.dropout_rate must be a finite number in [0, 1), '
                                              'got nan'),
    ('recurrent_tagger', 'dropout_rate', True, 'model.dropout_rate'),
    ('recurrent_tagger', 'forget_bias', NAN, "model.cell.forget_bias must be a finite number or one of ['chrono'], got nan"),
    ('recurrent_tagger', 'input_bias', -INF, 'model.cell.input_bias must be a finite number, got -inf'),
    ('recurrent_tagger', 'output_bias', 'low', 'model.cell.output_bias'),
    ('recurrent_tagger', 'forget_bias', True, 'model.cell.forget_bias'),
    ('recurrent_tagger', 'use_peepholes', 1, 'model.cell.use_peepholes must be True or False, got 1'),
    ('gru_tagger', 'reset_after', 'yes', 'model.cell.reset_after must be True or False'),
    ('recurrent_tagger', 'reset_after', False, "model.cell.reset_after is not a setting of the 'lstm' cell"),
    ('recurrent_tagger', 'bidirectional', None, 'model.bidirectional must be True or False'),
    ('recurrent_tagger', 'pooling', 'mean', "model.pooling is not a setting of model 'recurrent_tagger'"),
    ('image_cnn', 'features', (), 'model.features'),
    ('image_cnn', 'features', (4, True), 'model.features'),
    ('image_cnn', 'features', 4, 'model.features'),
    ('image_cnn', 'kernel_size', (3, 0), 'model.kernel_size must be a positive integer or a non-empty '
                                         'list of positive integers, got (3, 0)'),
    ('image_cnn', 'kernel_size', (), 'model.kernel_size'),
    ('image_cnn', 'kernel_size', True, 'model.kernel_size'),
    ('image_cnn', 'kernel_size', (3.0, 3.0), 'model.kernel_size'),
    ('image_cnn', 'strides', 0, 'model.strides must be a positive integer or a non-empty list '
                                  'of positive integers, got 0'),
    ('image_cnn', 'strides', (1, 1, 1), 'model.strides=(1, 1, 1) must be a positive integer or 2 of them'),
    ('image_cnn', 'strides', True, 'model.strides'),
    ('image_cnn', 'strides', None, 'model.strides'),
    ('image_cnn', 'padding', 'FULL', 'model.padding must be one of'),
    ('image_cnn', 'padding', -1, 'model.padding'),
    ('image_cnn', 'padding', True, 'model.padding'),
    ('image_cnn', 'padding', ((1, 1),), 'model.padding'),
    ('image_cnn', 'padding', (1, (0, True)), 'model.padding'),
    ('image_cnn', 'padding', 'CAUSAL', 'model.padding'),             # flax: 1D convolutions only
    ('image_cnn', 'activation', 'gelu', "model.activation='gelu'"),
    ('image_cnn', 'pool_kind', 'min', "model.pool_kind='min'"),
    ('image_cnn', 'pool_window', 0, 'model.pool_window must be a positive integer or a non-empty '
                                      'list of positive integers, got 0'),
    ('image_cnn', 'pool_window', (2,), 'model.pool_window=(2,) must be a positive integer or 2 of them'),
    ('image_cnn', 'pool_window', 2.0, 'model.pool_window'),
    ('image_cnn', 'pool_strides', (2, -1), 'model.pool_strides must be a positive integer or a list '
                                           'of positive integers or None, got (2, -1)'),
    ('image_cnn', 'pool_strides', False, 'model.pool_strides'),
    ('image_cnn', 'pool_padding', 'CIRCULAR', 'model.pool_padding must be one of'),
    ('image_cnn', 'pool_padding', [[0, 1]], 'model.pool_padding'),
    ('image_cnn', 'spatial_dropout_rate', 1.0, 'model.spatial_dropout_rate must be a finite number '
                                               'in [0, 1), got 1.0'),
    ('image_cnn', 'spatial_dropout_rate', INF, 'model.spatial_dropout_rate'),
    ('image_cnn', 'dense_features', (0,), 'model.dense_features must be a list of positive integers, '
                                           'got (0,)'),
    ('image_cnn', 'dense_features', 128, 'model.dense_features'),
    ('image_cnn', 'dense_features', (True,), 'model.dense_features'),
    ('image_cnn', 'dropout_rate', 1.5, 'model.dropout_rate'),
    ('text_cnn', 'embedding_size', 0, 'model.embedding_size must be a positive integer, got 0'),
    ('text_cnn', 'embedding_size', None, 'model.embedding_size'),
    ('text_cnn', 'num_filters', 0, 'model.num_filters must be a positive integer, got 0'),
    ('text_cnn', 'num_filters', True, 'model.num_filters'),
    ('text_cnn', 'filter_widths', (), 'model.filter_widths must be a non-empty list of positive integers'),
    ('text_cnn', 'filter_widths', (3, 0), 'model.filter_widths'),
    ('text_cnn', 'filter_widths', (3, True), 'model.filter_widths'),
    ('text_cnn', 'filter_widths', 3, 'model.filter_widths'),
    ('text_cnn', 'channels', 'dynamic', "model.channels='dynamic'"),
    ('text_cnn', 'dropout_rate', NAN, 'model.dropout_rate'),
])
def test_bad_model_values_name_the_field(model, field, value, message):
  with pytest.raises(ValueError, match=f'^{re.escape(message)}'):
    factory.validate(CONFIGS[model](**{field: value}))


@pytest.mark.parametrize('model,overrides', [
    ('recurrent_tagger', dict(embedding_size=0, forget_bias=3, input_bias=-1, output_bias=0)),
    ('gru_tagger', dict(embedding_size=4, bidirectional=True, reset_after=True,
                              num_layers=2, unroll=2, dropout_rate=0)),
    ('image_cnn', dict(kernel_size=[3, 3], strides=(1, 2), padding=1, pool_kind=None)),
    ('image_cnn', dict(padding=[[1, 1], [0, 2]], pool_window=(2, 1), pool_strides=1,
                       pool_padding='same', dense_features=[], spatial_dropout_rate=0)),
    ('image_cnn', dict(kernel_size=3, strides=(1,), padding='CAUSAL', pool_kind='avg',
                       pool_window=(2,), pool_padding=[[0, 1]])),                    # 1D
    ('text_cnn', dict(filter_widths=[1], channels='multichannel', dropout_rate=0)),
])
def test_good_model_values_pass(model, overrides):
  factory.validate(CONFIGS[model](**overrides))


def test_validated_image_cnn_builds():
  config = image_cnn_cfg(kernel_size=[3, 3], strides=(1, 1), padding=[[1, 1], [0, 2]],
                         pool_window=(2, 1), pool_padding='same', dense_features=[])
  model = factory.from_config(config, DataInfo(vocab_size=0, num_outputs=3))
  params = model.init(jax.random.key(0), np.zeros((1, 8, 8, 1), np.float32))
  assert model.apply(params, np.zeros((2, 8, 8, 1), np.float32)).shape == (2, 3)


SHIPPED = [('anbn', None), ('anbn', 'smoke'), ('digits_cnn', None), ('digits_cnn', 'smoke'),
           ('text_cnn', None), ('text_cnn', 'smoke'), ('ablate_formal', None),
           ('ablate_formal', 'smoke'), ('ablate_formal', 'demo'), ('finetune_digits', None),
           ('finetune_digits', 'smoke'), ('tune_formal', None)]


@pytest.mark.parametrize('module,mode', SHIPPED)
def test_shipped_configs_pass_model_and_optim_validation(module, mode):
  config = importlib.import_module(f'configs.{module}').get_config(mode)
  optimizers.validate(config.optim)
  factory.validate(config.model)


@pytest.mark.parametrize('module', ['ablate_formal', 'tune_formal'])
def test_shipped_sweep_runs_pass_model_and_optim_validation(module):
  config_module = importlib.import_module(f'configs.{module}')
  config = config_module.get_config()
  for run in config_module.sweep():
    sections = {'model': config.model.to_dict(), 'optim': config.optim.to_dict()}
    for key, value in run.items():
      section, *path = key.split('.')
      if section in sections:
        entry = sections[section]
        for part in path[:-1]:
          entry = entry[part]
        entry[path[-1]] = value
    optimizers.validate(ml_collections.ConfigDict(sections['optim']))
    factory.validate(ml_collections.ConfigDict(sections['model']))


@pytest.mark.parametrize('name,extra', [('recurrent_lm', {}), ('recurrent_seq2seq', {})])
def test_model_remat_keeps_values_and_gradients(name, extra):
  """`model.remat=k` recomputes the recurrences' steps in the backward pass: same loss and
  gradients as without (lengths 9 and 4, k = 4 does not divide them)."""
  rng = np.random.default_rng(0)
  tokens, lengths = rng.integers(1, 7, (2, 9)), np.array([9, 4])
  args = (tokens, lengths) if name == 'recurrent_lm' else (
      tokens, lengths, rng.integers(1, 4, (2, 6)), np.array([6, 3]))
  results = []
  for remat in (0, 4):
    config = ml_collections.ConfigDict(dict(name=name, embedding_size=4, remat=remat,
                                            cell=dict(name='lstm', hidden_size=5), **extra))
    model = factory.from_config(config, DataInfo(vocab_size=7, num_outputs=4))
    params = jax.jit(lambda: model.init(jax.random.key(0), *args, deterministic=True))()
    loss = lambda p: jax.numpy.sum(jax.numpy.sin(model.apply(p, *args, deterministic=True)))
    results.append(jax.jit(jax.value_and_grad(loss))(params))
  np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
                         results[0][1], results[1][1])
