r"""The fused kernel's two variants against each other: input projection hoisted out of the
loop (`sn.RNN(cell, implementation='fused_hoisted')`) and in the loop
(`implementation='fused_in_loop'`), on the shapes of `benchmarks/shapes.py`.

Measured, per shape and cell: a train step (`jax.value_and_grad` of mean(outputs²) with
respect to the parameters, then an SGD update, as `rnn_bench`'s) and inference (forward
only), each `jax.jit`-ted and compiled ahead of time. Both variants of a (shape, cell) are
compiled in one process with the same parameters and timed *interleaved*: every rep runs
each variant once, the order alternating from rep to rep, so drift of the shared machine
hits them alike. The ratio is the median over reps of the paired `hoisted ms / in-loop
ms` (< 1: hoisted faster); absolute times move 10–35 % from run to run, ratios less.
`sn.RNN`'s choice per platform (`rnn.HOISTED_BY_PLATFORM`) quotes this table for the CPU.

Usage:
  python -m benchmarks.fused_variants --out=/tmp/fused_variants          # a, b, c: ~10 min
  python -m benchmarks.fused_variants --out=/tmp/f --shapes=c --cells=lstm,gru_ra --reps=20
  python -m benchmarks.fused_variants --out=/tmp/f --quick               # smoke test

Writes `<out>/fused_variants.json` (every timed rep, compile times, the ratios) and
`<out>/fused_variants.md` (the table).
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import statistics
import sys
import time

from absl import app
from absl import flags

from benchmarks.shapes import QUICK_SHAPES, SHAPES

CELLS = ('lstm', 'lstm_peep', 'gru', 'gru_ra', 'elman')
VARIANTS = ('fused_in_loop', 'fused_hoisted')
LEARNING_RATE = 1e-3
MIN_REPS = 5

FLAGS = flags.FLAGS
flags.DEFINE_string('out', 'bench_results', 'Directory for fused_variants.{md,json}.')
flags.DEFINE_list('shapes', list(SHAPES), f'Shapes, from {sorted(SHAPES)}.')
flags.DEFINE_list('cells', list(CELLS), f'Cells, from {list(CELLS)}.')
flags.DEFINE_integer('reps', 10, 'Timed interleaved reps per mode (each runs both variants).')
flags.DEFINE_integer('warmup', 1, 'Untimed reps of each variant after the first execution.')
flags.DEFINE_float('max_seconds', 30.0, 'Stop timing a mode after this long (>= 5 reps).')
flags.DEFINE_bool('quick', False, 'The tiny shape and 3 reps (smoke test).')


def build(cell: str, hidden: int, implementation: str):
  """`sn.RNN` of `cell` (a name from CELLS) with `hidden` units, forced to a variant."""
  import seqnets as sn
  cells = {
      'lstm': lambda: sn.LSTMCell(hidden),
      'lstm_peep': lambda: sn.LSTMCell(hidden, use_peepholes=True),
      'gru': lambda: sn.GRUCell(hidden),
      'gru_ra': lambda: sn.GRUCell(hidden, reset_after=True),
      'elman': lambda: sn.ElmanCell(hidden),
  }
  return sn.RNN(cells[cell](), implementation=implementation)


def compile_modes(module, params, x) -> dict:
  """`{'train': (call, compile_s), 'infer': (call, compile_s)}`: each call runs one train
  step (returning nothing to keep) or one forward pass and blocks until it is done."""
  import jax
  import jax.numpy as jnp

  def train_step(p, inputs):
    loss, grads = jax.value_and_grad(lambda p: jnp.mean(module.apply(p, inputs) ** 2))(p)
    return jax.tree_util.tree_map(lambda w, g: w - LEARNING_RATE * g, p, grads), loss

  compiled = {}
  for mode, fn in (('train', train_step), ('infer', module.apply)):
    start = time.perf_counter()
    executable = jax.jit(fn).lower(params, x).compile()
    compiled[mode] = (lambda f=executable: jax.block_until_ready(f(params, x)),
                      time.perf_counter() - start)
  return compiled


def run_one(shape: tuple[int, int, int, int], cell: str, reps: int, warmup: int,
            max_seconds: float) -> dict:
  """Both variants of `cell` on `shape` (B, T, E, H), interleaved (module docstring)."""
  import jax
  import numpy as np

  batch, steps, features, hidden = shape
  x = jax.numpy.asarray(np.random.default_rng(0).uniform(
      -1, 1, (batch, steps, features)).astype(np.float32))
  modules = {v: build(cell, hidden, v) for v in VARIANTS}
  params = jax.jit(modules[VARIANTS[0]].init)(jax.random.key(0), x)
  compiled = {v: compile_modes(m, params, x) for v, m in modules.items()}
  outputs = {v: np.asarray(compiled[v]['infer'][0]()) for v in VARIANTS}
  result = {'max_abs_diff': float(np.max(np.abs(outputs[VARIANTS[0]] - outputs[VARIANTS[1]]))),
            'modes': {}}
  for mode in ('train', 'infer'):
    calls = {v: compiled[v][mode][0] for v in VARIANTS}
    for _ in range(1 + warmup):
      for call in calls.values():
        call()
    times = {v: [] for v in VARIANTS}
    started = time.perf_counter()
    for rep in range(reps):
      for v in (VARIANTS if rep % 2 == 0 else VARIANTS[::-1]):
        start = time.perf_counter()
        calls[v]()
        times[v].append((time.perf_counter() - start) * 1e3)
      if rep + 1 >= MIN_REPS and time.perf_counter() - started > max_seconds:
        break
    in_loop, hoisted = (times[v] for v in VARIANTS)
    result['modes'][mode] = {
        'times_ms': times,
        'median_ms': {v: statistics.median(times[v]) for v in VARIANTS},
        'compile_s': {v: compiled[v][mode][1] for v in VARIANTS},
        'ratio_hoisted_over_in_loop': statistics.median(h / i for h, i in zip(hoisted, in_loop)),
    }
    _progress(f'{shape} {cell} {mode}: in-loop {statistics.median(in_loop):.1f} ms, hoisted '
              f"{statistics.median(hoisted):.1f} ms, ratio "
              f"{result['modes'][mode]['ratio_hoisted_over_in_loop']:.2f}")
  return result


def render_markdown(report: dict) -> str:
  meta = report['meta']
  lines = ['# Fused kernel: hoisted input projection vs in the loop', '',
           f"{meta['date_utc']}, {meta['machine']}, backend {meta['backend']}, "
           f"load average {meta['load_avg_1min_start']} → {meta.get('load_avg_1min_end')}, "
           f"{meta.get('seconds', 0):.0f} s; "
           + ', '.join(f'{k} {v}' for k, v in meta['versions'].items()) + '.', '',
           'Ratio = median over reps of (hoisted ms / in-loop ms) in the same rep: < 1 means '
           'the hoisted variant is faster.', '',
           '| shape (B, T, E, H) | cell | mode | in-loop ms | hoisted ms | hoisted / in-loop '
           '| reps |',
           '|---|---|---|---|---|---|---|']
  for shape_name, by_cell in report['results'].items():
    shape = tuple(meta['shapes'][shape_name])
    for cell, result in by_cell.items():
      for mode, row in result['modes'].items():
        in_loop, hoisted = (row['median_ms'][v] for v in VARIANTS)
        lines.append(f"| {shape_name} {shape} | {cell} | {mode} | {in_loop:.1f} | "
                     f"{hoisted:.1f} | {row['ratio_hoisted_over_in_loop']:.2f} | "
                     f"{len(row['times_ms'][VARIANTS[0]])} |")
  return '\n'.join(lines) + '\n'


def _progress(message: str) -> None:
  print(f'[fused_variants {time.strftime("%H:%M:%S")}] {message}', file=sys.stderr, flush=True)


def _meta(shapes: dict, reps: int) -> dict:
  from importlib import metadata

  import jax
  versions = {p: metadata.version(p) for p in ('jax', 'jaxlib', 'flax')}
  return {'date_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
          'machine': f'{platform.machine()}, {os.cpu_count()} CPUs',
          'backend': jax.default_backend(), 'versions': versions, 'shapes': shapes,
          'reps': reps, 'load_avg_1min_start': os.getloadavg()[0]}


def main(argv: list[str]) -> None:
  del argv
  if FLAGS.quick:
    shapes, reps, warmup = dict(QUICK_SHAPES), 3, 0
  else:
    bad = [s for s in FLAGS.shapes if s not in SHAPES]
    if bad:
      raise app.UsageError(f'unknown shapes {bad}; valid: {sorted(SHAPES)}')
    shapes, reps, warmup = {s: SHAPES[s] for s in FLAGS.shapes}, FLAGS.reps, FLAGS.warmup
  unknown = [c for c in FLAGS.cells if c not in CELLS]
  if unknown:
    raise app.UsageError(f'unknown cells {unknown}; valid: {list(CELLS)}')
  start = time.time()
  report = {'meta': _meta(shapes, reps), 'results': {}}
  for name, shape in shapes.items():
    report['results'][name] = {cell: run_one(shape, cell, reps, warmup, FLAGS.max_seconds)
                               for cell in FLAGS.cells}
  report['meta']['seconds'] = time.time() - start
  report['meta']['load_avg_1min_end'] = os.getloadavg()[0]
  out = pathlib.Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / 'fused_variants.json').write_text(json.dumps(report, indent=1) + '\n')
  markdown = render_markdown(report)
  (out / 'fused_variants.md').write_text(markdown)
  print(markdown)


if __name__ == '__main__':
  app.run(main)
