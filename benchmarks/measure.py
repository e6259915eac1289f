"""Timing one train step and one inference call, in JAX (any flax linen or NNX module) and
PyTorch.

Train step: forward, backward and an SGD update of loss = mean(outputs²).
Inference: forward only. Each timed call blocks until its results are ready.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from benchmarks import contenders

LEARNING_RATE = 1e-3

# Timing of a mode stops after this many seconds (but not before MIN_REPS reps) and
# the rest of the warm-up is skipped after half of it, so that a stalled contender cannot
# stretch the run (PyTorch's OpenMP spin-waits stall for
# seconds per step when another process shares the cores; see benchmarks/README.md).
MAX_TIMED_S = 30.0
MIN_REPS = 3


def time_reps(fn: Callable[[], Any], reps: int, warmup: int) -> tuple[float, list[float]]:
  """Returns (first call seconds, timed reps in ms); `fn` must block until done."""
  start = time.perf_counter()
  fn()
  first = time.perf_counter() - start
  for _ in range(warmup):
    if time.perf_counter() - start > MAX_TIMED_S / 2:
      break
    fn()
  times = []
  budget_start = time.perf_counter()
  for _ in range(reps):
    start = time.perf_counter()
    fn()
    times.append((time.perf_counter() - start) * 1e3)
    if len(times) >= MIN_REPS and time.perf_counter() - budget_start > MAX_TIMED_S:
      break
  return first, times


def _inputs(shape: tuple[int, int, int, int]):
  import numpy as np
  batch, time_steps, features, _ = shape
  return np.random.default_rng(0).uniform(-1, 1, (batch, time_steps, features)).astype(np.float32)


def measure_jax(module, shape: tuple[int, int, int, int], reps: int, warmup: int) -> dict:
  """Times one train step and one inference call of a flax linen `module` (AOT-compiled)."""
  import jax
  import jax.numpy as jnp

  x = jnp.asarray(_inputs(shape))
  return _measure_functional(module.apply, jax.jit(module.init)(jax.random.key(0), x), x, reps,
                             warmup)


def measure_nnx(module, shape: tuple[int, int, int, int], reps: int, warmup: int) -> dict:
  """Times one train step and one inference call of a Flax NNX `module`, as a pure function
  of its params (`nnx.split`, `nnx.merge` inside `jax.jit`: no per-call graph traversal);
  other state (`nnx.RNN`'s carry rng stream) is a constant."""
  import jax
  import jax.numpy as jnp
  from flax import nnx

  graphdef, params, rest = nnx.split(module, nnx.Param, ...)

  def apply(p, inputs):
    # Fresh copies of the other state inside the trace, which the call may update.
    return nnx.merge(graphdef, p, jax.tree_util.tree_map(jnp.asarray, rest))(inputs)

  return _measure_functional(apply, params, jnp.asarray(_inputs(shape)), reps, warmup)


def _measure_functional(apply: Callable[[Any, Any], Any], params: Any, x: Any, reps: int,
                        warmup: int) -> dict:
  """Times `apply(params, x)`'s train step (SGD on mean(outputs²)) and inference."""
  import jax
  import jax.numpy as jnp
  import optax

  tx = optax.sgd(LEARNING_RATE)
  opt_state = tx.init(params)

  def loss_fn(p, inputs):
    return jnp.mean(apply(p, inputs) ** 2)

  def train_step(p, state, inputs):
    loss, grads = jax.value_and_grad(loss_fn)(p, inputs)
    updates, state = tx.update(grads, state, p)
    return optax.apply_updates(p, updates), state, loss

  result = {}
  start = time.perf_counter()
  lowered = jax.jit(train_step, donate_argnums=(0, 1)).lower(params, opt_state, x)
  lowered_at = time.perf_counter()
  compiled = lowered.compile()
  compiled_at = time.perf_counter()
  state = {'params': params, 'opt_state': opt_state}

  def run_train():
    state['params'], state['opt_state'], loss = compiled(state['params'], state['opt_state'], x)
    jax.block_until_ready((state['params'], loss))

  first, times = time_reps(run_train, reps, warmup)
  result['train'] = {'trace_lower_s': lowered_at - start, 'compile_s': compiled_at - lowered_at,
                     'first_exec_s': first, 'times_ms': times}

  params = state['params']
  start = time.perf_counter()
  lowered = jax.jit(apply).lower(params, x)
  lowered_at = time.perf_counter()
  infer = lowered.compile()
  compiled_at = time.perf_counter()
  first, times = time_reps(lambda: infer(params, x).block_until_ready(), reps, warmup)
  result['infer'] = {'trace_lower_s': lowered_at - start, 'compile_s': compiled_at - lowered_at,
                     'first_exec_s': first, 'times_ms': times}
  return result


def measure_torch(name: str, shape: tuple[int, int, int, int], reps: int, warmup: int) -> dict:
  """Times one train step and one inference call of a PyTorch recurrent layer."""
  import torch
  torch.set_num_threads(2)
  torch.manual_seed(0)
  _, _, features, hidden = shape
  layer = contenders.build_torch_layer(name, features, hidden)
  x = torch.from_numpy(_inputs(shape))
  optimizer = torch.optim.SGD(layer.parameters(), lr=LEARNING_RATE)

  def run_train():
    optimizer.zero_grad(set_to_none=True)
    outputs, _ = layer(x)
    loss = outputs.pow(2).mean()
    loss.backward()
    optimizer.step()
    loss.item()

  def run_infer():
    with torch.inference_mode():
      layer(x)[0].sum().item()

  result = {}
  first, times = time_reps(run_train, reps, warmup)
  result['train'] = {'first_exec_s': first, 'times_ms': times}
  first, times = time_reps(run_infer, reps, warmup)
  result['infer'] = {'first_exec_s': first, 'times_ms': times}
  return result
