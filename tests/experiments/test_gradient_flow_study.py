"""The gradient-flow study's command line on its smoke config, run as a user runs it."""

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CELLS = ('elman_tanh', 'lstm')              # the smoke config's cells
STATES = ('init', 'trained', 'trained_clipped')


def run(*args, timeout=300):
  env = dict(os.environ, XLA_FLAGS=os.environ['SEQNETS_TEST_XLA_FLAGS'], JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', 'experiments.gradient_flow', *args], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=timeout)


def finite_or_nan(x):
  return isinstance(x, float) and (math.isfinite(x) or math.isnan(x))


def test_smoke_study_writes_plots_summary_and_numbers(tmp_path):
  done = run('--config=configs/gradient_flow.py:smoke', f'--workdir={tmp_path}')
  assert done.returncode == 0, done.stderr[-3000:]
  for name in ('gradient_norms.png', 'clipping.png'):
    assert (tmp_path / name).stat().st_size > 1000
  summary = (tmp_path / 'summary.md').read_text()
  assert summary in done.stdout
  results = json.loads((tmp_path / 'gradient_flow.json').read_text())
  probe_length = results['config']['probe']['length']
  steps = results['config']['train']['num_steps']
  assert set(results['cells']) == set(CELLS)
  for cell, records in results['cells'].items():
    assert f'| {cell} | trained, clipped |' in summary
    for state in STATES:
      r = records[state]
      assert len(r['gradient_norms']) == probe_length
      values = [*r['gradient_norms'], *r['ratios'].values(), r['recurrent_spectral_norm'],
                r['mean_step_jacobian_norm'], r['eval_loss'], r['eval_accuracy']]
      assert all(finite_or_nan(v) for v in values), (cell, state)
      assert set(r['ratios']) == {'5', '20'}
    for state in STATES[1:]:
      assert len(records[state]['train_loss']) == steps
  # Orthogonal U at init: σ_max(U) = 1 for the Elman cell.
  assert math.isclose(results['cells']['elman_tanh']['init']['recurrent_spectral_norm'], 1,
                      rel_tol=1e-4)
  # At init, tanh's saturation shrinks ∂L/∂h_t faster than the LSTM's cell path with forget
  # gates near σ(3) ≈ 0.95.
  tanh_ratio = results['cells']['elman_tanh']['init']['ratios']['20']
  lstm_ratio = results['cells']['lstm']['init']['ratios']['20']
  assert tanh_ratio < lstm_ratio / 3
  # The smoke setting's exploding network turns non-finite within a few steps without clipping;
  # it is recorded as NaN from there on and the study finishes.
  exploding = results['exploding']
  for name in ('unclipped', 'clipped'):
    assert len(exploding[name]['train_loss']) == results['config']['exploding']['num_steps']
    assert all(finite_or_nan(v) for v in exploding[name]['train_loss'])
  unclipped, clipped = exploding['unclipped'], exploding['clipped']
  step = unclipped['diverged_at_step']
  assert isinstance(step, int) and step <= 5
  assert all(math.isnan(v) for v in unclipped['train_loss'][step - 1:])
  assert math.isnan(unclipped['final_train_loss']) and math.isnan(unclipped['eval_accuracy'])
  assert clipped['diverged_at_step'] is None and math.isfinite(clipped['final_train_loss'])
  assert '| unclipped | nan | nan | nan |' in summary


def test_unknown_mode_names_the_valid_ones():
  from configs import gradient_flow
  with pytest.raises(ValueError, match='valid: smoke'):
    gradient_flow.get_config('huge')
