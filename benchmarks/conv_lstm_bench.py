r"""ConvLSTM benchmark: per-step input convolution vs the input convolution hoisted
before the loop, against flax's `nn.ConvLSTMCell` under `nn.RNN`.

Contenders (all over `[B, T, H, W, C_in]`, 'SAME' k×k convolutions, `features` channels):
  step      sn.RNN(ConvLSTMCell(features)): both convolutions per step (the library's way)
  hoisted   `HoistedRNN` below: W_x * x_t + b for all t at once (`cell.input_projection`,
            one convolution over the B·T images) before the loop, only W_h * h_{t-1}
            per step (`cell.projected_step`); the same scan as `sn.RNN` otherwise
  step_xla  `step` with `im2col_grad=False`: XLA's own convolution gradients instead of
            `conv_lstm.conv_same`'s (kernel gradient as one im2col matmul)
  flax      flax.linen.RNN(flax.linen.ConvLSTMCell(features, (k, k)))

Results on the 2-core VM, 2026-11-28, two runs (niced; load average 11, then 3.7; a
run takes 80–170 s), speed-ups vs `step` (small / mnist):

  hoisted   forward+backward 0.78–0.79 / 0.80–0.89, forward 0.62–0.67 / 0.37–0.38
  step_xla  forward+backward 0.08–0.09 / 0.14–0.16, forward 1.00 / 0.93–0.97
  flax      forward+backward 0.09–0.10 / 0.14–0.16, forward 0.98–0.99 / 1.01–1.02

Hoisting the input convolution is slower, as hoisting the input matmul was for the
LSTM (benchmarks/README.md): the per-step convolution of a 1-channel input is cheap,
while the hoisted `[B, T, H, W, 4C]` projection is written out and sliced per step.
So the library does not hoist. The im2col kernel gradient is what
makes `step` train 6–12× faster than XLA's own gradient and than flax's cell.

Measured: forward + backward (`jax.value_and_grad` of mean(outputs²) with respect to
the parameters and the inputs) and forward only, each `jax.jit`-ted and compiled ahead
of time (compile time recorded). All contenders of a shape are compiled in one process
and timed *interleaved*: every rep runs each contender once, in an order rotated from
rep to rep, so drift of this shared, niced machine hits them alike. Ratios are medians
of the per-rep paired ratios `step ms / contender ms` (as in benchmarks/README.md:
> 1 means the contender is faster than `step`); absolute times move 10–35 % from run
to run, ratios much less. The seqnets contenders get the same parameters; the largest
output difference from `step` is recorded (`max_abs_diff_vs_step`, rounding only).

Usage:
  python -m benchmarks.conv_lstm_bench --out=/tmp/convlstm_bench         # ~1.5–3 min
  python -m benchmarks.conv_lstm_bench --out=/tmp/b --shapes=small --reps=30
  python -m benchmarks.conv_lstm_bench --out=/tmp/b --quick               # smoke test

Writes `<out>/conv_lstm_bench.json` (every timed rep, compile times, the summary) and
`<out>/conv_lstm_bench.md` (the tables).
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

# (B, T, H, W, C_in, features, kernel)
SHAPES = {
    'small': (8, 10, 16, 16, 1, 32, 3),    # the typical size: 16×16 frames, 1 channel
    'mnist': (2, 8, 64, 64, 1, 16, 3),     # moving-MNIST-like 64×64 frames
}
QUICK_SHAPES = {'quick': (2, 3, 6, 6, 1, 4, 3)}
CONTENDERS = ('step', 'hoisted', 'step_xla', 'flax')
REFERENCE = 'step'
MIN_REPS = 5

FLAGS = flags.FLAGS
flags.DEFINE_string('out', 'bench_results', 'Directory for conv_lstm_bench.{md,json}.')
flags.DEFINE_list('shapes', ['small', 'mnist'], 'Shapes to run (see SHAPES).')
flags.DEFINE_integer('reps', 20, 'Timed interleaved reps per mode (each runs every contender).')
flags.DEFINE_integer('warmup', 2, 'Untimed reps after the first execution.')
flags.DEFINE_float('max_seconds', 15.0, 'Stop timing a mode after this long (>= 5 reps).')
flags.DEFINE_bool('quick', False, 'A tiny shape and 3 reps (smoke test).')
flags.DEFINE_list('contenders', list(CONTENDERS), 'Contenders to run (step is always run).')


def hoisted_rnn(cell):
  """`sn.RNN(cell)` without lengths, but with the input convolution run before the loop."""
  from flax import linen as nn

  class HoistedRNN(nn.Module):
    cell: nn.RNNCellBase

    @nn.compact
    def __call__(self, inputs):
      carry = self.cell.initialize_carry(None, inputs[:, 0].shape)
      projection = self.cell.input_projection(inputs)           # [B, T, H, W, 4C] at once
      scan = nn.scan(lambda cell, carry, z_t: cell.projected_step(carry, z_t),
                     variable_broadcast='params', split_rngs={'params': False},
                     in_axes=1, out_axes=1)
      return scan(self.cell, carry, projection)[1]

  return HoistedRNN(cell)


def build(name: str, features: int, kernel: int):
  from flax import linen as nn

  import seqnets as sn
  from seqnets.layers.conv_lstm import ConvLSTMCell
  size = (kernel, kernel)
  if name == 'step':
    return sn.RNN(ConvLSTMCell(features, size))
  if name == 'hoisted':
    return hoisted_rnn(ConvLSTMCell(features, size))
  if name == 'step_xla':
    return sn.RNN(ConvLSTMCell(features, size, im2col_grad=False))
  if name == 'flax':
    return nn.RNN(nn.ConvLSTMCell(features, size))
  raise ValueError(f'unknown contender {name!r}; valid: {CONTENDERS}')


def compile_contender(module, x):
  """`(params, {'train': (compiled, compile_s), 'infer': (compiled, compile_s)})`."""
  import jax
  import jax.numpy as jnp

  params = jax.jit(module.init)(jax.random.key(0), x)

  def loss(p, inputs):
    return jnp.mean(module.apply(p, inputs) ** 2)

  functions = {'train': jax.value_and_grad(loss, argnums=(0, 1)), 'infer': module.apply}
  compiled = {}
  for mode, fn in functions.items():
    start = time.perf_counter()
    executable = jax.jit(fn).lower(params, x).compile()
    compiled[mode] = (executable, time.perf_counter() - start)
  return params, compiled


def run_shape(shape: tuple[int, ...], names: list[str], reps: int, warmup: int,
              max_seconds: float) -> dict:
  import jax
  import numpy as np

  batch, steps, height, width, channels, features, kernel = shape
  x = jax.numpy.asarray(np.random.default_rng(0).uniform(
      -1, 1, (batch, steps, height, width, channels)).astype(np.float32))
  modules = {name: build(name, features, kernel) for name in names}
  params, executables = {}, {}
  for name, module in modules.items():
    params[name], executables[name] = compile_contender(module, x)
    _progress(f'{shape}: compiled {name}')
  # The seqnets contenders have the same parameter tree: give them the same values.
  same = [name for name in names if name != 'flax']
  outputs = {}
  for name in same:
    params[name] = params[same[0]]
    outputs[name] = np.asarray(executables[name]['infer'][0](params[name], x))
  result = {'shape': dict(zip(('B', 'T', 'H', 'W', 'C_in', 'features', 'kernel'), shape)),
            'max_abs_diff_vs_step': {name: float(np.max(np.abs(outputs[name] - outputs['step'])))
                                     for name in same if 'step' in outputs},
            'modes': {}}
  for mode in ('train', 'infer'):
    calls = {name: (lambda f=executables[name][mode][0], p=params[name]:
                    jax.block_until_ready(f(p, x)))
             for name in names}
    first = {}
    for name, call in calls.items():
      start = time.perf_counter()
      call()
      first[name] = time.perf_counter() - start
    for _ in range(warmup):
      for call in calls.values():
        call()
    times = {name: [] for name in names}
    started = time.perf_counter()
    for rep in range(reps):
      order = names[rep % len(names):] + names[:rep % len(names)]
      for name in order:
        start = time.perf_counter()
        calls[name]()
        times[name].append((time.perf_counter() - start) * 1e3)
      if rep + 1 >= MIN_REPS and time.perf_counter() - started > max_seconds:
        break
    summary = {}
    for name in names:
      paired = [r / t for t, r in zip(times[name], times[REFERENCE])]
      summary[name] = {
          'median_ms': statistics.median(times[name]),
          'min_ms': min(times[name]),
          f'speedup_vs_{REFERENCE}': statistics.median(paired),
          'compile_s': executables[name][mode][1],
          'first_exec_s': first[name],
      }
    result['modes'][mode] = {'summary': summary, 'times_ms': times}
    _progress(f'{shape} {mode}: ' + ', '.join(
        f"{n} {row['median_ms']:.1f} ms" for n, row in summary.items()))
  return result


def _progress(message: str) -> None:
  print(f'[conv_lstm_bench {time.strftime("%H:%M:%S")}] {message}', file=sys.stderr, flush=True)


def _meta(shapes: dict, reps: int) -> dict:
  from importlib import metadata
  versions = {p: metadata.version(p) for p in ('jax', 'jaxlib', 'flax', 'numpy')}
  try:
    load = os.getloadavg()[0]
  except OSError:
    load = None
  return {'date_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
          'machine': f'{platform.machine()}, {os.cpu_count()} CPUs', 'versions': versions,
          'shapes': shapes, 'reps': reps, 'reference': REFERENCE,
          'niceness': os.nice(0), 'load_avg_1min_start': load}


def render_markdown(report: dict) -> str:
  meta = report['meta']
  lines = ['# ConvLSTM benchmark', '',
           f"{meta['date_utc']}, {meta['machine']}, nice {meta['niceness']}, "
           f"load average {meta['load_avg_1min_start']} → {meta.get('load_avg_1min_end')}, "
           f"{meta.get('seconds', 0):.0f} s; "
           + ', '.join(f'{k} {v}' for k, v in meta['versions'].items()) + '.', '',
           f"Speed-up = median over reps of ({REFERENCE} ms / contender ms) in the same rep: "
           f'> 1 means the contender is faster than `{REFERENCE}`.', '']
  for shape_name, result in report['results'].items():
    s = result['shape']
    lines += [f"## {shape_name}: B={s['B']}, T={s['T']}, {s['H']}×{s['W']}×{s['C_in']} → "
              f"{s['features']} features, {s['kernel']}×{s['kernel']} kernels", '',
              'outputs, max |difference| from step (same parameters): ' + ', '.join(
                  f'{name} {diff:.1e}' for name, diff in result['max_abs_diff_vs_step'].items()),
              '',
              f'| mode | contender | median ms | min ms | speed-up vs {REFERENCE} | compile s '
              '| reps |',
              '|---|---|---|---|---|---|---|']
    for mode, label in (('train', 'forward+backward'), ('infer', 'forward')):
      for name, row in result['modes'][mode]['summary'].items():
        reps = len(result['modes'][mode]['times_ms'][name])
        lines.append(f"| {label} | {name} | {row['median_ms']:.2f} | {row['min_ms']:.2f} | "
                     f"{row[f'speedup_vs_{REFERENCE}']:.3f} | {row['compile_s']:.2f} | {reps} |")
    lines.append('')
  return '\n'.join(lines)


def main(argv: list[str]) -> None:
  del argv
  if FLAGS.quick:
    shapes, reps, warmup = QUICK_SHAPES, 3, 1
  else:
    bad = [s for s in FLAGS.shapes if s not in SHAPES]
    if bad:
      raise app.UsageError(f'unknown shapes {bad}; valid: {sorted(SHAPES)}')
    shapes, reps, warmup = {s: SHAPES[s] for s in FLAGS.shapes}, FLAGS.reps, FLAGS.warmup
  unknown = [n for n in FLAGS.contenders if n not in CONTENDERS]
  if unknown:
    raise app.UsageError(f'unknown contenders {unknown}; valid: {list(CONTENDERS)}')
  names = [REFERENCE] + [n for n in FLAGS.contenders if n != REFERENCE]
  start = time.time()
  report = {'meta': _meta(shapes, reps), 'results': {}}
  for name, shape in shapes.items():
    report['results'][name] = run_shape(shape, names, reps, warmup, FLAGS.max_seconds)
  report['meta']['seconds'] = time.time() - start
  report['meta']['load_avg_1min_end'] = os.getloadavg()[0]
  out = pathlib.Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / 'conv_lstm_bench.json').write_text(json.dumps(report, indent=1) + '\n')
  markdown = render_markdown(report)
  (out / 'conv_lstm_bench.md').write_text(markdown)
  print(markdown)


if __name__ == '__main__':
  app.run(main)
