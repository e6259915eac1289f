"""The Mackey-Glass series, and the echo-state experiment run in-process on its smoke config."""

import json

import numpy as np
import pytest

from configs import echo_state as echo_state_config
from experiments import echo_state
from seqnets.data.mackey_glass import mackey_glass


def test_mackey_glass_first_delay_is_the_exact_linear_solution():
  """On [0, τ] the delayed term sees the constant history x0, so dx/dt = c − γx with
  c = β x0 / (1 + x0ⁿ): x(t) = c/γ + (x0 − c/γ) e^{−γt}."""
  x = mackey_glass(18)
  c = 0.2 * 1.2 / (1 + 1.2 ** 10)
  t = np.arange(18.0)
  np.testing.assert_allclose(x, c / 0.1 + (1.2 - c / 0.1) * np.exp(-0.1 * t), rtol=0, atol=1e-9)
  np.testing.assert_array_equal(mackey_glass(18), x)


def test_mackey_glass_converges_at_second_order_in_dt():
  reference = mackey_glass(100, dt=0.0125, subsample=80)
  errors = [np.abs(mackey_glass(100, dt=dt, subsample=round(1 / dt)) - reference).max()
            for dt in (0.1, 0.05)]
  assert 1e-7 < errors[1] < errors[0] < 1e-3
  assert 3 < errors[0] / errors[1] < 5.5


def test_mackey_glass_is_chaotic_in_the_known_range():
  x = mackey_glass(3000, transient=500)
  assert 0.2 < x.min() < 0.5 and 1.2 < x.max() < 1.4
  # Not periodic: no shift up to 1000 samples repeats the series within 0.01.
  mismatch = [np.abs(x[:1000] - x[p:p + 1000]).max() for p in range(1, 1001)]
  assert min(mismatch) > 0.01
  # Sampling and transient select samples of the same trajectory.
  np.testing.assert_array_equal(mackey_glass(50, transient=7), mackey_glass(57)[7:])
  np.testing.assert_allclose(mackey_glass(30, subsample=20), mackey_glass(59, subsample=10)[::2],
                             rtol=0, atol=1e-12)
  seeded = mackey_glass(600, seed=1)
  np.testing.assert_array_equal(seeded, mackey_glass(600, seed=1))
  assert np.abs(seeded - mackey_glass(600, seed=2)).max() > 0.01
  with pytest.raises(ValueError, match='multiple of dt'):
    mackey_glass(10, tau=17.05)


def test_smoke_experiment_writes_results_and_plot(tmp_path, capsys):
  config = echo_state_config.get_config('smoke')
  results = echo_state.run_and_write(config, tmp_path)
  assert '| ridge |' in capsys.readouterr().out
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
