r"""Recurrent-layer benchmark: seqnets cells vs flax.linen.RNN cells vs PyTorch.

One `make bench` invocation times a full training step (forward, backward, SGD
update; loss = mean(outputs²)) and inference (forward only) of every contender
on three shapes, under default glibc malloc and under a tuned malloc, and
writes `<out>/rnn_bench.md` (tables, ratios, targets) and `<out>/rnn_bench.json`
(every raw number). Method and files: benchmarks/README.md.

Usage:
  python -m benchmarks.rnn_bench --out=bench_results
  python -m benchmarks.rnn_bench --out=/tmp/b --shapes=b \
      --contenders=sn_lstm,flax_lstm,flax_optlstm --allocators=tuned --reps=10
  python -m benchmarks.rnn_bench --out=/tmp/b --from_json=bench_results/rnn_bench.json  # re-render
  python -m benchmarks.rnn_bench --out=/tmp/b --quick          # tiny shapes, 3 reps: smoke test
"""

from __future__ import annotations

import pathlib
import sys

from absl import app
from absl import flags

from benchmarks import report
from benchmarks import runner
from benchmarks import worker
from benchmarks.allocators import ALLOCATORS
from benchmarks.contenders import CONTENDERS, torch_importable
from benchmarks.shapes import LARGE_SHAPES, QUICK_SHAPES, SHAPES

FLAGS = flags.FLAGS
flags.DEFINE_string('out', 'bench_results', 'Directory for rnn_bench.md and rnn_bench.json.')
flags.DEFINE_list('shapes', list(SHAPES), 'Shapes to run, from '
                  f'{sorted(SHAPES) + sorted(LARGE_SHAPES)}.')
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


def main(argv: list[str]) -> None:
  del argv
  if FLAGS.worker:
    worker.worker_main(FLAGS.worker, FLAGS.worker_shape, FLAGS.reps, FLAGS.warmup,
                       FLAGS.worker_out)
    return

  out = pathlib.Path(FLAGS.out)
  if FLAGS.from_json:
    report.write(report.from_json(pathlib.Path(FLAGS.from_json)), out)
    return

  unknown = [n for n in FLAGS.contenders if n not in CONTENDERS]
  unknown += [a for a in FLAGS.allocators if a not in ALLOCATORS]
  if unknown:
    raise app.UsageError(f'unknown contender/allocator {unknown}; valid: '
                         f'{list(CONTENDERS)} / {list(ALLOCATORS)}')
  if FLAGS.quick:
    shapes, reps, warmup = dict(QUICK_SHAPES), 3, 1
  else:
    known = {**SHAPES, **LARGE_SHAPES}
    bad = [s for s in FLAGS.shapes if s not in known]
    if bad:
      raise app.UsageError(f'unknown shapes {bad}; valid: {sorted(known)}')
    shapes, reps, warmup = {s: known[s] for s in FLAGS.shapes}, FLAGS.reps, FLAGS.warmup
  names = list(FLAGS.contenders)
  if not torch_importable():
    dropped = [n for n in names if CONTENDERS[n].framework == 'torch']
    names = [n for n in names if CONTENDERS[n].framework != 'torch']
    if dropped:
      print(f'PyTorch not importable: skipping {dropped}', file=sys.stderr)
  results = runner.run_benchmark(shapes, names, list(FLAGS.allocators), reps, warmup,
                                 FLAGS.rounds, FLAGS.timeout, FLAGS.retries)
  report.write(results, out)
  print((out / 'rnn_bench.md').read_text())


if __name__ == '__main__':
  app.run(main)
