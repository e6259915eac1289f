r"""`configs/multi30k.py`'s model: the training step with the attention decoder through its
fused kernel against the plain scan, interleaved in one process.

  python -m benchmarks.attention_step --rounds=5 --reps=5

Random tokens of the config's batch shape (B 64, T 24 on both sides, 4,000 subwords a
side), Adam, dropout on, float32. The plain scan is the step as traced with
`AttentionCell.runs_fused` off (everything else, the encoder's fused GRU included, is the
same program); then the same for the attention decoder layer alone (forward and
gradients). Each round times `--reps` steps of one, then of the other (the order
alternates); prints per round the median ms of each and their ratio, then the medians
over the rounds.
"""

from __future__ import annotations

import statistics
import time
from unittest import mock

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_integer('rounds', 5, 'Interleaved rounds.')
flags.DEFINE_integer('reps', 5, 'Timed steps per variant per round.')
flags.DEFINE_integer('steps', 24, 'Source and target length.')


def build_steps(steps: int):
  """`{'scan': run, 'fused': run}`: each `run()` does one training step (compiled first)."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax
  from configs import multi30k
  from seqnets.layers.attention import AttentionCell
  from seqnets.models import factory
  from seqnets.tasks import DataInfo

  config = multi30k.get_config()
  vocab, batch = 4000, config.data.batch_size
  rng = np.random.default_rng(0)
  source = jnp.asarray(rng.integers(4, vocab, (batch, steps)))
  target = jnp.asarray(rng.integers(4, vocab, (batch, steps + 1)))
  full = jnp.full((batch,), steps)
  args, targets = (source, full, target[:, :-1], full), target[:, 1:]
  model = factory.from_config(config.model, DataInfo(vocab_size=vocab, num_outputs=vocab))
  params = jax.jit(lambda: model.init(jax.random.key(0), *args, deterministic=True))()
  tx = optax.adam(1e-3)

  def loss(p, key):
    logits = model.apply(p, *args, deterministic=False, rngs={'dropout': key})
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

  def make_step():
    # A new function per variant: jax.jit would reuse the other's trace of the same one.
    def step(p, opt, key):
      value, grads = jax.value_and_grad(loss)(p, key)
      updates, opt = tx.update(grads, opt, p)
      return optax.apply_updates(p, updates), opt, value
    return step

  runs = {}
  for name in ('scan', 'fused'):
    state = {'p': params, 'opt': tx.init(params)}
    traced = jax.jit(make_step())
    if name == 'scan':
      with mock.patch.object(AttentionCell, 'runs_fused', lambda self, deterministic=None: False):
        compiled = traced.lower(state['p'], state['opt'], jax.random.key(1)).compile()
    else:
      compiled = traced.lower(state['p'], state['opt'], jax.random.key(1)).compile()

    def run(compiled=compiled, state=state):
      state['p'], state['opt'], value = compiled(state['p'], state['opt'], jax.random.key(1))
      jax.block_until_ready(value)
    run()
    runs[name] = run
  return runs


def build_decoders(steps: int):
  """`{'scan': run, 'fused': run}` for the model's attention decoder layer alone (GRU 256,
  memory `[64, S, 512]`, additive attention of 256, inputs `[64, T, 256]`): forward and
  gradients w.r.t. params, inputs and memory."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax import linen as nn
  import seqnets as sn
  from seqnets.layers import attention

  batch, size, width = 64, 256, 512
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(batch, steps, size)), jnp.float32)
  memory = jnp.asarray(rng.normal(size=(batch, steps, width)), jnp.float32)
  lengths = jnp.full((batch,), steps)

  class Decoder(nn.Module):
    implementation: str

    @nn.compact
    def __call__(self, x, memory):
      keys = attention.MemoryKeys('additive', size, size)(memory)
      cell = sn.AttentionCell(sn.GRUCell(size), memory=memory, keys=keys, attention_size=size)
      return sn.RNN(cell, implementation=self.implementation, return_all_carries=True)(
          x, lengths)

  runs = {}
  for name in ('scan', 'fused'):
    model = Decoder(name)
    params = model.init(jax.random.key(0), x, memory)
    loss = lambda p, x, m, model=model: sum(
        jnp.sum(leaf) for leaf in jax.tree_util.tree_leaves(model.apply(p, x, m)))
    grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
    runs[name] = lambda grad=grad, params=params: jax.block_until_ready(grad(params, x, memory))
    runs[name]()
  return runs


def interleave(what: str, runs) -> None:
  """Times `runs` in interleaved rounds and prints them (see the module docstring)."""
  medians = {name: [] for name in runs}
  for round_index in range(FLAGS.rounds):
    order = list(runs) if round_index % 2 == 0 else list(reversed(runs))
    for name in order:
      times = []
      for _ in range(FLAGS.reps):
        start = time.perf_counter()
        runs[name]()
        times.append((time.perf_counter() - start) * 1e3)
      medians[name].append(statistics.median(times))
    print(f'{what} round {round_index}: scan {medians["scan"][-1]:.1f} ms, fused '
          f'{medians["fused"][-1]:.1f} ms, ratio {medians["scan"][-1] / medians["fused"][-1]:.2f}',
          flush=True)
  scan, fused = (statistics.median(medians[name]) for name in ('scan', 'fused'))
  print(f'{what} median over rounds: scan {scan:.1f} ms, fused {fused:.1f} ms, ratio '
        f'{scan / fused:.2f}', flush=True)


def main(argv):
  del argv
  interleave('training step', build_steps(FLAGS.steps))
  interleave('decoder layer', build_decoders(FLAGS.steps))


if __name__ == '__main__':
  app.run(main)
