"""Running the whole benchmark: interleaved rounds of fresh workers, repeats of
disturbed workers, and the report's run metadata.

Round r runs the contenders (and, for each, the allocators) in forward order
when r is even and in reverse order when r is odd, spreading the VM's drift
over all contenders.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import pathlib
import platform
import shlex
import sys
import time

from benchmarks import worker
from benchmarks.allocators import ALLOCATORS
from benchmarks.contenders import CONTENDERS
from benchmarks.measure import LEARNING_RATE
from benchmarks.summary import evaluate_targets, percentile, summarise

# A worker whose slower speed probe (before or after its measurement) is below this
# fraction of the best probe of the same framework so far ran while other processes
# used the cores (or in one of the VM's slow modes); it is repeated (`--retries`). The
# reference is the best probe, not the median: on a busy machine most probes are low.
DISTURBED_PROBE_FRACTION = 0.6


def _disturbed(result: dict, earlier_probes: list[float]) -> bool:
  if len(earlier_probes) < 4:
    return False
  return min(result['speed_probe_gflops']) < DISTURBED_PROBE_FRACTION * max(earlier_probes)


def interleaved_plan(shapes: list[str], names: list[str], allocators: list[str],
                     rounds: int) -> list[tuple[str, int, str, str]]:
  """(shape, round, contender, allocator) of every worker, in running order."""
  plan = []
  for shape in shapes:
    for round_index in range(rounds):
      step = 1 if round_index % 2 == 0 else -1
      for name in names[::step]:
        for allocator in allocators[::step]:
          plan.append((shape, round_index, name, allocator))
  return plan


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


def run_benchmark(shapes: dict[str, tuple[int, ...]], names: list[str], allocators: list[str],
                  reps: int, warmup: int, rounds: int, timeout: int, retries: int = 1) -> dict:
  """Runs every worker of the plan; returns the report (meta, summary, targets, runs)."""
  start = time.time()
  plan = interleaved_plan(list(shapes), names, allocators, rounds)
  runs = []
  probes: dict[str, list[float]] = {'jax': [], 'torch': []}
  # At most ~15 % extra workers: on a machine that stays busy, repeating does not help.
  retry_budget = max(4, len(plan) * 15 // 100) if retries else 0
  for index, (shape, round_index, name, allocator) in enumerate(plan):
    framework = 'torch' if CONTENDERS[name].framework == 'torch' else 'jax'
    discarded = []
    for attempt in range(retries + 1):
      result = worker.spawn_worker(name, shapes[shape], allocator, reps, warmup, timeout)
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
  return {
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
          'load_avg_1min': ([min(loads), percentile(loads, 50), max(loads)] if loads else None),
          'omp_wait_policy': os.environ.get('OMP_WAIT_POLICY'),
      },
      'summary': summary,
      'targets': evaluate_targets(summary),
      'runs': runs,
  }
