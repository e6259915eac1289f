r"""What each recurrent regulariser costs in training, against the fused LSTM kernel.

One process, one shape (B=32, T=64, F=H=128, an LSTM): a jitted training-mode
forward + backward (`value_and_grad` of mean(y²)) per variant, compiled first,
then `--repeats` interleaved rounds of `--steps` calls each; a variant's time per
step is the median over rounds. A rough single-machine figure, not `make bench`:
no allocator control, no worker isolation.

Usage:
  python -m benchmarks.regularizer_cost                      # markdown table on stdout
  python -m benchmarks.regularizer_cost --steps=20 --repeats=3
"""

from __future__ import annotations

import os
import statistics
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

import seqnets as sn
from seqnets.layers import rnn as rnn_lib

FLAGS = flags.FLAGS
flags.DEFINE_integer('steps', 40, 'Forward + backward calls per round and variant.')
flags.DEFINE_integer('repeats', 7, 'Interleaved rounds; the median is reported.')

B, T, F, H = 32, 64, 128, 128
RATE = 0.25
# name -> (cell attributes, RNN attributes)
VARIANTS = {
    'fused kernel (no regulariser)': ({}, {}),
    'plain scan (no regulariser, fused=False)': ({}, dict(fused=False)),
    'weight drop': (dict(weight_drop_rate=RATE), {}),
    'variational, inputs only': ({}, dict(variational_input_rate=RATE)),
    'variational, inputs and state': ({}, dict(variational_input_rate=RATE,
                                               variational_state_rate=RATE)),
    'update dropout': (dict(update_dropout_rate=RATE), {}),
    'zoneout': (dict(zoneout_rate=RATE), {}),
    'layer norm': (dict(layer_norm=True), {}),
}


def training_step(cell_kw, rnn_kw, x):
  layer = sn.RNN(sn.LSTMCell(H, **cell_kw), **rnn_kw)
  params = layer.init(jax.random.key(0), x, deterministic=True)

  def loss(p, key):
    y = layer.apply(p, x, deterministic=False, rngs={'dropout': key})
    return jnp.mean(y ** 2)

  fused = layer.fused and rnn_lib.uses_fused_kernel(layer.cell, False) and not rnn_kw.get(
      'variational_state_rate')
  return jax.jit(jax.value_and_grad(loss)), params, fused


def main(argv):
  del argv
  x = jnp.asarray(np.random.default_rng(0).normal(size=(B, T, F)), jnp.float32)
  steps, times = {}, {name: [] for name in VARIANTS}
  for name, (cell_kw, rnn_kw) in VARIANTS.items():
    step, params, fused = training_step(cell_kw, rnn_kw, x)
    jax.block_until_ready(step(params, jax.random.key(0)))               # compile
    steps[name] = (step, params, fused)
  for _ in range(FLAGS.repeats):
    for name, (step, params, _) in steps.items():
      keys = jax.random.split(jax.random.key(1), FLAGS.steps)
      start = time.perf_counter()
      for key in keys:
        out = step(params, key)
      jax.block_until_ready(out)
      times[name].append((time.perf_counter() - start) / FLAGS.steps)
  base = statistics.median(times['fused kernel (no regulariser)'])
  print(f'LSTM B={B} T={T} F={F} H={H}, rate {RATE}, training forward + backward, '
        f'median of {FLAGS.repeats} × {FLAGS.steps} steps; {os.cpu_count()} CPUs, '
        f'load average {os.getloadavg()[0]:.2f}, jax {jax.__version__}\n')
  print('| variant | path | ms / step | × fused |')
  print('|---|---|---|---|')
  for name, (_, _, fused) in steps.items():
    median = statistics.median(times[name])
    print(f'| {name} | {"fused" if fused else "plain scan"} | {1e3 * median:.2f} | '
          f'{median / base:.2f} |')


if __name__ == '__main__':
  app.run(main)
