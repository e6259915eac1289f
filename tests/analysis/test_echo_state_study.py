"""The echo-state study on its smoke config: results, plot and the scores it reports."""

import json

import numpy as np
import pytest

from configs import echo_state as echo_state_config
from seqnets.analysis import echo_state_study
from seqnets.data.mackey_glass import mackey_glass


def test_smoke_experiment_writes_results_and_plot(tmp_path):
  config = echo_state_config.get_config('smoke')
  results, summary = echo_state_study.run_and_write(config, tmp_path)
  assert '| ridge |' in summary
  assert (tmp_path / 'prediction.png').stat().st_size > 1000
  saved = json.loads((tmp_path / 'results.json').read_text())
  data = config.data
  readouts = saved['readouts']
  assert set(readouts) == {'ridge', 'gradient', 'persistence'}
  assert len(readouts['gradient']['train_loss']) == config.gradient.num_steps
  # Targets are the series one step ahead of the reservoir's input, after washout and training.
  series = mackey_glass(data.washout + data.train_steps + data.test_steps + 1,
                        transient=data.transient)
  np.testing.assert_allclose(saved['test_targets'], series[-data.test_steps:], rtol=1e-12)
  for name, predictions in saved['test_predictions'].items():
    error = np.asarray(predictions) - series[-data.test_steps:]
    want = np.sqrt(np.mean(error ** 2)) / np.std(series[-data.test_steps:])
    np.testing.assert_allclose(readouts[name]['test_nrmse'], want, rtol=1e-6)
  # Least squares is optimal on the training states; even a 30-unit reservoir beats persistence.
  assert readouts['ridge']['train_nrmse'] <= readouts['gradient']['train_nrmse']
  assert readouts['ridge']['test_nrmse'] < 0.1 * readouts['persistence']['test_nrmse']
  assert results['seconds']['total'] > 0


def test_unknown_mode_names_the_valid_ones():
  with pytest.raises(ValueError, match='valid: smoke'):
    echo_state_config.get_config('huge')


@pytest.mark.parametrize('section', ['', 'data', 'reservoir', 'ridge', 'gradient', 'gradient.optim'])
def test_a_key_the_study_does_not_read_is_refused(section):
  config = echo_state_config.get_config('smoke')
  echo_state_study.check_config(config)
  node = config
  for key in filter(None, section.split('.')):
    node = node[key]
  with node.unlocked():
    node.sise = 10
  with pytest.raises(ValueError, match=rf"config{'.' + section if section else ''}\.sise is not a setting"):
    echo_state_study.check_config(config)
