r"""One check of seqnets on the machine's accelerator (or its CPU): correctness, then speed.

  python -m benchmarks.device_check --out=DIR            # sized for < 8 minutes on a GPU
  python -m benchmarks.device_check --out=DIR --quick    # tiny shapes, ~20 s on 2 CPU cores
  make device-check                                      # --out=device_check_results

Sections, in order (`--sections` picks some):
  environment  versions of jax, jaxlib, flax, optax, torch; the devices.
  gradients    every cell with a fused kernel: `sn.RNN` fused (both variants, the input
               projection in the loop and hoisted) vs plain scan, outputs and
               parameter/input gradients at 'highest' matmul precision, lengths with a 0.
  cudnn        `sn.LSTMCell` (2 bidirectional layers) through cuDNN's LSTM with the packed
               weights (on a GPU; off one, JAX's pure reference of the cuDNN layout)
               against the fused kernel.
  smoke        shipped configs' smoke modes train a few steps on the device: the loss is
               finite and falls (configs whose data files are missing are skipped).
  speed        LSTM and GRU train step and inference on the `make bench` shapes and a
               large one (B 256, T 512, H 1024): seqnets ('auto', 'fused' with the
               platform's unroll and with 1, 'fused_in_loop', 'cudnn') against flax's
               `OptimizedLSTMCell`/`GRUCell` and PyTorch's cuDNN
               `nn.LSTM`/`nn.GRU` (TF32 allowed on both sides), float32 and bfloat16.
  throughput   tokens per second of a training step of `configs/char_lm.py`'s and
               `configs/multi30k.py`'s models (random tokens of the configs' batch shapes),
               float32 and bfloat16; peak device memory where the device reports it.

Writes `DIR/device_check.json` (every number) and `DIR/device_check.md` (tables). Exit
status 1 when a correctness check failed. A section that raises is recorded as an
error and the others still run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import json
import math
import pathlib
import platform
import sys
import tempfile
import time
import traceback
from typing import Any, Callable

from absl import app
from absl import flags

SECTIONS = ('environment', 'gradients', 'cudnn', 'smoke', 'speed', 'throughput')
FLAGS = flags.FLAGS
flags.DEFINE_string('out', 'device_check_results', 'Directory for device_check.{json,md}.')
flags.DEFINE_bool('quick', False, 'Tiny shapes, few cells and configs: a smoke test (CPU).')
flags.DEFINE_list('sections', list(SECTIONS), f'Sections to run, from {list(SECTIONS)}.')
flags.DEFINE_integer('reps', 10, 'Timed repetitions per speed measurement.')

# Shapes (B, T, E, H): `make bench`'s and a large one; `--quick`: one tiny shape.
SPEED_SHAPES = {'a': (32, 128, 128, 256), 'b': (64, 256, 256, 512), 'c': (128, 64, 64, 128),
                'large': (256, 512, 1024, 1024)}
QUICK_SHAPES = {'quick': (4, 12, 8, 16)}
GRADIENT_TOLERANCE = 1e-4     # relative to the largest magnitude, at 'highest' precision
SMOKE_CONFIGS = ('anbn', 'reverse', 'digit_strings', 'digits_cnn', 'long_memory', 'bottleneck',
                 'char_lm', 'task_lm', 'sst2_rnn', 'text_cnn', 'udpos', 'wnut17', 'multi30k')
QUICK_SMOKE_CONFIGS = ('anbn',)


def environment(quick: bool) -> dict:
  del quick
  import jax
  versions = {}
  for name in ('jax', 'jaxlib', 'flax', 'optax', 'orbax.checkpoint', 'numpy', 'torch'):
    try:
      versions[name] = importlib.import_module(name).__version__
    except (ImportError, AttributeError):
      versions[name] = None
  devices = jax.devices()
  return {'python': platform.python_version(), 'versions': versions,
          'backend': jax.default_backend(), 'device_count': len(devices),
          'device_kind': devices[0].device_kind, 'platform': devices[0].platform,
          'ok': True}


def _relative_error(a, b) -> float:
  import numpy as np
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)) if b.size else 0.0


def _tree_error(a, b) -> float:
  import jax
  return max([_relative_error(x, y) for x, y in zip(jax.tree_util.tree_leaves(a),
                                                     jax.tree_util.tree_leaves(b))] or [0.0])


def _cells(quick: bool) -> dict[str, Callable[[int], Any]]:
  import seqnets as sn
  cells = {'lstm': lambda h: sn.LSTMCell(h)}
  if not quick:
    cells.update({
        'gru': lambda h: sn.GRUCell(h),
        'elman': lambda h: sn.ElmanCell(h),
        'lstm_peepholes': lambda h: sn.LSTMCell(h, use_peepholes=True),
        'gru_reset_after': lambda h: sn.GRUCell(h, reset_after=True),
        'leaky': lambda h: sn.LeakyRNNCell(h, leak=0.5, learn_leak=True),
        'orthogonal': lambda h: sn.OrthogonalRNNCell(h),
    })
  return cells


def _loss_and_grads(layer, params, x, lengths):
  import jax
  import jax.numpy as jnp

  def loss(p, inputs):
    y = layer.apply(p, inputs, lengths=lengths)
    return jnp.sum(y * jnp.cos(jnp.arange(y.size, dtype=y.dtype).reshape(y.shape))), y
  (_, y), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(params, x)
  return y, grads


def gradients(quick: bool) -> dict:
  """Fused kernel against the plain scan for every cell, lengths with a 0."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  import seqnets as sn
  batch, steps, features, hidden = (3, 5, 4, 6) if quick else (8, 33, 16, 32)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(batch, steps, features)), jnp.float32)
  lengths = jnp.asarray([steps, 0] + [int(n) for n in rng.integers(1, steps, batch - 2)])
  rows = {}
  with jax.default_matmul_precision('highest'):
    for name, cell in _cells(quick).items():
      scan = sn.RNN(cell(hidden), implementation='scan')
      params = jax.jit(scan.init)(jax.random.key(0), x)
      y_scan, g_scan = _loss_and_grads(scan, params, x, lengths)
      error = 0.0
      for variant in ('fused_in_loop', 'fused_hoisted'):
        y_fused, g_fused = _loss_and_grads(sn.RNN(cell(hidden), implementation=variant),
                                           params, x, lengths)
        error = max(error, _relative_error(y_fused, y_scan), _tree_error(g_fused, g_scan))
      rows[name] = {'max_relative_error': error, 'ok': error <= GRADIENT_TOLERANCE}
  return {'shape': [batch, steps, features, hidden], 'lengths': [int(n) for n in lengths],
          'tolerance': GRADIENT_TOLERANCE, 'cells': rows,
          'ok': all(row['ok'] for row in rows.values())}


def cudnn(quick: bool) -> dict:
  """A 2-layer bidirectional `sn.LSTMCell` stack through cuDNN's LSTM with the packed
  weights (`cudnn_lstm.lstm`; off a GPU, JAX's pure reference of the cuDNN layout)
  against the fused kernel: outputs and gradients."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  import seqnets as sn
  from seqnets.layers import cudnn_lstm
  batch, steps, features, hidden = (3, 5, 4, 6) if quick else (16, 40, 32, 64)
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(batch, steps, features)), jnp.float32)
  lengths = jnp.asarray([steps, 0] + [int(n) for n in rng.integers(1, steps, batch - 2)])
  both = lambda: sn.Bidirectional(sn.RNN(sn.LSTMCell(hidden)), sn.RNN(sn.LSTMCell(hidden)))
  stack = sn.StackedRNN([both()] if quick else [both(), both()])
  weight = jnp.cos(jnp.arange(batch * steps * 2 * hidden, dtype=jnp.float32)).reshape(
      batch, steps, 2 * hidden)
  fused = lambda p, inputs: stack.apply({'params': p}, inputs, lengths, deterministic=True)
  packed = lambda p, inputs: cudnn_lstm.lstm(p, inputs, lengths)[1]
  with jax.default_matmul_precision('highest'):
    params = jax.jit(lambda: stack.init(jax.random.key(0), x, lengths,
                                        deterministic=True))()['params']
    results = {}
    for name, run in (('fused', fused), ('cudnn', packed)):
      value_and_grad = jax.value_and_grad(lambda p, inputs: jnp.sum(run(p, inputs) * weight),
                                          argnums=(0, 1))
      results[name] = (jax.jit(run)(params, x), jax.jit(value_and_grad)(params, x)[1])
  error = max(_relative_error(results['cudnn'][0], results['fused'][0]),
              _tree_error(results['cudnn'][1], results['fused'][1]))
  return {'route': 'cuDNN' if jax.default_backend() == 'gpu' else 'lstm_ref (no GPU)',
          'shape': [batch, steps, features, hidden], 'max_relative_error': error,
          'ok': error <= GRADIENT_TOLERANCE}


def _config(name: str, mode: str | None):
  """`configs/<name>.py`'s `get_config(mode)` (the repository root joins `sys.path`)."""
  repo = str(pathlib.Path(__file__).resolve().parent.parent)
  if repo not in sys.path:
    sys.path.insert(0, repo)
  return importlib.import_module(f'configs.{name}').get_config(mode)


def _losses(workdir: pathlib.Path) -> list[float]:
  from seqnets.training import writers
  return [r['train/loss'] for r in writers.read_metrics(workdir)
          if 'train/loss' in r and r.get('seed', 0) == 0]


def smoke(quick: bool) -> dict:
  """Each config's smoke mode, a few steps on the device: finite, falling loss."""
  from seqnets.training import loop
  steps = 6 if quick else 20
  rows = {}
  for name in (QUICK_SMOKE_CONFIGS if quick else SMOKE_CONFIGS):
    config = _config(name, 'smoke')
    with config.unlocked():
      config.train.num_train_steps = steps
      config.train.log_every_steps = steps // 3
      config.train.checkpoint_every_steps = steps
    with tempfile.TemporaryDirectory() as workdir:
      start = time.perf_counter()
      try:
        loop.train_and_evaluate(config, workdir)
      except FileNotFoundError as error:      # a config whose data files are not here
        rows[name] = {'skipped': str(error).split('.')[0], 'ok': True}
        continue
      losses = _losses(pathlib.Path(workdir))
    finite = all(math.isfinite(v) for v in losses)
    rows[name] = {'losses': losses, 'seconds': time.perf_counter() - start,
                  'ok': bool(losses) and finite and losses[-1] < losses[0]}
  return {'steps': steps, 'configs': rows, 'ok': all(r['ok'] for r in rows.values())}


@dataclasses.dataclass(frozen=True)
class Contender:
  label: str
  kind: str                      # 'lstm' | 'gru'
  build: Callable[[int, Any], Any] | None = None      # (hidden, dtype) -> flax module
  torch: str | None = None       # a torch.nn class name


def _contenders(quick: bool, on_gpu: bool) -> list[Contender]:
  from flax import linen as nn
  import seqnets as sn
  lstm = lambda impl, unroll=None: (lambda h, d: sn.RNN(sn.LSTMCell(h, dtype=d),
                                                        implementation=impl, unroll=unroll))
  found = [Contender("seqnets LSTM 'fused'", 'lstm', lstm('fused'))]
  if quick:
    return found
  found += [Contender('seqnets GRU (reset_after)', 'gru',
                      lambda h, d: sn.RNN(sn.GRUCell(h, reset_after=True, dtype=d))),
            Contender('flax OptimizedLSTMCell', 'lstm',
                      lambda h, d: nn.RNN(nn.OptimizedLSTMCell(h, dtype=d))),
            Contender("seqnets LSTM 'auto'", 'lstm', lstm('auto')),
            Contender("seqnets LSTM 'fused' unroll 1", 'lstm', lstm('fused', 1)),
            Contender("seqnets LSTM 'fused_in_loop'", 'lstm', lstm('fused_in_loop')),
            Contender("seqnets LSTM 'scan'", 'lstm', lstm('scan')),
            Contender('flax GRUCell', 'gru', lambda h, d: nn.RNN(nn.GRUCell(h, dtype=d)))]
  if on_gpu:
    found.append(Contender("seqnets LSTM 'cudnn'", 'lstm', lstm('cudnn')))
  found += [Contender('torch nn.LSTM', 'lstm', torch='LSTM'),
            Contender('torch nn.GRU', 'gru', torch='GRU')]
  return found


def _time_jax(module, shape, reps: int) -> dict:
  from benchmarks import measure
  result = measure.measure_jax(module, shape, reps, warmup=2)
  return {mode: min(result[mode]['times_ms']) for mode in ('train', 'infer')}


def _time_torch(name: str, shape, dtype: str, reps: int) -> dict | None:
  """PyTorch's layer on the GPU (cuDNN), TF32 allowed as JAX's default precision allows it."""
  try:
    import torch
  except ImportError:
    return None
  if not torch.cuda.is_available():
    return None
  from benchmarks import measure
  torch.backends.cuda.matmul.allow_tf32 = True
  torch.backends.cudnn.allow_tf32 = True
  batch, steps, features, hidden = shape
  layer = getattr(torch.nn, name)(features, hidden, batch_first=True).to(
      'cuda', getattr(torch, dtype))
  x = torch.randn(batch, steps, features, device='cuda', dtype=getattr(torch, dtype))
  optimizer = torch.optim.SGD(layer.parameters(), lr=1e-3)

  def train():
    optimizer.zero_grad(set_to_none=True)
    layer(x)[0].float().pow(2).mean().backward()
    optimizer.step()
    torch.cuda.synchronize()

  def infer():
    with torch.inference_mode():
      layer(x)
    torch.cuda.synchronize()
  return {'train': min(measure.time_reps(train, reps, 2)[1]),
          'infer': min(measure.time_reps(infer, reps, 2)[1])}


def speed(quick: bool, reps: int) -> dict:
  import jax
  import jax.numpy as jnp
  on_gpu = jax.default_backend() == 'gpu'
  shapes = QUICK_SHAPES if quick else SPEED_SHAPES
  dtypes = ('float32',) if quick else ('float32', 'bfloat16')
  rows = []
  for shape_name, shape in shapes.items():
    for dtype in dtypes:
      for contender in _contenders(quick, on_gpu):
        row = {'shape': shape_name, 'dims': list(shape), 'dtype': dtype,
               'contender': contender.label, 'kind': contender.kind}
        try:
          if contender.torch:
            times = _time_torch(contender.torch, shape, dtype, reps)
            if times is None:
              continue
          else:
            times = _time_jax(contender.build(shape[3], getattr(jnp, dtype)), shape,
                              2 if quick else reps)
          row.update(train_ms=times['train'], infer_ms=times['infer'])
        except Exception as error:  # pylint: disable=broad-except  (one row, not the check)
          row['error'] = f'{type(error).__name__}: {str(error).splitlines()[0][:200]}'
        rows.append(row)
  return {'rows': rows, 'ok': True}


def _peak_memory() -> int | None:
  import jax
  stats = jax.devices()[0].memory_stats() or {}
  return stats.get('peak_bytes_in_use')


def throughput(quick: bool, reps: int) -> dict:
  """Tokens per second of a training step (Adam) of the char LM and Multi30k models."""
  import jax
  import jax.numpy as jnp
  import ml_collections
  import numpy as np
  import optax
  from seqnets.models import factory
  from seqnets.tasks import DataInfo
  from benchmarks import measure
  rng = np.random.default_rng(0)
  rows = []
  for name, mode in ((('char_lm', 'smoke'),) if quick else (('char_lm', None),
                                                            ('multi30k', None))):
    config = _config(name, mode)
    for dtype in (('float32',) if quick else ('float32', 'bfloat16')):
      model_config = ml_collections.ConfigDict(config.model.to_dict())
      model_config.dtype = dtype
      if name == 'char_lm':
        vocab, batch, steps = 65, config.data.batch_size, config.data.bptt
        info = DataInfo(vocab_size=vocab, num_outputs=vocab)
        tokens = jnp.asarray(rng.integers(1, vocab, (batch, steps + 1)))
        args = (tokens[:, :-1], jnp.full((batch,), steps))
        targets, counted = tokens[:, 1:], batch * steps
      else:
        vocab, batch, steps = 4000, config.data.get('batch_size', 64), 24
        info = DataInfo(vocab_size=vocab, num_outputs=vocab)
        source = jnp.asarray(rng.integers(4, vocab, (batch, steps)))
        target = jnp.asarray(rng.integers(4, vocab, (batch, steps + 1)))
        full = jnp.full((batch,), steps)
        args = (source, full, target[:, :-1], full)
        targets, counted = target[:, 1:], batch * steps * 2
      model = factory.from_config(model_config, info)
      params = jax.jit(lambda: model.init(jax.random.key(0), *args, deterministic=True))()
      tx = optax.adam(1e-3)

      def loss(p, key):
        logits = model.apply(p, *args, deterministic=False, rngs={'dropout': key})
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

      @functools.partial(jax.jit, donate_argnums=(0, 1))
      def step(p, opt, key):
        value, grads = jax.value_and_grad(loss)(p, key)
        updates, opt = tx.update(grads, opt, p)
        return optax.apply_updates(p, updates), opt, value

      state = {'p': params, 'opt': tx.init(params)}

      def run():
        state['p'], state['opt'], value = step(state['p'], state['opt'], jax.random.key(1))
        jax.block_until_ready(value)
      best_ms = min(measure.time_reps(run, 2 if quick else reps, 1)[1])
      rows.append({'config': name, 'dtype': dtype, 'batch': batch, 'steps': steps,
                   'step_ms': best_ms, 'tokens_per_s': counted / (best_ms / 1e3)})
  return {'rows': rows, 'peak_memory_bytes': _peak_memory(), 'ok': True}


def render(results: dict) -> str:
  """The Markdown report of `results`."""
  env = results.get('environment', {})
  lines = ['# seqnets device check', '',
           f"{env.get('device_count', '?')} × {env.get('device_kind', '?')} "
           f"({env.get('backend', '?')}), jax {env.get('versions', {}).get('jax')}, "
           f"torch {env.get('versions', {}).get('torch')}; quick={results['quick']}; "
           f"{results['seconds']:.0f} s.", '',
           '| check | result |', '|---|---|']
  for section in ('gradients', 'cudnn', 'smoke'):
    value = results.get(section)
    if value is not None:
      lines.append(f"| {section} | {'ok' if value.get('ok') else 'FAILED'} "
                   f"{value.get('error', '')} |")
  for name, row in results.get('gradients', {}).get('cells', {}).items():
    lines.append(f"| gradients: {name} | {row['max_relative_error']:.1e} |")
  for name, row in results.get('smoke', {}).get('configs', {}).items():
    value = row.get('skipped') or ' → '.join(f'{v:.3f}' for v in row['losses'][::2])
    lines.append(f'| smoke: {name} | {value} |')
  speed_rows = results.get('speed', {}).get('rows', [])
  if speed_rows:
    lines += ['', '| shape | dtype | contender | train ms | inference ms |',
              '|---|---|---|---|---|']
    for row in speed_rows:
      if 'error' in row:
        lines.append(f"| {row['shape']} | {row['dtype']} | {row['contender']} | "
                     f"{row['error']} | |")
      else:
        lines.append(f"| {row['shape']} | {row['dtype']} | {row['contender']} | "
                     f"{row['train_ms']:.2f} | {row['infer_ms']:.2f} |")
  tokens = results.get('throughput', {})
  if tokens.get('rows'):
    lines += ['', '| config | dtype | batch × steps | step ms | tokens/s |',
              '|---|---|---|---|---|']
    for row in tokens['rows']:
      lines.append(f"| {row['config']} | {row['dtype']} | {row['batch']} × {row['steps']} | "
                   f"{row['step_ms']:.1f} | {row['tokens_per_s']:,.0f} |")
    lines += ['', f"Peak device memory: {tokens.get('peak_memory_bytes')} bytes."]
  return '\n'.join(lines) + '\n'


def run(sections, quick: bool, reps: int) -> dict:
  """Runs `sections` in order; each section's dict has 'ok' (or 'error')."""
  functions = {'environment': environment, 'gradients': gradients, 'cudnn': cudnn,
               'smoke': smoke, 'speed': functools.partial(speed, reps=reps),
               'throughput': functools.partial(throughput, reps=reps)}
  start = time.perf_counter()
  results: dict[str, Any] = {'quick': quick}
  for section in sections:
    begun = time.perf_counter()
    try:
      results[section] = functions[section](quick)
    except Exception as error:  # pylint: disable=broad-except  (recorded; the rest still runs)
      results[section] = {'ok': False, 'error': f'{type(error).__name__}: {error}',
                          'traceback': traceback.format_exc()}
    results[section]['seconds'] = time.perf_counter() - begun
  results['seconds'] = time.perf_counter() - start
  results['ok'] = all(results[s].get('ok', False) for s in sections)
  return results


def main(argv: list[str]) -> None:
  del argv
  unknown = [s for s in FLAGS.sections if s not in SECTIONS]
  if unknown:
    raise app.UsageError(f'--sections: {unknown[0]!r} is not a section; valid: {list(SECTIONS)}')
  results = run(FLAGS.sections, FLAGS.quick, FLAGS.reps)
  out = pathlib.Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / 'device_check.json').write_text(json.dumps(results, indent=1) + '\n')
  (out / 'device_check.md').write_text(render(results))
  print(render(results))
  if not results['ok']:
    sys.exit(1)


if __name__ == '__main__':
  app.run(main)
