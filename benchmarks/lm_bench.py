r"""End-to-end language-model training speed: seqnets against the same model in PyTorch.

Two models, each a training step with Adam, global-norm clipping at 1.0, cross-entropy
over the next token and the recurrent state carried from one batch to the next (detached):
  char   `configs/char_lm.py`'s model: embedding 64, one LSTM layer of 512, softmax over
         65 characters, 64 streams × 128 characters.
  word   two LSTM layers of 1,024, embeddings of 1,024 tied with the output, a
         10,000-word vocabulary, 32 streams × 35 words.
Both sides train on the same random tokens (speed does not depend on them), alternating
within each round; reported: characters (tokens) per second, median over rounds, and the
seqnets/PyTorch ratio. PyTorch runs on 2 threads, as in `make bench`.

  python -m benchmarks.lm_bench --out=DIR [--models=char,word] [--rounds=3] [--steps=5]
  python -m benchmarks.lm_bench --out=DIR --quick     # tiny models: a smoke test
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import statistics
import time

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string('out', 'lm_bench_results', 'Directory for lm_bench.{json,md}.')
flags.DEFINE_list('models', ['char', 'word'], 'Models to time: char, word.')
flags.DEFINE_integer('rounds', 3, 'Alternating rounds (seqnets then PyTorch in each).')
flags.DEFINE_integer('steps', 5, 'Timed training steps per side and round.')
flags.DEFINE_bool('quick', False, 'Tiny models, 1 round of 2 steps: a smoke test.')


@dataclasses.dataclass(frozen=True)
class LM:
  vocab: int
  embedding: int
  hidden: int
  layers: int
  tied: bool
  batch: int
  steps: int


MODELS = {'char': LM(65, 64, 512, 1, False, 64, 128),
          'word': LM(10_000, 1024, 1024, 2, True, 32, 35)}
QUICK = {'char': LM(11, 4, 8, 1, False, 4, 6), 'word': LM(20, 8, 8, 2, True, 2, 5)}


def _tokens(lm: LM, count: int):
  import numpy as np
  return np.random.default_rng(0).integers(0, lm.vocab, (count, lm.batch, lm.steps + 1))


def seqnets_steps(lm: LM, batches) -> callable:
  """A function running one training step of the seqnets model per call (state carried)."""
  import jax
  import jax.numpy as jnp
  import ml_collections
  import optax
  from seqnets.models import factory
  from seqnets.tasks import DataInfo
  config = ml_collections.ConfigDict(dict(
      name='recurrent_lm', embedding_size=lm.embedding, num_layers=lm.layers,
      tie_embeddings=lm.tied, cell=dict(name='lstm', hidden_size=lm.hidden)))
  model = factory.from_config(config, DataInfo(vocab_size=lm.vocab, num_outputs=lm.vocab))
  lengths = jnp.full((lm.batch,), lm.steps)
  first = jnp.asarray(batches[0])
  params = jax.jit(lambda: model.init(jax.random.key(0), first[:, :-1], lengths,
                                      deterministic=True))()
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))

  def loss(p, carry, tokens):
    carry, logits = model.apply(p, tokens[:, :-1], lengths, deterministic=True,
                                initial_carry=carry, return_carry=True)
    value = optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()
    return value, carry

  @jax.jit
  def step(p, opt, carry, tokens):
    (value, carry), grads = jax.value_and_grad(loss, has_aux=True)(
        p, jax.lax.stop_gradient(carry), tokens)
    updates, opt = tx.update(grads, opt, p)
    return optax.apply_updates(p, updates), opt, carry, value

  state = {'p': params, 'opt': tx.init(params), 'carry': model.zero_carry(lm.batch), 'i': 0}
  device_batches = [jnp.asarray(b) for b in batches]

  def run():
    tokens = device_batches[state['i'] % len(device_batches)]
    state['p'], state['opt'], state['carry'], value = step(state['p'], state['opt'],
                                                           state['carry'], tokens)
    state['i'] += 1
    return float(value)
  return run


def torch_steps(lm: LM, batches) -> callable:
  """The same model and step in PyTorch (nn.Embedding, nn.LSTM, nn.Linear, Adam)."""
  import torch
  torch.set_num_threads(2)
  torch.manual_seed(0)

  class Model(torch.nn.Module):
    def __init__(self):
      super().__init__()
      self.embed = torch.nn.Embedding(lm.vocab, lm.embedding)
      self.lstm = torch.nn.LSTM(lm.embedding, lm.hidden, lm.layers, batch_first=True)
      self.output = torch.nn.Linear(lm.hidden, lm.vocab)
      if lm.tied:
        self.output.weight = self.embed.weight

    def forward(self, tokens, carry):
      h, carry = self.lstm(self.embed(tokens), carry)
      return self.output(h), carry

  model = Model()
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
  zeros = torch.zeros(lm.layers, lm.batch, lm.hidden)
  state = {'carry': (zeros, zeros.clone()), 'i': 0}
  tensors = [torch.from_numpy(b) for b in batches]

  def run():
    tokens = tensors[state['i'] % len(tensors)]
    optimizer.zero_grad(set_to_none=True)
    carry = tuple(c.detach() for c in state['carry'])
    logits, state['carry'] = model(tokens[:, :-1], carry)
    value = torch.nn.functional.cross_entropy(logits.reshape(-1, lm.vocab),
                                              tokens[:, 1:].reshape(-1))
    value.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    state['i'] += 1
    return float(value)
  return run


def measure(name: str, lm: LM, rounds: int, steps: int) -> dict:
  """Alternating rounds of `steps` timed steps per side (after one untimed warm-up step)."""
  batches = list(_tokens(lm, 4))
  sides = {'seqnets': seqnets_steps(lm, batches), 'torch': torch_steps(lm, batches)}
  losses = {side: run() for side, run in sides.items()}     # compile / warm up
  per_round = {side: [] for side in sides}
  for _ in range(rounds):
    for side, run in sides.items():
      start = time.perf_counter()
      for _ in range(steps):
        run()
      per_round[side].append((time.perf_counter() - start) / steps)
  tokens = lm.batch * lm.steps
  result = {'model': name, 'shape': dataclasses.asdict(lm), 'first_loss': losses}
  for side, times in per_round.items():
    result[side] = {'step_s': times, 'tokens_per_s': tokens / statistics.median(times)}
  result['ratio'] = result['seqnets']['tokens_per_s'] / result['torch']['tokens_per_s']
  return result


def render(results: list[dict], command: str) -> str:
  lines = ['# Language-model training: seqnets against PyTorch', '', f'`{command}`', '',
           '| model | seqnets tokens/s | PyTorch tokens/s | seqnets / PyTorch | rounds |',
           '|---|---|---|---|---|']
  for r in results:
    lines.append(f"| {r['model']} | {r['seqnets']['tokens_per_s']:,.0f} | "
                 f"{r['torch']['tokens_per_s']:,.0f} | {r['ratio']:.2f} | "
                 f"{len(r['seqnets']['step_s'])} |")
  return '\n'.join(lines) + '\n'


def main(argv: list[str]) -> None:
  del argv
  table = QUICK if FLAGS.quick else MODELS
  unknown = [m for m in FLAGS.models if m not in table]
  if unknown:
    raise app.UsageError(f'--models: {unknown[0]!r}; valid: {sorted(table)}')
  rounds, steps = (1, 2) if FLAGS.quick else (FLAGS.rounds, FLAGS.steps)
  results = [measure(name, table[name], rounds, steps) for name in FLAGS.models]
  out = pathlib.Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  command = ('python -m benchmarks.lm_bench ' + ' '.join(
      f'--{k}={v}' for k, v in (('models', ','.join(FLAGS.models)), ('rounds', rounds),
                                ('steps', steps))) + (' --quick' if FLAGS.quick else ''))
  (out / 'lm_bench.json').write_text(json.dumps(results, indent=1) + '\n')
  (out / 'lm_bench.md').write_text(render(results, command))
  print(render(results, command))


if __name__ == '__main__':
  app.run(main)
