"""`python -m benchmarks.xla_flags`: every setting runs in its own worker with its flags,
failures are listed, ratios are against the default of the same round; no timing asserts."""

import json
import pathlib
import subprocess
import sys

import pytest

from benchmarks import xla_flags

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_quick_run_measures_each_setting_in_its_own_worker(tmp_path):
  subprocess.run([sys.executable, '-m', 'benchmarks.xla_flags', '--quick', f'--out={tmp_path}',
                  '--allocators=tuned', '--contenders=sn_lstm'],
                 cwd=ROOT, check=True, capture_output=True, timeout=300)
  results = json.loads((tmp_path / 'xla_flags.json').read_text())
  assert [r['setting'] for r in results['runs']] == ['default', 'vector_width_512']
  assert [r['setting'] for r in results['rows']] == ['default', 'vector_width_512']
  assert results['rows'][0]['train_vs_default'] == 1.0
  assert results['meta']['settings']['vector_width_512'] == '--xla_cpu_prefer_vector_width=512'
  assert '| quick | tuned | sn_lstm | vector_width_512 |' in (tmp_path / 'xla_flags.md').read_text()


def result(train, infer):
  return {'train': {'times_ms': train}, 'infer': {'times_ms': infer}}


def test_ratios_pair_each_round_with_its_default_and_failures_are_listed():
  runs = [
      {'round': 0, 'shape': 'c', 'allocator': 'tuned', 'contender': 'sn_lstm', 'setting': 'default',
       'result': result([10, 12, 11], [4, 4, 4])},
      {'round': 0, 'shape': 'c', 'allocator': 'tuned', 'contender': 'sn_lstm',
       'setting': 'onednn_dot', 'result': result([22, 22, 22], [2, 2, 2])},
      {'round': 1, 'shape': 'c', 'allocator': 'tuned', 'contender': 'sn_lstm', 'setting': 'default',
       'result': result([20, 20, 20], [4, 4, 4])},
      {'round': 1, 'shape': 'c', 'allocator': 'tuned', 'contender': 'sn_lstm',
       'setting': 'onednn_dot', 'result': result([20, 20, 20], [4, 4, 4])},
      {'round': 0, 'shape': 'c', 'allocator': 'tuned', 'contender': 'sn_lstm',
       'setting': 'ynn_dot_eltwise', 'result': {'error': 'exit 1: ...\nunsupported layout in YNN'}},
  ]
  rows = {r['setting']: r for r in xla_flags.summarise(runs)}
  # Round 0: 11 / 22 = 0.5, round 1: 20 / 20 = 1; the median of the two.
  assert rows['onednn_dot']['train_vs_default'] == pytest.approx(0.75)
  assert rows['onednn_dot']['infer_vs_default'] == pytest.approx(1.5)
  assert rows['ynn_dot_eltwise']['error'] == 'unsupported layout in YNN'
  assert 'failed: unsupported layout in YNN' in xla_flags.markdown(
      list(rows.values()), {'date': 'now', 'command': 'x', 'wall_s': 1.0})


def test_each_setting_starts_from_the_flags_the_process_began_with():
  """Settings never pile up: the default after oneDNN runs without oneDNN's flags."""
  assert xla_flags.with_flags('--xla_foo=1', 'default') == '--xla_foo=1'
  assert xla_flags.with_flags(None, 'vector_width_512') == '--xla_cpu_prefer_vector_width=512'
  assert xla_flags.with_flags('--xla_foo=1', 'onednn_dot') == (
      '--xla_foo=1 ' + xla_flags.SETTINGS['onednn_dot'])


def test_a_crashed_worker_is_named_by_its_fatal_error():
  crash = ('exit -4: partition compile failedFatal Python error: Illegal instruction\n\n'
           'Thread 0x1 (most recent call first):\n  File "x.py", line 1\n\n'
           'Extension modules: jaxlib.cpu_feature_guard, numpy')
  assert xla_flags.cause(crash).endswith('Fatal Python error: Illegal instruction')
  assert xla_flags.cause('exit 1: a\nValueError: bad\nmore') == 'ValueError: bad'
