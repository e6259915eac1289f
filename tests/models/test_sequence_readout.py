"""SequenceReadout: known answers against NumPy for both readouts from one set of parameters,
padding, one-hot inputs, a cell whose output is wider than its state, and the factory."""

import functools
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import linen as nn

import seqnets as sn
from seqnets.models import SequenceReadout, cells, factory
from seqnets.tasks import DataInfo

B, T, F, H, V = 4, 6, 3, 5, 2
LENGTHS = np.array([6, 3, 1, 0], np.int32)
X = np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)
# The same inputs with garbage past each row's end.
X_GARBAGE = np.where(np.arange(T)[None, :, None] < LENGTHS[:, None, None], X, 1e3).astype(np.float32)


class WideOutputCell(nn.RNNCellBase):
  """State h `[B, N]`, output `[h ; h²]` `[B, 2N]` (as a complex-state cell outputs its real
  and imaginary parts): h_t = tanh(W x_t + b + U h_{t-1})."""
  features: int

  @nn.compact
  def __call__(self, carry, x):
    h = jnp.tanh(nn.Dense(self.features, name='input')(x)
                 + nn.Dense(self.features, use_bias=False, name='recurrent')(carry))
    return h, jnp.concatenate([h, h * h], -1)

  def initialize_carry(self, rng, input_shape):
    return jnp.zeros(input_shape[:-1] + (self.features,))

  @property
  def num_feature_axes(self) -> int:
    return 1


def make(readout, cell_fn=functools.partial(sn.ElmanCell, H), **kwargs):
  return SequenceReadout(cell_fn=cell_fn, num_outputs=V, readout=readout, **kwargs)


def apply(model, params, inputs, lengths=LENGTHS):
  return np.asarray(model.apply(params, inputs, lengths, deterministic=True))


def both_readouts(cell_fn, x=X, lengths=LENGTHS):
  """(params, every-step outputs, final outputs) of one set of parameters."""
  params = make('final', cell_fn).init(jax.random.key(0), x, lengths, deterministic=True)
  return params['params'], apply(make('every_step', cell_fn), params, x, lengths), apply(
      make('final', cell_fn), params, x, lengths)


def numpy_readouts(step, output):
  """Every-step `[B, T, V]` and final `[B, V]` outputs of `y = output(o_t)` for the cell
  step `(h, x) -> (h, o)`, computed row by row over each row's real steps."""
  (kernel, bias), every, final = output, [], []
  for row in range(B):
    h, outputs = None, []
    for t in range(LENGTHS[row]):
      h, o = step(h, X[row, t].astype(np.float64))
      outputs.append(o)
    width = kernel.shape[0]
    padded = np.zeros((T, width))
    padded[:len(outputs)] = np.reshape(outputs, (-1, width))
    every.append(padded @ kernel + bias)
    final.append((outputs[-1] if outputs else np.zeros(width)) @ kernel + bias)
  return np.stack(every), np.stack(final)


def test_elman_both_readouts_match_numpy_and_padding_changes_nothing():
  # Rows B.. repeat rows ..B with garbage past each end: their outputs must be the same.
  params, every, final = both_readouts(functools.partial(sn.ElmanCell, H),
                                       np.concatenate([X, X_GARBAGE]), np.tile(LENGTHS, 2))
  np.testing.assert_array_equal(every[B:], every[:B])
  np.testing.assert_array_equal(final[B:], final[:B])
  every, final = every[:B], final[:B]
  cell = {k: np.asarray(v, np.float64) for k, v in params['layer0_cell'].items()}
  def step(h, x):
    h = np.tanh(x @ cell['input_kernel'] + (0 if h is None else h @ cell['recurrent_kernel'])
                + cell['bias'])
    return h, h
  output = (np.asarray(params['output']['kernel'], np.float64), np.asarray(params['output']['bias']))
  expected_every, expected_final = numpy_readouts(step, output)
  assert every.shape == (B, T, V) and final.shape == (B, V)
  np.testing.assert_allclose(every, expected_every, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(final, expected_final, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(final[3], output[1], rtol=1e-6)       # length 0: the bias alone


def test_a_cell_whose_output_is_twice_its_state_is_read_out_whole():
  params, every, final = both_readouts(functools.partial(WideOutputCell, H))
  assert params['output']['kernel'].shape == (2 * H, V)
  cell = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params['layer0_cell'])
  def step(h, x):
    h = np.tanh(x @ cell['input']['kernel'] + cell['input']['bias']
                + (0 if h is None else h @ cell['recurrent']['kernel']))
    return h, np.concatenate([h, h * h])
  output = (np.asarray(params['output']['kernel'], np.float64), np.asarray(params['output']['bias']))
  expected_every, expected_final = numpy_readouts(step, output)
  np.testing.assert_allclose(every, expected_every, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(final, expected_final, rtol=1e-5, atol=1e-6)


def test_one_hot_tokens_equal_their_one_hot_vectors_read_as_real_inputs():
  tokens = np.random.default_rng(1).integers(0, 10, (B, T)).astype(np.int32)
  kwargs = dict(cell_fn=functools.partial(sn.LSTMCell, 3), num_layers=2)
  tokens_model = make('every_step', input_mode='one_hot', vocab_size=10, **kwargs)
  params = tokens_model.init(jax.random.key(0), tokens, LENGTHS, deterministic=True)
  assert sorted(params['params']) == ['layer0_cell', 'layer1_cell', 'output']
  from_tokens = apply(tokens_model, params, tokens)
  from_vectors = apply(make('every_step', input_mode='real', **kwargs), params,
                       np.eye(10, dtype=np.float32)[tokens])
  assert from_tokens.shape == (B, T, V)
  np.testing.assert_allclose(from_tokens, from_vectors, rtol=1e-6, atol=1e-7)
  with pytest.raises(ValueError, match=r"input_mode='one_hot' takes token ids \[B, T\]"):
    tokens_model.apply(params, X, LENGTHS, deterministic=True)


GRU = dict(name='gru', hidden_size=4, reset_after=False)


def model_cfg(**kwargs):
  base = dict(name='sequence_readout', num_layers=1, readout='final', dropout_rate=0.0, unroll=1,
              cell=GRU)
  return ml_collections.ConfigDict({**base, **kwargs})


def test_factory_reads_tokens_when_the_data_has_a_vocabulary_and_takes_any_registered_cell(
    monkeypatch):
  model = factory.from_config(model_cfg(readout='every_step'), DataInfo(vocab_size=10, num_outputs=10))
  assert (model.input_mode, model.vocab_size, model.num_outputs) == ('one_hot', 10, 10)
  assert model.readout == 'every_step'
  model = factory.from_config(model_cfg(), DataInfo(vocab_size=0, num_outputs=1))
  assert (model.input_mode, model.readout, model.num_outputs) == ('real', 'final', 1)
  # readout defaults to 'final'
  config = model_cfg()
  del config['readout']
  assert factory.from_config(config, DataInfo(vocab_size=0, num_outputs=1)).readout == 'final'
  # A cell registered by name later (here a test cell) reaches the model through the factory.
  monkeypatch.setitem(cells.CELLS, 'wide', cells.Cell(WideOutputCell))
  model = factory.from_config(model_cfg(cell=dict(name='wide', hidden_size=4)),
                              DataInfo(vocab_size=0, num_outputs=1))
  params = model.init(jax.random.key(0), X, LENGTHS, deterministic=True)
  assert params['params']['output']['kernel'].shape == (8, 1)


@pytest.mark.parametrize('overrides,message', [
    (dict(readout=None), "model.readout=None; valid: ['every_step', 'final']"),
    (dict(readout='mean'), "model.readout='mean'"),
    (dict(bidirectional=True), "model.bidirectional=True needs readout='every_step'"),
    (dict(cell={**GRU, 'hidden_size': 0}), 'model.cell.hidden_size must be a positive integer'),
    (dict(cell={**GRU, 'name': 'unknown'}), "model.cell.name='unknown'"),
    (dict(cell={**GRU, 'activation': 'tanh'}), "model.cell.activation is not a setting of the 'gru' cell"),
])
def test_bad_values_name_the_field(overrides, message):
  with pytest.raises(ValueError, match='^' + re.escape(message)):
    factory.validate(model_cfg(**overrides))


def test_an_embedding_needs_token_inputs():
  model = factory.from_config(model_cfg(embedding_size=4), DataInfo(vocab_size=10, num_outputs=3))
  assert model.embedding_size == 4 and model.input_mode == 'one_hot'
  with pytest.raises(ValueError, match='^model.embedding_size=4 needs token inputs'):
    factory.from_config(model_cfg(embedding_size=4), DataInfo(vocab_size=0, num_outputs=1))
