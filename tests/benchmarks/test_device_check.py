"""The device check (`make device-check`): its quick mode end to end on the CPU, and a
failing check that is reported, not hidden. No timing asserts."""

import json
import os
import pathlib
import subprocess
import sys

from benchmarks import device_check

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_quick_check_passes_on_the_cpu_and_writes_json_and_markdown(tmp_path):
  env = dict(os.environ, SEQNETS_DATA_DIR=str(tmp_path / 'no_data'))
  subprocess.run([sys.executable, '-m', 'benchmarks.device_check', '--quick',
                  f'--out={tmp_path}'], cwd=ROOT, check=True, capture_output=True, timeout=300,
                 env=env)
  results = json.loads((tmp_path / 'device_check.json').read_text())
  assert results['ok'] and results['quick']
  assert set(device_check.SECTIONS) <= set(results)
  assert results['environment']['backend'] == 'cpu'
  assert results['gradients']['cells']['lstm']['max_relative_error'] <= 1e-4
  assert results['cudnn']['route'] == 'lstm_ref (no GPU)'
  losses = results['smoke']['configs']['anbn']['losses']
  assert len(losses) >= 2 and losses[-1] < losses[0]
  assert all(row['train_ms'] > 0 and row['infer_ms'] > 0 for row in results['speed']['rows'])
  assert results['throughput']['rows'][0]['tokens_per_s'] > 0
  report = (tmp_path / 'device_check.md').read_text()
  assert '| gradients | ok' in report and "seqnets LSTM 'fused'" in report


def test_a_failing_section_is_reported_and_the_others_still_run(monkeypatch):
  def broken(quick):
    raise RuntimeError('the fused kernel disagrees')
  monkeypatch.setattr(device_check, 'gradients', broken)
  results = device_check.run(['environment', 'gradients'], quick=True, reps=1)
  assert not results['ok'] and results['environment']['ok']
  assert results['gradients']['error'] == 'RuntimeError: the fused kernel disagrees'
  assert '| gradients | FAILED RuntimeError: the fused kernel disagrees |' in device_check.render(
      results)
