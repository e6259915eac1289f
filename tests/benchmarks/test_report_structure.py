"""The layout of `rnn_bench.json`, which scripts read, stays as it is.

A synthetic run (fake workers: one disturbed and repeated, one failed) goes
through the real runner and report; every path of the JSON it writes, with the
types found there, must equal `rnn_bench_structure.json`, captured from the
benchmark before it was split into modules.
"""

import json
import pathlib

from benchmarks import contenders
from benchmarks import report
from benchmarks import runner
from benchmarks import worker

EXPECTED = json.loads(pathlib.Path(__file__).with_name('rnn_bench_structure.json').read_text())

CONTENDER_FRAMEWORKS = {
    'sn_lstm': 'seqnets', 'sn_lstm_peep': 'seqnets', 'sn_gru': 'seqnets', 'sn_gru_ra': 'seqnets',
    'sn_elman': 'seqnets', 'snx_lstm': 'seqnets', 'flax_lstm': 'flax', 'flax_optlstm': 'flax',
    'flax_gru': 'flax', 'flax_simple': 'flax', 'nnx_optlstm': 'flax', 'torch_lstm': 'torch',
    'torch_gru': 'torch', 'torch_rnn': 'torch',
}
SHAPES = {'a': (4, 12, 8, 16), 'b': (2, 6, 4, 8)}
ALLOCATOR_NAMES = ('default', 'tuned')
TUNED = {'MALLOC_MMAP_THRESHOLD_': '33554432', 'MALLOC_TRIM_THRESHOLD_': '4294967296'}


def fake_spawn_worker():
  """A `spawn_worker` stand-in: one disturbed attempt, one failed worker, slow rounds."""
  calls = {}

  def spawn(name, shape, allocator, reps, warmup, timeout):
    key = (name, tuple(shape), allocator)
    calls[key] = calls.get(key, 0) + 1
    call = calls[key]
    if name == 'torch_rnn' and shape == SHAPES['b'] and allocator == 'default' and call == 2:
      return {'error': 'exit 1: synthetic failure'}
    base = 1.0 + sorted(CONTENDER_FRAMEWORKS).index(name) + 0.5 * shape[0]
    base *= 1.2 if allocator == 'default' else 1.0
    base *= 2.0 if name == 'sn_lstm' and call == 2 else 1.0
    disturbed = name == 'sn_gru' and shape == SHAPES['a'] and allocator == 'tuned' and call == 1
    probe = [10.0, 100.0] if disturbed else [100.0, 90.0 + call]
    modes = {}
    for mode, scale in (('train', 3.0), ('infer', 1.0)):
      stats = {'first_exec_s': 0.01 * scale, 'times_ms': [base * scale * (1 + 0.1 * i)
                                                          for i in range(reps)]}
      if CONTENDER_FRAMEWORKS[name] != 'torch':
        stats = {'trace_lower_s': 0.2 * scale, 'compile_s': 0.3 * scale, **stats}
      modes[mode] = stats
    versions = ({'torch': '2.13.0'} if CONTENDER_FRAMEWORKS[name] == 'torch'
                else {'jax': '0.10.2', 'flax': '0.12.8'})
    return {**modes, 'versions': versions, 'speed_probe_gflops': probe, 'contender': name,
            'shape': list(shape), 'peak_rss_mb': 300.0 + base,
            'malloc_env': {k: (v if allocator == 'tuned' else None) for k, v in TUNED.items()},
            'load_avg_1min': [0.5, 0.75]}

  return spawn


def _generic(key: str) -> str:
  if key in CONTENDER_FRAMEWORKS:
    return f'<{CONTENDER_FRAMEWORKS[key]}>'
  if key in SHAPES:
    return '<shape>'
  return '<allocator>' if key in ALLOCATOR_NAMES else key


def structure(report: dict) -> dict[str, list[str]]:
  """Every path of a JSON value with the types found there; contender, shape and
  allocator keys become <framework>, <shape> and <allocator>."""
  found: dict[str, set[str]] = {}

  def walk(value, path):
    found.setdefault(path, set()).add('null' if value is None else type(value).__name__)
    if isinstance(value, dict):
      for key, child in value.items():
        walk(child, f'{path}.{_generic(key)}')
    elif isinstance(value, list):
      for child in value:
        walk(child, f'{path}[]')

  walk(report, '')
  return {path: sorted(types) for path, types in sorted(found.items())}


def _synthetic_report(monkeypatch) -> dict:
  monkeypatch.setattr(worker, 'spawn_worker', fake_spawn_worker())
  monkeypatch.delenv('OMP_WAIT_POLICY', raising=False)
  return runner.run_benchmark(dict(SHAPES), list(CONTENDER_FRAMEWORKS), list(ALLOCATOR_NAMES),
                              reps=3, warmup=1, rounds=2, timeout=10, retries=1)


def test_contender_names_and_frameworks_are_unchanged():
  assert {n: c.framework for n, c in contenders.CONTENDERS.items()} == CONTENDER_FRAMEWORKS
  assert list(contenders.CONTENDERS) == list(CONTENDER_FRAMEWORKS)


def test_written_json_has_the_same_structure(tmp_path, monkeypatch):
  report.write(_synthetic_report(monkeypatch), tmp_path)
  written = json.loads((tmp_path / 'rnn_bench.json').read_text())
  assert structure(written) == EXPECTED
  assert list(written) == ['meta', 'summary', 'targets', 'runs']
  assert list(written['summary']) == list(SHAPES)
  assert list(written['summary']['a']) == list(ALLOCATOR_NAMES)
  assert list(written['summary']['a']['tuned']) == list(CONTENDER_FRAMEWORKS)
  assert '## Targets' in (tmp_path / 'rnn_bench.md').read_text()


def test_from_json_rerenders_with_the_same_structure(tmp_path, monkeypatch):
  first = _synthetic_report(monkeypatch)
  report.write(first, tmp_path / 'first')
  rerendered = report.from_json(tmp_path / 'first' / 'rnn_bench.json')
  report.write(rerendered, tmp_path / 'again')
  written = json.loads((tmp_path / 'again' / 'rnn_bench.json').read_text())
  assert structure(written) == EXPECTED
  assert written['summary'] == json.loads(json.dumps(first['summary']))
  assert ((tmp_path / 'again' / 'rnn_bench.md').read_text()
          == (tmp_path / 'first' / 'rnn_bench.md').read_text())
