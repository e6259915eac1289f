r"""Recurrent-layer benchmark: seqnets cells vs flax.linen.RNN cells vs PyTorch.

One `make bench` invocation times a full training step (forward, backward, SGD
update; loss = mean(outputs²)) and inference (forward only) of every contender
on three shapes, under default glibc malloc and under a tuned malloc, and
writes `<out>/rnn_bench.md` (tables, ratios, targets) and `<out>/rnn_bench.json`
(every raw number).

Usage:
  python -m benchmarks.rnn_bench --out=bench_results
  python -m benchmarks.rnn_bench --out=/tmp/b --shapes=b \
      --contenders=sn_lstm,flax_lstm,flax_optlstm --allocators=tuned --reps=10
  python -m benchmarks.rnn_bench --out=/tmp/b --from_json=bench_results/rnn_bench.json  # re-render
  python -m benchmarks.rnn_bench --out=/tmp/b --quick          # tiny shapes, 3 reps: smoke test

Method (see benchmarks/README.md):
  * Every (contender, shape, allocator, round) runs in its own fresh subprocess,
    the worker mode of this script (`--worker=<name>`), so thread pools, malloc
    state and compile caches never leak between contenders. The allocator
    setting is the worker's environment.
  * JAX: AOT `jax.jit(f).lower(...).compile()`, timing trace+lower and compile
    separately; 1 first exec (timed, reported), `--warmup` untimed reps, then
    `--reps` timed reps, each ended by `jax.block_until_ready`.
    PyTorch: `torch.set_num_threads(2)`, the same reps.
  * Rounds interleave to spread the VM's drift over all contenders: round r
    runs the contenders (and the allocators) in forward order when r is even
    and in reverse order when r is odd. The reported median, p10 and p90 pool
    the timed reps of all rounds.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import pathlib
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

from absl import app
from absl import flags

# Shapes (B, T, E, H): batch, time, input features, hidden size.
SHAPES = {
    'a': (32, 128, 128, 256),
    'b': (64, 256, 256, 512),
    'c': (128, 64, 64, 128),
}
QUICK_SHAPES = {'quick': (4, 12, 8, 16)}

# Allocator settings, applied to the worker's environment. `None` unsets.
TUNED_MALLOC = {'MALLOC_MMAP_THRESHOLD_': '33554432', 'MALLOC_TRIM_THRESHOLD_': '4294967296'}
ALLOCATORS = {
    'default': {name: None for name in TUNED_MALLOC},
    'tuned': dict(TUNED_MALLOC),
}

LEARNING_RATE = 1e-3


@dataclasses.dataclass(frozen=True)
class Contender:
  name: str
  framework: str      # 'seqnets' | 'flax' | 'torch'
  kind: str           # 'lstm' | 'gru' | 'elman': which cells are compared with each other
  label: str          # how the table names it
  in_targets: bool = True   # a seqnets cell the targets apply to


def _contenders() -> dict[str, Contender]:
  entries = [
      Contender('sn_lstm', 'seqnets', 'lstm', 'sn.LSTMCell'),
      Contender('sn_lstm_peep', 'seqnets', 'lstm', 'sn.LSTMCell(use_peepholes=True)'),
      Contender('sn_gru', 'seqnets', 'gru', 'sn.GRUCell(reset_after=False)', in_targets=False),
      Contender('sn_gru_ra', 'seqnets', 'gru', 'sn.GRUCell(reset_after=True)'),
      Contender('sn_elman', 'seqnets', 'elman', 'sn.ElmanCell'),
      Contender('flax_lstm', 'flax', 'lstm', 'nn.LSTMCell'),
      Contender('flax_optlstm', 'flax', 'lstm', 'nn.OptimizedLSTMCell'),
      Contender('flax_gru', 'flax', 'gru', 'nn.GRUCell'),
      Contender('flax_simple', 'flax', 'elman', 'nn.SimpleCell'),
      Contender('torch_lstm', 'torch', 'lstm', 'torch.nn.LSTM'),
      Contender('torch_gru', 'torch', 'gru', 'torch.nn.GRU'),
      Contender('torch_rnn', 'torch', 'elman', 'torch.nn.RNN(tanh)'),
  ]
  return {c.name: c for c in entries}


CONTENDERS = _contenders()
# The flax reference of each kind is the fastest of these (per shape, allocator, mode).
FLAX_REFERENCES = {'lstm': ('flax_lstm', 'flax_optlstm'), 'gru': ('flax_gru',),
                   'elman': ('flax_simple',)}
TORCH_REFERENCES = {'lstm': 'torch_lstm', 'gru': 'torch_gru', 'elman': 'torch_rnn'}
COMPILE_BUDGET_S = 2.0
TORCH_TARGET_SHAPE = 'b'

FLAGS = flags.FLAGS
flags.DEFINE_string('out', 'bench_results', 'Directory for rnn_bench.md and rnn_bench.json.')
flags.DEFINE_list('shapes', list(SHAPES), f'Shapes to run, from {sorted(SHAPES)}.')
flags.DEFINE_integer('reps', 10, 'Timed repetitions per worker (per round).')
flags.DEFINE_integer('warmup', 2, 'Untimed repetitions after the first execution.')
flags.DEFINE_integer('rounds', 2, 'Interleaved rounds; timed reps of all rounds are pooled.')
flags.DEFINE_bool('quick', False, 'Tiny shapes and 3 reps (development and smoke test).')
flags.DEFINE_list('contenders', list(CONTENDERS), f'Contenders, from {list(CONTENDERS)}.')
flags.DEFINE_list('allocators', list(ALLOCATORS), f'Allocator settings, from {list(ALLOCATORS)}.')
flags.DEFINE_integer('timeout', 900, 'Seconds before a worker is killed and recorded as failed.')
flags.DEFINE_integer('retries', 1,
                     'Repeats of a worker whose speed probe says the cores were busy.')
flags.DEFINE_string('from_json', None, 'Re-summarise and re-render an earlier rnn_bench.json '
                    'into --out without measuring.')
# Worker mode (internal): one contender, one shape, JSON to --worker_out.
flags.DEFINE_string('worker', None, 'Internal: run one contender in this process.')
flags.DEFINE_string('worker_shape', None, 'Internal: B,T,E,H for --worker.')
flags.DEFINE_string('worker_out', None, 'Internal: JSON result path for --worker.')


# --------------------------------------------------------------------------- #
# Worker: one contender, one shape, in this process.
# --------------------------------------------------------------------------- #

def _peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


# A worker stops timing a mode after this many seconds (but not before MIN_REPS reps) and
# skips the rest of the warm-up after half of it, so that a stalled contender cannot
# stretch the run (PyTorch's OpenMP spin-waits stall for
# seconds per step when another process shares the cores; see benchmarks/README.md).
MAX_TIMED_S = 30.0
MIN_REPS = 3


def _time_reps(fn: Callable[[], Any], reps: int, warmup: int) -> tuple[float, list[float]]:
  """Returns (first call seconds, timed reps in ms); `fn` must block until done."""
  start = time.perf_counter()
  fn()
  first = time.perf_counter() - start
  for _ in range(warmup):
    if time.perf_counter() - start > MAX_TIMED_S / 2:
      break
    fn()
  times = []
  budget_start = time.perf_counter()
  for _ in range(reps):
    start = time.perf_counter()
    fn()
    times.append((time.perf_counter() - start) * 1e3)
    if len(times) >= MIN_REPS and time.perf_counter() - budget_start > MAX_TIMED_S:
      break
  return first, times


def _inputs(shape: tuple[int, int, int, int]):
  import numpy as np
  batch, time_steps, features, _ = shape
  return np.random.default_rng(0).uniform(-1, 1, (batch, time_steps, features)).astype(np.float32)


def build_flax_module(name: str, hidden: int):
  """The `[B, T, E] -> [B, T, H]` flax module of a seqnets or flax contender."""
  from flax import linen as nn
  import seqnets as sn
  builders = {
      'sn_lstm': lambda: sn.RNN(sn.LSTMCell(hidden)),
      'sn_lstm_peep': lambda: sn.RNN(sn.LSTMCell(hidden, use_peepholes=True)),
      'sn_gru': lambda: sn.RNN(sn.GRUCell(hidden, reset_after=False)),
      'sn_gru_ra': lambda: sn.RNN(sn.GRUCell(hidden, reset_after=True)),
      'sn_elman': lambda: sn.RNN(sn.ElmanCell(hidden)),
      'flax_lstm': lambda: nn.RNN(nn.LSTMCell(hidden)),
      'flax_optlstm': lambda: nn.RNN(nn.OptimizedLSTMCell(hidden)),
      'flax_gru': lambda: nn.RNN(nn.GRUCell(hidden)),
      'flax_simple': lambda: nn.RNN(nn.SimpleCell(hidden)),
  }
  return builders[name]()


def measure_jax(module, shape: tuple[int, int, int, int], reps: int, warmup: int) -> dict:
  """Times one train step and one inference call of a flax `module` (AOT-compiled)."""
  import jax
  import jax.numpy as jnp
  import optax

  x = jnp.asarray(_inputs(shape))
  params = jax.jit(module.init)(jax.random.key(0), x)
  tx = optax.sgd(LEARNING_RATE)
  opt_state = tx.init(params)

  def loss_fn(p, inputs):
    return jnp.mean(module.apply(p, inputs) ** 2)

  def train_step(p, state, inputs):
    loss, grads = jax.value_and_grad(loss_fn)(p, inputs)
    updates, state = tx.update(grads, state, p)
    return optax.apply_updates(p, updates), state, loss

  result = {}
  start = time.perf_counter()
  lowered = jax.jit(train_step, donate_argnums=(0, 1)).lower(params, opt_state, x)
  lowered_at = time.perf_counter()
  compiled = lowered.compile()
  compiled_at = time.perf_counter()
  state = {'params': params, 'opt_state': opt_state}

  def run_train():
    state['params'], state['opt_state'], loss = compiled(state['params'], state['opt_state'], x)
    jax.block_until_ready((state['params'], loss))

  first, times = _time_reps(run_train, reps, warmup)
  result['train'] = {'trace_lower_s': lowered_at - start, 'compile_s': compiled_at - lowered_at,
                     'first_exec_s': first, 'times_ms': times}

  params = state['params']
  start = time.perf_counter()
  lowered = jax.jit(module.apply).lower(params, x)
  lowered_at = time.perf_counter()
  infer = lowered.compile()
  compiled_at = time.perf_counter()
  first, times = _time_reps(lambda: infer(params, x).block_until_ready(), reps, warmup)
  result['infer'] = {'trace_lower_s': lowered_at - start, 'compile_s': compiled_at - lowered_at,
                     'first_exec_s': first, 'times_ms': times}
  return result


def _speed_probe(framework: str) -> float:
  """GFLOP/s of a 1024³ matmul in this process (median of 5 after 1 warm-up).

  Run before and after the measurement: a low value means other processes
  were using the cores, and the orchestrator repeats the worker (`--retries`).
  """
  n = 1024
  if framework == 'torch':
    import torch
    a = torch.ones((n, n))
    dot = lambda: torch.mm(a, a)
  else:
    import jax
    import jax.numpy as jnp
    a = jnp.ones((n, n), jnp.float32)
    jitted = jax.jit(jnp.dot)
    dot = lambda: jitted(a, a).block_until_ready()
  dot()
  times = []
  for _ in range(5):
    start = time.perf_counter()
    dot()
    times.append(time.perf_counter() - start)
  return 2 * n ** 3 / sorted(times)[2] / 1e9


def measure_torch(name: str, shape: tuple[int, int, int, int], reps: int, warmup: int) -> dict:
  """Times one train step and one inference call of a PyTorch recurrent layer."""
  import torch
  torch.set_num_threads(2)
  torch.manual_seed(0)
  _, _, features, hidden = shape
  layers = {
      'torch_lstm': lambda: torch.nn.LSTM(features, hidden, batch_first=True),
      'torch_gru': lambda: torch.nn.GRU(features, hidden, batch_first=True),
      'torch_rnn': lambda: torch.nn.RNN(features, hidden, nonlinearity='tanh', batch_first=True),
  }
  layer = layers[name]()
  x = torch.from_numpy(_inputs(shape))
  optimizer = torch.optim.SGD(layer.parameters(), lr=LEARNING_RATE)

  def run_train():
    optimizer.zero_grad(set_to_none=True)
    outputs, _ = layer(x)
    loss = outputs.pow(2).mean()
    loss.backward()
    optimizer.step()
    loss.item()

  def run_infer():
    with torch.inference_mode():
      layer(x)[0].sum().item()

  result = {}
  first, times = _time_reps(run_train, reps, warmup)
  result['train'] = {'first_exec_s': first, 'times_ms': times}
  first, times = _time_reps(run_infer, reps, warmup)
  result['infer'] = {'first_exec_s': first, 'times_ms': times}
  return result


def run_worker(name: str, shape: tuple[int, int, int, int], reps: int, warmup: int) -> dict:
  """Measures contender `name` on `shape` in this process; returns a JSON-able dict."""
  contender = CONTENDERS[name]
  load_before = os.getloadavg()[0]
  if contender.framework == 'torch':
    import torch
    torch.set_num_threads(2)
    probe_before = _speed_probe('torch')
    result = measure_torch(name, shape, reps, warmup)
    result['versions'] = {'torch': torch.__version__}
  else:
    import flax
    import jax
    probe_before = _speed_probe('jax')
    result = measure_jax(build_flax_module(name, shape[3]), shape, reps, warmup)
    result['versions'] = {'jax': jax.__version__, 'flax': flax.__version__}
  result['speed_probe_gflops'] = [probe_before, _speed_probe(contender.framework)]
  result.update(contender=name, shape=list(shape), peak_rss_mb=_peak_rss_mb(),
                malloc_env={k: os.environ.get(k) for k in TUNED_MALLOC},
                load_avg_1min=[load_before, os.getloadavg()[0]])
  return result


# --------------------------------------------------------------------------- #
# Orchestrator: spawn workers, pool rounds, write the report.
# --------------------------------------------------------------------------- #

def _torch_importable() -> bool:
  try:
    import importlib.util
    return importlib.util.find_spec('torch') is not None
  except (ImportError, ValueError):
    return False


def _worker_env(allocator: str) -> dict[str, str]:
  env = dict(os.environ)
  for key, value in ALLOCATORS[allocator].items():
    if value is None:
      env.pop(key, None)
    else:
      env[key] = value
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
  env.setdefault('JAX_PLATFORMS', 'cpu')
  return env


def spawn_worker(name: str, shape: tuple[int, ...], allocator: str, reps: int, warmup: int,
                 timeout: int) -> dict:
  """Runs one worker subprocess; returns its result dict or `{'error': ...}`."""
  root = pathlib.Path(__file__).resolve().parents[1]
  with tempfile.TemporaryDirectory() as tmp:
    out = pathlib.Path(tmp) / 'result.json'
    cmd = [sys.executable, '-m', 'benchmarks.rnn_bench', f'--worker={name}',
           f'--worker_shape={",".join(map(str, shape))}', f'--worker_out={out}',
           f'--reps={reps}', f'--warmup={warmup}']
    try:
      proc = subprocess.run(cmd, cwd=root, env=_worker_env(allocator), capture_output=True,
                            text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
      return {'error': f'timeout after {timeout} s'}
    if proc.returncode != 0 or not out.exists():
      return {'error': f'exit {proc.returncode}: {proc.stderr.strip()[-2000:]}'}
    return json.loads(out.read_text())


def _percentile(values: list[float], q: float) -> float:
  import numpy as np
  return float(np.percentile(values, q))


def summarise(runs: list[dict], shapes: dict[str, tuple[int, ...]]) -> dict:
  """Pools rounds per (shape, allocator, contender) and adds the ratios."""
  pooled: dict = {}
  for run in runs:
    if 'error' in run['result']:
      continue
    key = (run['shape'], run['allocator'], run['contender'])
    pooled.setdefault(key, []).append(run['result'])
  summary: dict = {}
  for (shape, allocator, name), results in pooled.items():
    batch, time_steps = shapes[shape][:2]
    entry = {'rounds': len(results), 'peak_rss_mb': max(r['peak_rss_mb'] for r in results)}
    for mode in ('train', 'infer'):
      times = [t for r in results for t in r[mode]['times_ms']]
      median = _percentile(times, 50)
      stats = {'median_ms': median, 'p10_ms': _percentile(times, 10),
               'p90_ms': _percentile(times, 90), 'num_reps': len(times),
               'round_medians_ms': [_percentile(r[mode]['times_ms'], 50) for r in results],
               'tokens_per_s': batch * time_steps / (median / 1e3),
               'first_exec_s': _percentile([r[mode]['first_exec_s'] for r in results], 50)}
      if 'compile_s' in results[0][mode]:
        stats['trace_lower_s'] = _percentile([r[mode]['trace_lower_s'] for r in results], 50)
        stats['compile_s'] = _percentile([r[mode]['compile_s'] for r in results], 50)
        stats['total_compile_s'] = stats['trace_lower_s'] + stats['compile_s']
      entry[mode] = stats
    entry['speed_probe_gflops'] = [r.get('speed_probe_gflops') for r in results]
    entry['round_min_probe_gflops'] = [min(r['speed_probe_gflops']) for r in results
                                       if r.get('speed_probe_gflops')]
    entry['retried'] = sum(r.get('attempt', 0) > 0 for r in results)
    summary.setdefault(shape, {}).setdefault(allocator, {})[name] = entry

  # Ratios > 1 mean "this contender is faster than the reference".
  for by_allocator in summary.values():
    for entries in by_allocator.values():
      for name, entry in entries.items():
        kind = CONTENDERS[name].kind
        for mode in ('train', 'infer'):
          flax_times = [entries[r][mode]['median_ms'] for r in FLAX_REFERENCES[kind]
                        if r in entries]
          torch_ref = entries.get(TORCH_REFERENCES[kind])
          entry[mode]['vs_flax'] = (min(flax_times) / entry[mode]['median_ms']
                                    if flax_times else None)
          entry[mode]['vs_torch'] = (torch_ref[mode]['median_ms'] / entry[mode]['median_ms']
                                     if torch_ref else None)
  return summary


def evaluate_targets(summary: dict) -> list[dict]:
  """The issue's targets, one record per (target, shape, allocator, ...) check."""
  checks = []
  for shape, by_allocator in summary.items():
    for allocator, entries in by_allocator.items():
      for name, entry in entries.items():
        contender = CONTENDERS[name]
        if contender.framework != 'seqnets':
          continue
        for mode in ('train', 'infer'):
          ratio = entry[mode]['vs_flax']
          if contender.in_targets and ratio is not None:
            checks.append({'target': 'vs_fastest_flax', 'contender': name, 'shape': shape,
                           'allocator': allocator, 'mode': mode, 'value': ratio,
                           'threshold': 1.0, 'met': ratio >= 1.0})
        compile_s = entry['train']['total_compile_s']
        checks.append({'target': 'train_compile_s', 'contender': name, 'shape': shape,
                       'allocator': allocator, 'mode': 'train', 'value': compile_s,
                       'threshold': COMPILE_BUDGET_S, 'met': compile_s < COMPILE_BUDGET_S})
        if name == 'sn_lstm' and shape == TORCH_TARGET_SHAPE and entry['train']['vs_torch']:
          ratio = entry['train']['vs_torch']
          checks.append({'target': 'lstm_train_vs_torch', 'contender': name, 'shape': shape,
                         'allocator': allocator, 'mode': 'train', 'value': ratio,
                         'threshold': 1.0, 'met': ratio >= 1.0})
  return checks


def _fmt(value: float | None, digits: int = 2) -> str:
  return 'n/a' if value is None else f'{value:.{digits}f}'


def render_markdown(report: dict) -> str:
  meta, summary, checks = report['meta'], report['summary'], report['targets']
  lines = [
      '# RNN benchmark: seqnets vs flax.linen.RNN vs PyTorch', '',
      f"Generated {meta['date']} by `{meta['command']}` in {meta['wall_s']:.0f} s.  ",
      f"Machine: {meta['machine']}; {meta['versions']}.  ",
      f"Method: each (contender, shape, allocator, round) in a fresh process; AOT compile; "
      f"1 first exec + {meta['warmup']} warm-up, then {meta['reps']} timed reps per round, "
      f"{meta['rounds']} interleaved rounds pooled (median, p10–p90 over all pooled reps); "
      f"a worker whose 1024³-matmul speed probe fell below {meta['disturbed_probe_fraction']:.0%} "
      f"of the run's best was repeated (up to {meta['retries']}×; "
      f"{sum(len(r['discarded']) for r in report['runs'])} repeats in this run). "
      'Train step = forward + backward + SGD update of loss = mean(outputs²); '
      'infer = forward only.  ',
      'Ratios are reference median / this median, so **> 1 means faster than the reference**. '
      '`vs flax` = the fastest flax cell of the same kind (LSTM: min of nn.LSTMCell and '
      'nn.OptimizedLSTMCell; GRU: nn.GRUCell; Elman: nn.SimpleCell); `vs torch` = torch.nn.LSTM / '
      'GRU / RNN. Noise on this 2-vCPU VM is ±25 % run to run (benchmarks/README.md).', '',
      _load_line(meta), '',
      'Allocators: ' + '; '.join(
          f'`{name}` = ' + (', '.join(f'{k}={v}' for k, v in env.items() if v) or 'glibc defaults')
          for name, env in meta['allocators'].items()), '',
  ]
  lines += ['## Targets', '']
  lines += _render_targets(checks)
  for shape, by_allocator in summary.items():
    batch, time_steps, features, hidden = meta['shapes'][shape]
    for allocator, entries in by_allocator.items():
      lines += ['', f'## Shape {shape}: B={batch}, T={time_steps}, E={features}, H={hidden} '
                f'— allocator `{allocator}`', '',
                '| contender | train ms (p10–p90) | train vs flax | train vs torch | '
                'infer ms (p10–p90) | infer vs flax | infer vs torch | train tok/s | '
                'compile train s (trace+lower / XLA) | compile infer s | peak RSS MB |',
                '|---|---|---|---|---|---|---|---|---|---|---|']
      for name in (n for n in CONTENDERS if n in entries):
        entry, label = entries[name], CONTENDERS[name].label
        train, infer = entry['train'], entry['infer']
        compile_train = (f"{train['total_compile_s']:.2f} ({train['trace_lower_s']:.2f} / "
                         f"{train['compile_s']:.2f})" if 'compile_s' in train else 'n/a')
        compile_infer = _fmt(infer.get('total_compile_s'))
        bold = '**' if CONTENDERS[name].framework == 'seqnets' else ''
        lines.append(
            f"| {bold}{label}{bold} | {train['median_ms']:.1f} ({train['p10_ms']:.1f}–"
            f"{train['p90_ms']:.1f}) | {_fmt(train['vs_flax'])} | {_fmt(train['vs_torch'])} | "
            f"{infer['median_ms']:.1f} ({infer['p10_ms']:.1f}–{infer['p90_ms']:.1f}) | "
            f"{_fmt(infer['vs_flax'])} | {_fmt(infer['vs_torch'])} | {train['tokens_per_s']:.0f} | "
            f"{compile_train} | {compile_infer} | {entry['peak_rss_mb']:.0f} |")
  lines += ['', '## Round agreement', '',
            'Rounds whose medians differ by more than 25 % (a busy machine during one of them; '
            'the slower speed probe of each round in GFLOP/s says which). The pooled median '
            'of such a contender is between the two rounds and its ratios are unreliable.', '']
  lines += _render_round_agreement(summary)
  lines += ['', '## Allocator effect (default median / tuned median; > 1: tuned is faster)', '']
  lines += _render_allocator_effect(summary)
  failures = [r for r in report['runs'] if 'error' in r['result']]
  if failures:
    lines += ['', '## Failed workers', '']
    lines += [f"* {r['contender']} shape {r['shape']} {r['allocator']} round {r['round']}: "
              f"`{r['result']['error'][-300:]}`" for r in failures]
  return '\n'.join(lines) + '\n'


def _load_line(meta: dict) -> str:
  load = meta.get('load_avg_1min')
  if not load:
    return ''
  return (f'Machine load during the workers (1-min load average, this VM has {os.cpu_count()} '
          f'CPUs): min {load[0]:.1f}, median {load[1]:.1f}, max {load[2]:.1f}. '
          'Above ~1, other processes shared the cores and every number is slower and noisier. '
          f"OMP_WAIT_POLICY={meta.get('omp_wait_policy') or 'unset'}.")


def _render_targets(checks: list[dict]) -> list[str]:
  if not checks:
    return ['No seqnets contender was run.']
  lines = []
  descriptions = {
      'vs_fastest_flax': 'every seqnets cell ≥ 1.0× the fastest flax cell of its kind, '
                         'every shape, train and inference (GRU: reset_after=True)',
      'lstm_train_vs_torch': f'sn.LSTMCell training ≥ 1.0× torch.nn.LSTM on shape '
                             f'{TORCH_TARGET_SHAPE}',
      'train_compile_s': f'compile (trace+lower+XLA) of one train step < {COMPILE_BUDGET_S:.0f} s',
  }
  allocators = sorted({c['allocator'] for c in checks})
  for target, text in descriptions.items():
    mine = [c for c in checks if c['target'] == target]
    if not mine:
      lines.append(f'* {text}: not measured in this run.')
      continue
    verdicts = []
    for allocator in allocators:
      these = [c for c in mine if c['allocator'] == allocator]
      if not these:
        continue
      missed = [c for c in these if not c['met']]
      if target == 'train_compile_s':
        worst = max(these, key=lambda c: c['value'])
        detail = f"max {worst['value']:.2f} s ({worst['contender']}, shape {worst['shape']})"
      else:
        worst = min(these, key=lambda c: c['value'])
        detail = (f"min {worst['value']:.2f}× ({worst['contender']} {worst['mode']}, "
                  f"shape {worst['shape']})")
      status = 'MET' if not missed else f'NOT MET ({len(missed)}/{len(these)} checks missed)'
      verdicts.append(f'`{allocator}`: **{status}**, {detail}')
    lines.append(f'* {text}: ' + '; '.join(verdicts) + '.')
  misses = [c for c in checks if not c['met'] and c['target'] == 'vs_fastest_flax']
  if misses:
    lines += ['', 'Missed flax checks: ' + ', '.join(
        f"{c['contender']} {c['mode']} {c['shape']}/{c['allocator']} {c['value']:.2f}×"
        for c in misses) + '.']
  return lines


def _render_round_agreement(summary: dict) -> list[str]:
  lines = ['| shape | allocator | contender | mode | round medians ms | round probes GFLOP/s |',
           '|---|---|---|---|---|---|']
  for shape, by_allocator in summary.items():
    for allocator, entries in by_allocator.items():
      for name in (n for n in CONTENDERS if n in entries):
        entry = entries[name]
        for mode in ('train', 'infer'):
          medians = entry[mode]['round_medians_ms']
          if len(medians) > 1 and max(medians) > 1.25 * min(medians):
            probes = ', '.join(f'{p:.0f}' for p in entry.get('round_min_probe_gflops', []))
            lines.append(f"| {shape} | {allocator} | {CONTENDERS[name].label} | {mode} | "
                         f"{', '.join(f'{m:.1f}' for m in medians)} | {probes} |")
  return lines if len(lines) > 2 else ['All rounds agree within 25 %.']


def _render_allocator_effect(summary: dict) -> list[str]:
  lines = ['| shape | contender | train | infer |', '|---|---|---|---|']
  for shape, by_allocator in summary.items():
    if not {'default', 'tuned'} <= set(by_allocator):
      continue
    for name in CONTENDERS:
      if name in by_allocator['default'] and name in by_allocator['tuned']:
        d, t = by_allocator['default'][name], by_allocator['tuned'][name]
        lines.append(f"| {shape} | {CONTENDERS[name].label} | "
                     f"{d['train']['median_ms'] / t['train']['median_ms']:.2f} | "
                     f"{d['infer']['median_ms'] / t['infer']['median_ms']:.2f} |")
  return lines if len(lines) > 2 else ['(needs both allocators)']


def _machine() -> str:
  model = 'unknown CPU'
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        model = line.split(':', 1)[1].strip()
        break
  except OSError:
    pass
  return f'{model}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}'


def _versions() -> str:
  from importlib import metadata
  parts = []
  for package in ('jax', 'jaxlib', 'flax', 'optax', 'torch', 'numpy'):
    try:
      parts.append(f'{package} {metadata.version(package)}')
    except metadata.PackageNotFoundError:
      parts.append(f'{package} absent')
  return ', '.join(parts)


# A worker whose slower speed probe (before or after its measurement) is below this
# fraction of the best probe of the same framework so far ran while other processes
# used the cores (or in one of the VM's slow modes); it is repeated (`--retries`). The
# reference is the best probe, not the median: on a busy machine most probes are low.
DISTURBED_PROBE_FRACTION = 0.6


def _disturbed(result: dict, earlier_probes: list[float]) -> bool:
  if len(earlier_probes) < 4:
    return False
  return min(result['speed_probe_gflops']) < DISTURBED_PROBE_FRACTION * max(earlier_probes)


def run_benchmark(out: pathlib.Path, shapes: dict[str, tuple[int, ...]], names: list[str],
                  allocators: list[str], reps: int, warmup: int, rounds: int,
                  timeout: int, retries: int = 1) -> dict:
  start = time.time()
  plan = []
  for shape in shapes:
    for round_index in range(rounds):
      step = 1 if round_index % 2 == 0 else -1
      for name in names[::step]:
        for allocator in allocators[::step]:
          plan.append((shape, round_index, name, allocator))
  runs = []
  probes: dict[str, list[float]] = {'jax': [], 'torch': []}
  # At most ~15 % extra workers: on a machine that stays busy, repeating does not help.
  retry_budget = max(4, len(plan) * 15 // 100) if retries else 0
  for index, (shape, round_index, name, allocator) in enumerate(plan):
    framework = 'torch' if CONTENDERS[name].framework == 'torch' else 'jax'
    discarded = []
    for attempt in range(retries + 1):
      result = spawn_worker(name, shapes[shape], allocator, reps, warmup, timeout)
      result['attempt'] = attempt
      if ('error' in result or not _disturbed(result, probes[framework]) or attempt == retries
          or retry_budget == 0):
        break
      retry_budget -= 1
      discarded.append(result)
    if 'error' not in result:
      probes[framework].extend(result['speed_probe_gflops'])
    runs.append({'shape': shape, 'round': round_index, 'contender': name,
                 'allocator': allocator, 'result': result, 'discarded': discarded})
    elapsed = time.time() - start
    status = 'FAILED' if 'error' in result else (
        f"train {sorted(result['train']['times_ms'])[len(result['train']['times_ms']) // 2]:.1f} ms"
        f" probe {min(result['speed_probe_gflops']):.0f} GFLOP/s"
        + (f" (repeated {len(discarded)}x)" if discarded else ''))
    print(f'[{index + 1}/{len(plan)} {elapsed:6.0f}s] shape {shape} round {round_index} '
          f'{allocator:7s} {name:13s} {status}', file=sys.stderr, flush=True)
  summary = summarise(runs, shapes)
  loads = [v for r in runs if 'load_avg_1min' in r['result'] for v in r['result']['load_avg_1min']]
  report = {
      'meta': {
          'date': datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z'),
          'command': ' '.join(shlex.quote(a) for a in ['python', '-m', 'benchmarks.rnn_bench']
                              + sys.argv[1:]),
          'wall_s': time.time() - start, 'machine': _machine(), 'versions': _versions(),
          'shapes': {k: list(v) for k, v in shapes.items()}, 'reps': reps, 'warmup': warmup,
          'rounds': rounds, 'allocators': {a: ALLOCATORS[a] for a in allocators},
          'retries': retries, 'disturbed_probe_fraction': DISTURBED_PROBE_FRACTION,
          'contenders': {n: dataclasses.asdict(CONTENDERS[n]) for n in names},
          'learning_rate': LEARNING_RATE,
          'load_avg_1min': ([min(loads), _percentile(loads, 50), max(loads)] if loads else None),
          'omp_wait_policy': os.environ.get('OMP_WAIT_POLICY'),
      },
      'summary': summary,
      'targets': evaluate_targets(summary),
      'runs': runs,
  }
  out.mkdir(parents=True, exist_ok=True)
  (out / 'rnn_bench.json').write_text(json.dumps(report, indent=1) + '\n')
  (out / 'rnn_bench.md').write_text(render_markdown(report))
  return report


def main(argv: list[str]) -> None:
  del argv
  if FLAGS.worker:
    shape = tuple(int(v) for v in FLAGS.worker_shape.split(','))
    result = run_worker(FLAGS.worker, shape, FLAGS.reps, FLAGS.warmup)
    pathlib.Path(FLAGS.worker_out).write_text(json.dumps(result))
    return

  if FLAGS.from_json:
    report = json.loads(pathlib.Path(FLAGS.from_json).read_text())
    shapes = {k: tuple(v) for k, v in report['meta']['shapes'].items()}
    for run in report['runs']:
      run.setdefault('discarded', [])
    report['meta'].setdefault('retries', 0)
    report['meta'].setdefault('disturbed_probe_fraction', DISTURBED_PROBE_FRACTION)
    report['summary'] = summarise(report['runs'], shapes)
    report['targets'] = evaluate_targets(report['summary'])
    out = pathlib.Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'rnn_bench.json').write_text(json.dumps(report, indent=1) + '\n')
    (out / 'rnn_bench.md').write_text(render_markdown(report))
    return

  unknown = [n for n in FLAGS.contenders if n not in CONTENDERS]
  unknown += [a for a in FLAGS.allocators if a not in ALLOCATORS]
  if unknown:
    raise app.UsageError(f'unknown contender/allocator {unknown}; valid: '
                         f'{list(CONTENDERS)} / {list(ALLOCATORS)}')
  if FLAGS.quick:
    shapes, reps, warmup = dict(QUICK_SHAPES), 3, 1
  else:
    bad = [s for s in FLAGS.shapes if s not in SHAPES]
    if bad:
      raise app.UsageError(f'unknown shapes {bad}; valid: {sorted(SHAPES)}')
    shapes, reps, warmup = {s: SHAPES[s] for s in FLAGS.shapes}, FLAGS.reps, FLAGS.warmup
  names = list(FLAGS.contenders)
  if not _torch_importable():
    dropped = [n for n in names if CONTENDERS[n].framework == 'torch']
    names = [n for n in names if CONTENDERS[n].framework != 'torch']
    if dropped:
      print(f'PyTorch not importable: skipping {dropped}', file=sys.stderr)
  report = run_benchmark(pathlib.Path(FLAGS.out), shapes, names, list(FLAGS.allocators), reps,
                         warmup, FLAGS.rounds, FLAGS.timeout, FLAGS.retries)
  print((pathlib.Path(FLAGS.out) / 'rnn_bench.md').read_text())
  del report


if __name__ == '__main__':
  app.run(main)
