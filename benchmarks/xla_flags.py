r"""XLA:CPU's optional kernels against its default, on the recurrent layers: oneDNN dots,
YNN fusions, the 512-bit vector width, and their combinations.

Each (shape, allocator, contender) is measured once per setting of `SETTINGS` in a fresh
worker process whose `XLA_FLAGS` carry that setting (`rnn_bench`'s workers: AOT compile,
timed train step and inference); the settings alternate within every round, so drift of
the shared machine hits them alike. The table gives each setting's median time and its
ratio to the default's in the same round and shape (> 1: the setting is faster); a
setting that fails to compile or aborts is listed with its error.

Usage:
  python -m benchmarks.xla_flags --out=bench_results          # every setting, a, b, c, both allocators
  python -m benchmarks.xla_flags --out=/tmp/x --shapes=c --allocators=tuned --rounds=2
  python -m benchmarks.xla_flags --out=/tmp/x --quick         # smoke test

Writes `<out>/xla_flags.json` (every worker's result) and `<out>/xla_flags.md`.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import statistics
import sys
import time

from absl import app
from absl import flags

from benchmarks import worker
from benchmarks.allocators import ALLOCATORS
from benchmarks.shapes import QUICK_SHAPES, SHAPES

ONEDNN_DOT = '--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=dot'
WIDTH_512 = '--xla_cpu_prefer_vector_width=512'
SETTINGS = {
    'default': '',
    'vector_width_512': WIDTH_512,
    'onednn_dot': ONEDNN_DOT,
    'onednn_dot+512': f'{ONEDNN_DOT} {WIDTH_512}',
    'ynn_dot': '--xla_cpu_experimental_ynn_fusion_type=dot',
    'ynn_dot+512': f'--xla_cpu_experimental_ynn_fusion_type=dot {WIDTH_512}',
    'ynn_dot_eltwise': '--xla_cpu_experimental_ynn_fusion_type=dot,eltwise',
}
CONTENDERS = ('sn_lstm', 'sn_gru_ra')

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command line's flags; defined when run as a program, so that importing this
  module (its tests) defines none beside other benchmarks' `--out`."""
  flags.DEFINE_string('out', 'bench_results', 'Directory for xla_flags.{md,json}.')
  flags.DEFINE_list('shapes', list(SHAPES), f'Shapes, from {sorted(SHAPES)}.')
  flags.DEFINE_list('settings', list(SETTINGS), f'Settings, from {list(SETTINGS)}.')
  flags.DEFINE_list('contenders', list(CONTENDERS), 'rnn_bench contenders.')
  flags.DEFINE_list('allocators', list(ALLOCATORS), f'From {list(ALLOCATORS)}.')
  flags.DEFINE_integer('reps', 5, 'Timed reps per worker.')
  flags.DEFINE_integer('warmup', 1, 'Untimed reps after the first execution.')
  flags.DEFINE_integer('rounds', 1, 'Rounds; each runs every setting once per case.')
  flags.DEFINE_integer('timeout', 900, 'Seconds before a worker is killed.')
  flags.DEFINE_bool('quick', False, 'The tiny shape, two settings, 2 reps (smoke test).')

def with_flags(base: str | None, setting: str) -> str:
  """`base` (the XLA_FLAGS this process started with) and `setting`'s flags."""
  return ' '.join(f for f in (base or '', SETTINGS[setting]) if f)


def measure(shapes: dict, settings: list[str], contenders: list[str], allocators: list[str],
            reps: int, warmup: int, rounds: int, timeout: int) -> list[dict]:
  """One result per (round, shape, allocator, contender, setting), settings innermost."""
  results, start = [], time.time()
  saved = os.environ.get('XLA_FLAGS')
  cases = [(r, s, a, c) for r in range(rounds) for s in shapes for a in allocators
           for c in contenders]
  try:
    for index, (round_index, shape, allocator, contender) in enumerate(cases):
      order = settings if (index + round_index) % 2 == 0 else settings[::-1]
      for setting in order:
        os.environ['XLA_FLAGS'] = with_flags(saved, setting)
        result = worker.spawn_worker(contender, shapes[shape], allocator, reps, warmup, timeout)
        results.append({'round': round_index, 'shape': shape, 'allocator': allocator,
                        'contender': contender, 'setting': setting, 'result': result})
        status = 'FAILED' if 'error' in result else (
            f"train {statistics.median(result['train']['times_ms']):.1f} ms, "
            f"infer {statistics.median(result['infer']['times_ms']):.1f} ms")
        print(f'[{time.time() - start:5.0f}s] {shape} {allocator} {contender} {setting}: '
              f'{status}', file=sys.stderr, flush=True)
  finally:
    if saved is None:
      os.environ.pop('XLA_FLAGS', None)
    else:
      os.environ['XLA_FLAGS'] = saved
  return results


def cause(error: str) -> str:
  """The line of a worker's error that says what happened (a fatal signal, an exception),
  else its last line; at most 160 characters."""
  lines = [line.strip() for line in error.splitlines() if line.strip()] or ['failed']
  found = next((line for line in lines if 'Fatal Python error' in line), None)
  found = found or next((line for line in reversed(lines) if 'Error' in line), lines[-1])
  return found[:160]


def summarise(results: list[dict]) -> list[dict]:
  """Per (shape, allocator, contender, setting, mode): the median ms over rounds' reps and
  the median over rounds of default ms / setting ms."""
  rows = []
  keys = sorted({(r['shape'], r['allocator'], r['contender'], r['setting']) for r in results},
                key=lambda k: (k[0], k[1], k[2], list(SETTINGS).index(k[3])))
  for shape, allocator, contender, setting in keys:
    same = [r for r in results if (r['shape'], r['allocator'], r['contender'], r['setting'])
            == (shape, allocator, contender, setting)]
    row = {'shape': shape, 'allocator': allocator, 'contender': contender, 'setting': setting}
    errors = [r['result']['error'] for r in same if 'error' in r['result']]
    if errors:
      row['error'] = cause(errors[0])
      rows.append(row)
      continue
    for mode in ('train', 'infer'):
      row[f'{mode}_ms'] = statistics.median(t for r in same for t in r['result'][mode]['times_ms'])
      ratios = []
      for r in same:
        base = next((d for d in results if d['setting'] == 'default' and d['round'] == r['round']
                     and (d['shape'], d['allocator'], d['contender']) == (shape, allocator, contender)
                     and 'error' not in d['result']), None)
        if base is not None:
          ratios.append(statistics.median(base['result'][mode]['times_ms'])
                        / statistics.median(r['result'][mode]['times_ms']))
      row[f'{mode}_vs_default'] = statistics.median(ratios) if ratios else None
    rows.append(row)
  return rows


def markdown(rows: list[dict], meta: dict) -> str:
  fmt = lambda v: '–' if v is None else f'{v:.2f}'
  lines = [f"# XLA:CPU flags against the default\n\nGenerated {meta['date']} by `{meta['command']}` "
           f"in {meta['wall_s']:.0f} s. Ratios: default ms / setting ms in the same round "
           '(> 1: the setting is faster), median over rounds.\n',
           '| shape | allocator | contender | setting | train ms | train vs default | '
           'infer ms | infer vs default |', '|---|---|---|---|---|---|---|---|']
  for r in rows:
    if 'error' in r:
      lines.append(f"| {r['shape']} | {r['allocator']} | {r['contender']} | {r['setting']} | "
                   f"failed: {r['error'].replace('|', '/')} | | | |")
      continue
    lines.append(f"| {r['shape']} | {r['allocator']} | {r['contender']} | {r['setting']} | "
                 f"{r['train_ms']:.1f} | {fmt(r['train_vs_default'])} | {r['infer_ms']:.1f} | "
                 f"{fmt(r['infer_vs_default'])} |")
  return '\n'.join(lines) + '\n'


def main(argv: list[str]) -> None:
  del argv
  unknown = [s for s in FLAGS.settings if s not in SETTINGS]
  unknown += [s for s in FLAGS.shapes if s not in SHAPES]
  if unknown:
    raise app.UsageError(f'unknown settings/shapes {unknown}; valid: {list(SETTINGS)} / '
                         f'{sorted(SHAPES)}')
  settings = ['default', *[s for s in FLAGS.settings if s != 'default']]
  if FLAGS.quick:
    shapes, settings, reps, warmup = dict(QUICK_SHAPES), ['default', 'vector_width_512'], 2, 0
  else:
    shapes, reps, warmup = {s: SHAPES[s] for s in FLAGS.shapes}, FLAGS.reps, FLAGS.warmup
  start = time.time()
  results = measure(shapes, settings, list(FLAGS.contenders), list(FLAGS.allocators), reps,
                    warmup, FLAGS.rounds, FLAGS.timeout)
  meta = {'date': datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z'),
          'command': ' '.join(['python -m benchmarks.xla_flags', *sys.argv[1:]]),
          'wall_s': time.time() - start, 'settings': {s: SETTINGS[s] for s in settings},
          'load_avg': os.getloadavg()}
  rows = summarise(results)
  out = pathlib.Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / 'xla_flags.json').write_text(json.dumps({'meta': meta, 'rows': rows, 'runs': results},
                                                 indent=1))
  (out / 'xla_flags.md').write_text(markdown(rows, meta))
  print((out / 'xla_flags.md').read_text())


if __name__ == '__main__':
  define_flags()
  app.run(main)
