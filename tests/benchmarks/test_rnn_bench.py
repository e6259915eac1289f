"""Smoke test of `make bench`'s script: one tiny worker in-process, one tiny run end to end.

No timing asserts: only that the numbers and files the report needs exist.
"""

import json
import pathlib
import subprocess
import sys

from benchmarks import worker

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = (2, 5, 3, 4)


def test_worker_reports_compile_and_timings_in_process():
  result = worker.run_worker('sn_elman', TINY, reps=2, warmup=1)
  assert set(result) == {'train', 'infer', 'versions', 'speed_probe_gflops', 'contender', 'shape',
                         'peak_rss_mb', 'malloc_env', 'load_avg_1min'}
  for mode in ('train', 'infer'):
    assert set(result[mode]) == {'trace_lower_s', 'compile_s', 'first_exec_s', 'times_ms'}
    assert len(result[mode]['times_ms']) == 2
  assert result['contender'] == 'sn_elman' and result['shape'] == list(TINY)
  assert result['peak_rss_mb'] > 0


def test_nnx_workers_train_and_infer_in_process():
  """The NNX contenders go through nnx.split / nnx.merge (nnx.RNN's rng stream included)."""
  for name in ('snx_lstm', 'nnx_optlstm'):
    result = worker.run_worker(name, TINY, reps=1, warmup=0)
    assert len(result['train']['times_ms']) == len(result['infer']['times_ms']) == 1


def test_quick_run_writes_markdown_and_json(tmp_path):
  cmd = [sys.executable, '-m', 'benchmarks.rnn_bench', f'--out={tmp_path}', '--quick',
         '--contenders=sn_elman,flax_simple', '--allocators=tuned', '--rounds=1']
  subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=120)
  report = json.loads((tmp_path / 'rnn_bench.json').read_text())
  assert set(report) == {'meta', 'summary', 'targets', 'runs'}
  entry = report['summary']['quick']['tuned']['sn_elman']
  for mode in ('train', 'infer'):
    assert set(entry[mode]) == {'median_ms', 'p10_ms', 'p90_ms', 'num_reps', 'round_medians_ms',
                                'tokens_per_s', 'first_exec_s', 'trace_lower_s', 'compile_s',
                                'total_compile_s', 'vs_flax', 'vs_torch'}
  assert entry['train']['vs_flax'] > 0
  assert {c['target'] for c in report['targets']} >= {'vs_fastest_flax', 'train_compile_s'}
  markdown = (tmp_path / 'rnn_bench.md').read_text()
  assert '## Targets' in markdown and 'sn.ElmanCell' in markdown
  assert 'compile train s (trace+lower / XLA)' in markdown
