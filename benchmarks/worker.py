"""The worker: one contender on one shape, measured in a fresh process.

`spawn_worker` starts `python -m benchmarks.rnn_bench --worker=<name>` with the
allocator's environment, so thread pools, malloc state and compile caches never
leak between contenders; inside it, `run_worker` measures and the result comes
back as JSON through a file.
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

from benchmarks import allocators
from benchmarks import contenders
from benchmarks import measure


def _peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # Linux: KiB


def speed_probe(framework: str) -> float:
  """GFLOP/s of a 1024³ matmul in this process (median of 5 after 1 warm-up).

  Run before and after the measurement: a low value means other processes
  were using the cores, and the runner repeats the worker (`--retries`).
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


def run_worker(name: str, shape: tuple[int, int, int, int], reps: int, warmup: int) -> dict:
  """Measures contender `name` on `shape` in this process; returns a JSON-able dict."""
  contender = contenders.CONTENDERS[name]
  load_before = os.getloadavg()[0]
  if contender.framework == 'torch':
    import torch
    torch.set_num_threads(2)
    probe_before = speed_probe('torch')
    result = measure.measure_torch(name, shape, reps, warmup)
    result['versions'] = {'torch': torch.__version__}
  else:
    import flax
    import jax
    probe_before = speed_probe('jax')
    if name in contenders.NNX_CONTENDERS:
      result = measure.measure_nnx(contenders.build_nnx_module(name, shape[2], shape[3]), shape,
                                   reps, warmup)
    else:
      result = measure.measure_jax(contenders.build_flax_module(name, shape[3]), shape, reps,
                                   warmup)
    result['versions'] = {'jax': jax.__version__, 'flax': flax.__version__}
  result['speed_probe_gflops'] = [probe_before, speed_probe(contender.framework)]
  result.update(contender=name, shape=list(shape), peak_rss_mb=_peak_rss_mb(),
                malloc_env={k: os.environ.get(k) for k in allocators.TUNED_MALLOC},
                load_avg_1min=[load_before, os.getloadavg()[0]])
  return result


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
      proc = subprocess.run(cmd, cwd=root, env=allocators.worker_env(allocator),
                            capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
      return {'error': f'timeout after {timeout} s'}
    if proc.returncode != 0 or not out.exists():
      return {'error': f'exit {proc.returncode}: {proc.stderr.strip()[-2000:]}'}
    return json.loads(out.read_text())


def worker_main(name: str, shape: str, reps: int, warmup: int, out: str) -> None:
  """Worker mode: measures `name` on `shape` ('B,T,E,H') and writes the JSON to `out`."""
  result = run_worker(name, tuple(int(v) for v in shape.split(',')), reps, warmup)
  pathlib.Path(out).write_text(json.dumps(result))
