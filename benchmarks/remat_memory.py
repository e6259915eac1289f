r"""Memory of an LSTM layer's training gradient with and without `remat`, compiled by XLA,
against `seqnets.analysis.memory.rnn_activation_bytes`.

For each loop (`fused`: the default fused kernel; `scan`: `implementation='scan'`), each
T in `--steps` and remat in (none, round(√T)): `sn.RNN(sn.LSTMCell(H), remat=...)` on
`[B, T, F]` inputs, the gradient of mean(outputs²) with respect to the parameters,
`jax.jit(grad).lower(params, x).compile()`; nothing is run. Measured:
`memory_analysis()`'s temp + argument + output bytes (XLA's buffer assignment, exact for
that program). Predicted: weights and inputs (the arguments) + gradients (the output) +
`rnn_activation_bytes(B, T, H, remat=..., peak=True)`, the fused kernel's formula; the
plain scan's autodiff keeps more per step, so its ratio is above 1 by design. Also
reported: `training_memory(...).activations`, the residuals traced before XLA.

Usage:
  python -m benchmarks.remat_memory --out=/tmp/remat_memory          # ~15 s
  python -m benchmarks.remat_memory --out=/tmp/b --steps=1000,10000,100000 --paths=fused
  python -m benchmarks.remat_memory --out=/tmp/b --quick              # smoke test

Writes `<out>/remat_memory.json` (every number) and `<out>/remat_memory.md` (the table).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import pathlib
import platform
import sys
import time

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string('out', 'bench_results', 'Directory for remat_memory.{md,json}.')
flags.DEFINE_list('steps', ['1000', '10000'], 'Sequence lengths T.')
flags.DEFINE_list('paths', ['fused', 'scan'], "Loops: 'fused' (default kernel), 'scan'.")
flags.DEFINE_integer('batch', 8, 'B.')
flags.DEFINE_integer('hidden', 128, 'H (LSTM units).')
flags.DEFINE_integer('features', 128, 'F (input features).')
flags.DEFINE_bool('quick', False, 'T in (20, 50), B=2, H=F=8 (smoke test).')

MIB = 2 ** 20


def remat_for(steps: int) -> int:
  """The segment length benchmarked against no remat: round(√T)."""
  return max(1, round(math.sqrt(steps)))


def measure(path: str, batch: int, steps: int, features: int, hidden: int,
            remat: int | None) -> dict:
  """Compiled memory of one gradient and its prediction, in bytes (see the module docstring)."""
  import jax
  import jax.numpy as jnp

  import seqnets as sn
  from seqnets.analysis import count_params, rnn_activation_bytes, training_memory

  layer = sn.RNN(sn.LSTMCell(hidden), implementation=path, remat=remat)
  x = jax.ShapeDtypeStruct((batch, steps, features), jnp.float32)
  params = jax.eval_shape(layer.init, jax.random.key(0), x)
  grad = jax.grad(lambda p, x: jnp.mean(layer.apply(p, x) ** 2))
  start = time.perf_counter()
  memory = jax.jit(grad).lower(params, x).compile().memory_analysis()
  compile_s = time.perf_counter() - start
  weights = 4 * count_params(params)
  inputs = 4 * batch * steps * features
  activations = rnn_activation_bytes(batch, steps, hidden, cell='lstm', remat=remat, peak=True)
  measured = (memory.temp_size_in_bytes + memory.argument_size_in_bytes
              + memory.output_size_in_bytes)
  predicted = weights + inputs + weights + activations
  return {
      'path': path, 'batch': batch, 'steps': steps, 'features': features, 'hidden': hidden,
      'remat': remat, 'temp_bytes': memory.temp_size_in_bytes,
      'argument_bytes': memory.argument_size_in_bytes,
      'output_bytes': memory.output_size_in_bytes, 'measured_bytes': measured,
      'predicted_bytes': predicted, 'predicted_activation_bytes': activations,
      'ratio_measured_to_predicted': measured / predicted,
      'training_memory_activation_bytes': training_memory(layer, x).activations,
      'compile_s': compile_s,
  }


def _meta() -> dict:
  from importlib import metadata
  import jax
  return {'date_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
          'machine': f'{platform.machine()}, {os.cpu_count()} CPUs',
          'backend': jax.default_backend(),
          'versions': {p: metadata.version(p) for p in ('jax', 'jaxlib', 'flax')},
          'command': ' '.join(['python -m benchmarks.remat_memory'] + sys.argv[1:])}


def render_markdown(report: dict) -> str:
  meta = report['meta']
  lines = ['# Training memory with remat', '',
           f"{meta['date_utc']}, {meta['machine']}, backend {meta['backend']}, "
           + ', '.join(f'{k} {v}' for k, v in meta['versions'].items())
           + f"; `{meta['command']}`.", '',
           'Gradient of mean(outputs²) of `sn.RNN(sn.LSTMCell(H), remat=k)`; MiB. Measured: '
           "XLA's temp + arguments + outputs of the compiled program. Predicted: weights + "
           'inputs + gradients + `rnn_activation_bytes(..., peak=True)` (the fused '
           "kernel's formula). `training_memory`: the traced residuals.", '',
           '| loop | B | T | F | H | remat | temp | measured | predicted | measured / predicted '
           '| training_memory activations |',
           '|---|---|---|---|---|---|---|---|---|---|---|']
  for r in report['rows']:
    lines.append(
        f"| {r['path']} | {r['batch']} | {r['steps']} | {r['features']} | {r['hidden']} "
        f"| {r['remat'] or 'none'} "
        f"| {r['temp_bytes'] / MIB:.2f} | {r['measured_bytes'] / MIB:.2f} "
        f"| {r['predicted_bytes'] / MIB:.2f} | {r['ratio_measured_to_predicted']:.2f} "
        f"| {r['training_memory_activation_bytes'] / MIB:.2f} |")
  return '\n'.join(lines) + '\n'


def main(argv: list[str]) -> None:
  del argv
  if FLAGS.quick:
    steps, batch, hidden, features = [20, 50], 2, 8, 8
  else:
    steps, batch, hidden, features = ([int(t) for t in FLAGS.steps], FLAGS.batch, FLAGS.hidden,
                                      FLAGS.features)
  bad = [p for p in FLAGS.paths if p not in ('fused', 'scan')]
  if bad:
    raise app.UsageError(f'unknown paths {bad}; valid: fused, scan')
  report = {'meta': _meta(), 'rows': []}
  for path in FLAGS.paths:
    for t in steps:
      for remat in (None, remat_for(t)):
        row = measure(path, batch, t, features, hidden, remat)
        report['rows'].append(row)
        print(f"[remat_memory] {path} T={t} remat={remat}: {row['measured_bytes'] / MIB:.2f} "
              f"MiB measured, ratio {row['ratio_measured_to_predicted']:.2f}", file=sys.stderr,
              flush=True)
  out = pathlib.Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / 'remat_memory.json').write_text(json.dumps(report, indent=1) + '\n')
  markdown = render_markdown(report)
  (out / 'remat_memory.md').write_text(markdown)
  print(markdown)


if __name__ == '__main__':
  app.run(main)
