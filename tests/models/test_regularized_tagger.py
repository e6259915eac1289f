"""The recurrent regularisers through the model factory: `model.*` / `model.cell.*` keys validated, off by
default, and a recurrent_tagger with each one trains a step (configs/anbn.py:smoke)."""

import functools

import jax
import ml_collections
import numpy as np
import pytest

from configs import anbn
from seqnets.models import factory
from seqnets.tasks import DataInfo
from seqnets.training import loop, writers

INFO = DataInfo(vocab_size=5, num_outputs=4)
# name -> (model.* fields, model.cell.* fields); cells and wrappers vary so that every path
# is taken once.
REGULARIZERS = {
    'update_dropout': ({}, dict(name='gru', update_dropout_rate=0.3)),
    'zoneout': ({}, dict(name='elman', zoneout_rate=0.3)),
    'weight_drop': ({}, dict(weight_drop_rate=0.3)),
    'layer_norm': ({}, dict(layer_norm=True, use_peepholes=True)),
    'variational': (dict(variational_input_rate=0.3, variational_state_rate=0.3),
                    dict(name='gru')),
}


@pytest.mark.parametrize('name', sorted(REGULARIZERS))
def test_tagger_with_each_regularizer_trains_a_step(tmp_path, name):
  config = anbn.get_config('smoke')
  model_fields, cell_fields = REGULARIZERS[name]
  config.model.update(model_fields)
  config.model.cell.update(cell_fields)
  config.train.update(num_train_steps=1, log_every_steps=1, checkpoint_every_steps=1)
  config.evals = ml_collections.ConfigDict({'train_range': config.evals.train_range})
  model = factory.from_config(config.model, INFO)
  for field, value in model_fields.items():
    assert getattr(model, field) == value
  cell = model.cell_fn()
  assert type(cell).__name__ == {'lstm': 'LSTMCell', 'gru': 'GRUCell', 'elman': 'ElmanCell'}[
      config.model.cell.name]
  for field, value in cell_fields.items():
    if field != 'name':
      assert getattr(cell, field) == value
  result = loop.train_and_evaluate(config, tmp_path)
  assert result.step == 1
  (record,) = [r for r in writers.read_metrics(tmp_path) if 'train/loss' in r]
  assert np.isfinite(record['train/loss'])
  assert ('input_norm_scale' in result.state.params['layer0_cell']) == (name == 'layer_norm')


def test_regularizers_are_off_by_default_and_validated():
  config = anbn.get_config()
  model = factory.from_config(config.model, INFO)
  tokens, lengths = np.ones((2, 3), np.int32), np.array([3, 2])
  params = jax.eval_shape(functools.partial(model.init, deterministic=True), jax.random.key(0),
                          tokens, lengths)['params']
  assert set(params['layer0_cell']) == {'input_kernel', 'recurrent_kernel', 'bias'}
  cell = model.cell_fn()
  assert (cell.update_dropout_rate, cell.zoneout_rate, cell.weight_drop_rate,
          cell.layer_norm) == (0.0, 0.0, 0.0, False)
  assert model.variational_input_rate == model.variational_state_rate == 0.0
  for field, bad in [('update_dropout_rate', 1.0), ('zoneout_rate', -0.1),
                     ('weight_drop_rate', 'high'), ('layer_norm', 1)]:
    config = anbn.get_config()
    config.model.cell[field] = bad
    with pytest.raises(ValueError, match=f'^model\\.cell\\.{field} must be'):
      factory.from_config(config.model, INFO)
    config = anbn.get_config()
    config.model[field] = 0.0                  # a cell's key, not the model's
    with pytest.raises(ValueError, match=f"^model\\.{field} is not a setting of model "
                                         f"'recurrent_tagger'"):
      factory.from_config(config.model, INFO)
  for field, bad in [('variational_input_rate', float('nan')), ('variational_state_rate', True)]:
    config = anbn.get_config()
    config.model[field] = bad
    with pytest.raises(ValueError, match=f'^model\\.{field} must be'):
      factory.from_config(config.model, INFO)
