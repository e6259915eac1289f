"""The recurrent regularisers through the model factory: `model.*` keys validated, off by
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
# name -> model.* fields (cells and wrappers vary so that every path is taken once)
REGULARIZERS = {
    'update_dropout': dict(update_dropout_rate=0.3, cell='gru'),
    'zoneout': dict(zoneout_rate=0.3, cell='elman'),
    'weight_drop': dict(weight_drop_rate=0.3),
    'layer_norm': dict(layer_norm=True, use_peepholes=True),
    'variational': dict(variational_input_rate=0.3, variational_state_rate=0.3, cell='gru'),
}


@pytest.mark.parametrize('name', sorted(REGULARIZERS))
def test_tagger_with_each_regularizer_trains_a_step(tmp_path, name):
  config = anbn.get_config('smoke')
  config.model.update(REGULARIZERS[name])
  config.train.update(num_train_steps=1, log_every_steps=1, checkpoint_every_steps=1)
  config.evals = ml_collections.ConfigDict({'train_range': config.evals.train_range})
  model = factory.from_config(config.model, INFO)
  for field, value in REGULARIZERS[name].items():
    owner = model if field.startswith('variational') else model.cell_fn()
    assert getattr(owner, field, value) == value
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
                     ('weight_drop_rate', 'high'), ('variational_input_rate', float('nan')),
                     ('variational_state_rate', True), ('layer_norm', 1)]:
    config = anbn.get_config()
    config.model[field] = bad
    with pytest.raises(ValueError, match=f'model.{field}'):
      factory.from_config(config.model, INFO)
