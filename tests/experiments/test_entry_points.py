"""The command lines of the README, run as a user runs them."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from experiments import report

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(*args, timeout=300):
  env = dict(os.environ, XLA_FLAGS='', JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=timeout)


def test_main_trains_with_overrides(tmp_path):
  done = run('experiments.main', '--config=configs/anbn.py:smoke', f'--workdir={tmp_path}',
             '--config.model.cell=gru', '--config.model.reset_after=True', '--config.train.num_train_steps=7')
  assert done.returncode == 0, done.stderr[-3000:]
  config = json.loads((tmp_path / 'config.json').read_text())
  assert config['model']['cell'] == 'gru' and config['model']['reset_after'] is True
  assert config['train']['num_train_steps'] == 7
  assert (tmp_path / 'checkpoints' / '7').is_dir()
  assert 'learned_training_range' in done.stdout


def test_main_rejects_a_bad_value_naming_the_field(tmp_path):
  done = run('experiments.main', '--config=configs/anbn.py:smoke', f'--workdir={tmp_path / "w"}',
             '--config.model.hidden_size=0')
  assert done.returncode != 0
  assert 'config.model.hidden_size must be a positive integer' in done.stderr
  assert not (tmp_path / 'w').exists()


def test_main_rejects_an_unknown_field(tmp_path):
  done = run('experiments.main', '--config=configs/anbn.py:smoke', f'--workdir={tmp_path}',
             '--config.model.hiden_size=3')
  assert done.returncode != 0 and 'hiden_size' in done.stderr


def test_ablate_smoke_writes_report(tmp_path):
  done = run('experiments.ablate', '--config=configs/ablate_formal.py:smoke', f'--workdir={tmp_path}')
  assert done.returncode == 0, done.stderr[-3000:]
  results = json.loads((tmp_path / 'results.json').read_text())
  assert {(r['cell'], r['language']) for r in results['runs']} == {
      ('elman (relu)', 'anbn'), ('lstm + peepholes', 'anbncn')}
  assert len(results['runs']) == 4  # 2 runs x 2 seeds
  for r in results['runs']:
    assert set(r) >= {'cell', 'language', 'seed', 'learned_training_range', 'max_correct_n', 'accuracy_by_n'}
  assert (tmp_path / 'accuracy_vs_n.png').stat().st_size > 1000
  assert '| anbn | elman (relu) | anbn-elman_relu-h3 |' in (tmp_path / 'report.md').read_text()
  assert '| anbn | elman (relu) | anbn-elman_relu-h3 |' in done.stdout
  again = run('experiments.ablate', '--config=configs/ablate_formal.py:smoke', f'--workdir={tmp_path}')
  assert again.returncode == 0 and again.stderr.count('done before, skipped') == 2


def write_run(directory, cell, language, finals):
  directory.mkdir(parents=True)
  (directory / 'config.json').write_text(json.dumps({
      'model': {'cell': cell, 'use_peepholes': False, 'activation': 'relu'},
      'data': {'language': language, 'test_n': [1, 4]}}))
  lines = [{'step': 5, 'seed': 0, 'train/loss': 1.0}]
  for seed, correct in enumerate(finals):
    lines.append({'step': 10, 'seed': seed, 'final': True, 'learned_training_range': correct[0] == 1.0,
                  'eval/test_range/max_correct_n': next((n for n, c in enumerate(correct) if not c), len(correct)),
                  'eval/test_range/accuracy_by_n': {str(n + 1): c for n, c in enumerate(correct)}})
  (directory / 'metrics.jsonl').write_text(''.join(json.dumps(l) + '\n' for l in lines))


def test_report_median_and_best_worked_example(tmp_path):
  write_run(tmp_path / 'a', 'lstm', 'anbn', [[1, 1, 0, 1], [1, 1, 1, 1], [0, 1, 1, 1]])
  write_run(tmp_path / 'b', 'elman', 'anbn', [[1, 0, 0, 0]])
  rows = {r['cell']: r for r in report.summarise(report.collect_runs(tmp_path))}
  assert rows['lstm']['run'] == 'a'
  assert rows['lstm']['median_max_correct_n'] == 2 and rows['lstm']['best_max_correct_n'] == 4
  assert rows['lstm']['learned'] == 2 and rows['lstm']['seeds'] == 3
  assert rows['elman (relu)']['best_max_correct_n'] == 1
  table = report.write_report(tmp_path)
  assert '| anbn | lstm | a | 2/3 | 2 | 4 | 4 |' in table


def test_report_without_runs_says_so(tmp_path):
  with pytest.raises(FileNotFoundError, match='no finished runs'):
    report.write_report(tmp_path)
