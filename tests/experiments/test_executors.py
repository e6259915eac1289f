"""Ablation variants as submitit jobs: the local executor end to end, from the command line."""

import json
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_local_executor_runs_every_variant_as_a_job_and_reports(tmp_path):
  env = dict(os.environ, XLA_FLAGS=os.environ['SEQNETS_TEST_XLA_FLAGS'], JAX_PLATFORMS='cpu')
  done = subprocess.run([sys.executable, '-m', 'experiments.ablate', '--config=configs/ablate_formal.py:smoke',
                         f'--workdir={tmp_path}', '--executor=local'], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  assert done.stderr.count('local jobs') == 2          # max_parallel_jobs=1: one job at a time
  assert sorted(p.name for p in (tmp_path / 'jobs').glob('*_log.out'))  # each job's own log
  for variant in ('anbn-elman_relu-h3', 'anbncn-lstm_peephole-h3'):
    assert json.loads((tmp_path / variant / 'results.json').read_text())['step'] == 6
  # The report, as the inline executor writes it.
  results = json.loads((tmp_path / 'results.json').read_text())
  # A variant replaces the whole `model.cell` entry: a key of one cell is absent (null) in the other.
  assert results['varied'] == ['data.language', 'model.cell.activation', 'model.cell.forget_bias',
                               'model.cell.name', 'model.cell.use_peepholes']
  assert {(r['model.cell.name'], r['data.language']) for r in results['runs']} == {
      ('elman', 'anbn'), ('lstm', 'anbncn')}
  assert len(results['runs']) == 4  # 2 runs x 2 seeds
  for r in results['runs']:
    assert set(r) >= {'run', 'seed', 'learned_training_range', 'eval/test_range/max_correct_n',
                      'eval/test_range/accuracy_by_n'}
  for name in ('accuracy_vs_n.png', 'accuracy_by_n.png', 'metrics.png', 'train_loss.png'):
    assert (tmp_path / name).stat().st_size > 1000
  row = '| anbn-elman_relu-h3 | anbn | relu | null | elman | null | 2 | 0 |'
  assert row in (tmp_path / 'report.md').read_text() and row in done.stdout
