"""The gradient-flow study's pieces: its cells, config checks and first-symbol batches.

The whole study on its smoke config runs from the command line in
tests/experiments/test_gradient_flow_study.py.
"""

import jax
import numpy as np
import pytest

import seqnets as sn
from configs import gradient_flow as gradient_flow_config
from seqnets.analysis import gradient_flow_study


def test_make_cell_builds_the_classic_cells_with_a_scaled_orthogonal_recurrent_kernel():
  cell = gradient_flow_study.make_cell(dict(cell='elman', activation='relu', recurrent_scale=2.0), 4)
  assert isinstance(cell, sn.ElmanCell) and cell.activation_fn is jax.nn.relu
  carry = cell.initialize_carry(jax.random.key(0), (1, 3))
  params = cell.init(jax.random.key(1), carry, np.zeros((1, 3), np.float32))
  kernel = np.asarray(params['params']['recurrent_kernel'])
  np.testing.assert_allclose(kernel.T @ kernel, 4 * np.eye(4), atol=1e-5)
  assert gradient_flow_study.make_cell(dict(cell='lstm', forget_bias=3.0), 4).forget_bias == 3.0
  with pytest.raises(ValueError, match="activation='sine'"):
    gradient_flow_study.make_cell(dict(cell='elman', activation='sine'), 4)


def test_check_config_names_the_bad_field():
  config = gradient_flow_config.get_config('smoke')
  gradient_flow_study.check_config(config)
  with config.unlocked():
    config.cells.lstm.cell = 'nope'
  with pytest.raises(ValueError, match=r"config\.cells\.lstm: cell='nope'"):
    gradient_flow_study.check_config(config)
  config = gradient_flow_config.get_config('smoke')
  config.probe.distances = (5, 25)
  with pytest.raises(ValueError, match='config.probe.distances'):
    gradient_flow_study.check_config(config)
  for path in ('', 'data', 'probe', 'optim', 'exploding.optim'):
    config = gradient_flow_config.get_config('smoke')
    section = config
    for key in filter(None, path.split('.')):
      section = section[key]
    with section.unlocked():
      section.nmae = 1
    with pytest.raises(ValueError, match=r'\.nmae is not a setting; valid: \['):
      gradient_flow_study.check_config(config)
  config = gradient_flow_config.get_config('smoke')
  with config.optim.unlocked():
    config.optim.ema_decay = 0.99        # the study's own loop keeps no moving average
  with pytest.raises(ValueError, match=r'config\.optim\.ema_decay is not a setting'):
    gradient_flow_study.check_config(config)


def test_first_symbol_batch_labels_each_sequence_by_its_first_symbol():
  tokens, lengths, labels = gradient_flow_study.first_symbol_batch(jax.random.key(0), 64, (3, 5), 4)
  assert tokens.shape == (64, 5) and labels.shape == lengths.shape == (64,)
  np.testing.assert_array_equal(labels, tokens[:, 0])
  assert set(np.asarray(lengths).tolist()) == {3, 4, 5}
  assert 0 <= int(tokens.min()) and int(tokens.max()) < 4
