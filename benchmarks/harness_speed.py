"""Steps per second of the training loop (`seqnets.training.loop`) on shipped configs.

  python -m benchmarks.harness_speed --rounds=3                     # this tree
  python -m benchmarks.harness_speed --trees=before:/tmp/old,after:. --rounds=3

Each measurement is one fresh process (`--worker`) that trains one case with
`loop.train_and_evaluate` and times the steps after the first `WARMUP` (compiling
excluded) up to the last one, log, checkpoint and evaluation points included; with
several trees the rounds alternate between them, so both see the same machine load.
Cases: `char_lm_smoke` (configs/char_lm.py's smoke model, dispatch-bound: what the
harness costs per step shows), `char_lm` (the full model, a few steps, a checkpoint every
20) and `digits_cnn` (configs/digits_cnn.py). The char LM reads a text the worker writes
itself (made-up words, fixed seed). Prints one JSON line per measurement and a Markdown
table of the medians; the time the main thread spent in checkpoint saves is reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

WARMUP = 10
CASES = {
    # name: (config file, mode, overrides)
    'char_lm_smoke': ('configs/char_lm.py', 'smoke', dict(
        data=dict(validation_fraction=0.01),
        train=dict(num_train_steps=1510, log_every_steps=50, checkpoint_every_steps=500),
        evals=dict(validation=dict(every_steps=500)))),
    'char_lm': ('configs/char_lm.py', None, dict(
        data=dict(validation_fraction=0.01),
        train=dict(num_train_steps=70, log_every_steps=10, checkpoint_every_steps=20),
        evals=dict(validation=dict(every_steps=0)))),
    'digits_cnn': ('configs/digits_cnn.py', None, dict(
        train=dict(num_train_steps=610, log_every_steps=100, checkpoint_every_steps=200),
        evals=dict(test=dict(every_steps=300)))),
}


def write_text(path: pathlib.Path, chars: int = 1_200_000) -> None:
  """Made-up English-like text (fixed seed) of about `chars` characters."""
  import numpy as np
  rng = np.random.default_rng(0)
  words = [''.join(rng.choice(list('etaoinshrdlucmfwypvbgk'), rng.integers(1, 9)))
           for _ in range(3000)]
  lines, size = [], 0
  while size < chars:
    line = ' '.join(rng.choice(words, rng.integers(3, 12))).capitalize() + '.'
    lines.append(line)
    size += len(line) + 1
  path.write_text('\n'.join(lines) + '\n')


def config_of(case: str, root: pathlib.Path, workdir: pathlib.Path):
  import importlib.util
  file, mode, overrides = CASES[case]
  spec = importlib.util.spec_from_file_location('bench_config', root / file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(mode)
  for section, values in overrides.items():
    for key, value in values.items():
      if isinstance(value, dict):
        config[section][key].update(value)
      else:
        config[section][key] = value
  if case.startswith('char_lm'):
    text = workdir.parent / 'text.txt'
    write_text(text)
    config.data.path = str(text)
  return config


def worker(case: str, workdir: pathlib.Path) -> dict:
  """Trains `case` in `workdir` (this process's tree) and times it."""
  from seqnets import command_line
  command_line.keep_freed_memory()
  import jax
  from seqnets.training import checkpoints, loop
  root = pathlib.Path(loop.__file__).resolve().parents[2]
  config = config_of(case, root, workdir)
  total = config.train.num_train_steps
  marks, saves = {}, []

  def mark(step, state):
    if step in (WARMUP, total):
      jax.block_until_ready(state)
      marks[step] = time.perf_counter()

  save = checkpoints.Checkpointer.save

  def timed_save(self, *args, **kwargs):
    start = time.perf_counter()
    save(self, *args, **kwargs)
    saves.append(time.perf_counter() - start)

  checkpoints.Checkpointer.save = timed_save
  started = time.perf_counter()
  loop.train_and_evaluate(config, workdir / 'run', hooks=[mark])
  ended = time.perf_counter()
  steps = total - WARMUP
  return {'case': case, 'steps_per_s': steps / (marks[total] - marks[WARMUP]),
          'measured_steps': steps, 'run_s': ended - started,
          'save_blocking_s': sorted(saves), 'load': os.getloadavg()[0]}


def run_worker(tree: pathlib.Path, case: str) -> dict:
  env = dict(os.environ, PYTHONPATH=str(tree), JAX_PLATFORMS='cpu', TF_CPP_MIN_LOG_LEVEL='3')
  env.pop('JAX_COMPILATION_CACHE_DIR', None)
  with tempfile.TemporaryDirectory(prefix='harness_speed_') as tmp:
    done = subprocess.run([sys.executable, '-m', 'benchmarks.harness_speed', '--worker', case,
                           '--workdir', f'{tmp}/w'], cwd=tree, env=env, capture_output=True,
                          text=True, check=False)
  if done.returncode:
    raise RuntimeError(f'{tree} {case}: {done.stderr[-3000:]}')
  return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict], trees: list[str]) -> str:
  lines = ['| case | ' + ' | '.join(f'{t} steps/s' for t in trees) + ' | ratio |',
           '|---|' + '---:|' * (len(trees) + 1)]
  for case in dict.fromkeys(r['case'] for r in results):
    medians = [statistics.median(r['steps_per_s'] for r in results
                                 if r['case'] == case and r['tree'] == t) for t in trees]
    ratio = f'{medians[-1] / medians[0]:.2f}×' if len(trees) > 1 else ''
    lines.append(f'| {case} | ' + ' | '.join(f'{m:.1f}' for m in medians) + f' | {ratio} |')
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--worker', choices=sorted(CASES))
  parser.add_argument('--workdir', type=pathlib.Path)
  parser.add_argument('--trees', default='this:.', help='name:path,... (alternated per round)')
  parser.add_argument('--cases', default=','.join(CASES))
  parser.add_argument('--rounds', type=int, default=3)
  args = parser.parse_args()
  if args.worker:
    args.workdir.mkdir(parents=True)
    print(json.dumps(worker(args.worker, args.workdir)))
    return
  trees = [(name, pathlib.Path(path).resolve())
           for name, _, path in (t.partition(':') for t in args.trees.split(','))]
  results = []
  for round_index in range(args.rounds):
    for case in args.cases.split(','):
      order = trees if round_index % 2 == 0 else trees[::-1]
      for name, path in order:
        result = dict(run_worker(path, case), tree=name, round=round_index)
        print(json.dumps(result), flush=True)
        results.append(result)
  print(table(results, [name for name, _ in trees]))


if __name__ == '__main__':
  main()
