"""The command lines of the README, run as a user runs them."""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(*args, timeout=300):
  env = dict(os.environ, XLA_FLAGS=os.environ['SEQNETS_TEST_XLA_FLAGS'], JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=timeout)


def test_main_trains_with_overrides(tmp_path):
  # A command-line override sets only keys the config file has: anbn.py's smoke config with
  # a GRU cell entry that has `reset_after` (anbn.py's own entry has name and hidden_size).
  config_file = tmp_path / 'anbn_gru.py'
  config_file.write_text(
      'from configs import anbn\n\n'
      'def get_config(arg=None):\n'
      '  config = anbn.get_config(arg)\n'
      "  config.model.cell = dict(name='gru', hidden_size=4, reset_after=False)\n"
      '  return config\n')
  workdir = tmp_path / 'run'
  done = run('experiments.main', f'--config={config_file}:smoke', f'--workdir={workdir}',
             '--config.model.cell.reset_after=True', '--config.model.cell.hidden_size=5',
             '--config.train.num_train_steps=7')
  assert done.returncode == 0, done.stderr[-3000:]
  config = json.loads((workdir / 'config.json').read_text())
  assert config['model']['cell'] == {'name': 'gru', 'hidden_size': 5, 'reset_after': True}
  assert config['train']['num_train_steps'] == 7
  assert (workdir / 'checkpoints' / '7').is_dir()
  assert 'learned_training_range' in done.stdout


def test_main_rejects_a_bad_value_naming_the_field(tmp_path):
  done = run('experiments.main', '--config=configs/anbn.py:smoke', f'--workdir={tmp_path / "w"}',
             '--config.model.cell.hidden_size=0')
  assert done.returncode != 0
  assert 'config.model.cell.hidden_size must be a positive integer' in done.stderr
  assert not (tmp_path / 'w').exists()


def test_main_rejects_an_unknown_field(tmp_path):
  done = run('experiments.main', '--config=configs/anbn.py:smoke', f'--workdir={tmp_path}',
             '--config.model.cell.hiden_size=3')
  assert done.returncode != 0 and 'hiden_size' in done.stderr


def test_echo_state_writes_results_and_plot_and_prints_the_summary(tmp_path):
  done = run('experiments.echo_state', '--config=configs/echo_state.py:smoke',
             f'--workdir={tmp_path}')
  assert done.returncode == 0, done.stderr[-3000:]
  assert '| ridge |' in done.stdout and 'ridge: test NRMSE' in done.stderr
  assert (tmp_path / 'prediction.png').stat().st_size > 1000
  assert json.loads((tmp_path / 'results.json').read_text())['seconds']['total'] > 0
  bad = run('experiments.echo_state', '--config=configs/echo_state.py:smoke',
            f'--workdir={tmp_path / "bad"}', '--config.ridge.l2=-1')
  assert bad.returncode == 2 and 'config.ridge.l2 must be >= 0' in bad.stderr


def test_report_prints_the_table_and_writes_the_report(tmp_path):
  for name, lr, accuracy in (('lr1e-3', 1e-3, 0.9), ('lr1e-2', 1e-2, 0.5)):
    (tmp_path / name).mkdir()
    (tmp_path / name / 'config.json').write_text(json.dumps({
        'task': 'image_classification', 'seed': 0, 'optim': {'learning_rate': lr},
        'evals': {'test': {'type': 'classification', 'split': 'test'}}}))
    (tmp_path / name / 'metrics.jsonl').write_text(
        json.dumps({'step': 3, 'seed': 0, 'final': True, 'eval/test/accuracy': accuracy}) + '\n')
  done = run('experiments.report', f'--workdir={tmp_path}')
  assert done.returncode == 0, done.stderr[-3000:]
  assert '| lr1e-3 | 0.001 | 1 | 0 | 0.9 / 0.9 / 0.9 |' in done.stdout
  assert (tmp_path / 'report.md').exists() and (tmp_path / 'results.json').exists()
