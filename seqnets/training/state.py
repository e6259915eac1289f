"""TrainState: params, optimizer state, model state, step, the run's root RNG key and health.

Synopsis:
  state = create_seeds(model, tx, task, seeds=[0, 1, 2], example_batch=batch)  # leaves [S, ...]
  state.model_state         # {} or e.g. {'batch_stats': ...} or {'carry': [S, B, ...]}
  state.failed_step         # [S] int: -1 while healthy, else the step whose loss or gradient was not finite
  state.ema_params          # {} or, with `ema=True`, a moving average of the params (`optim.ema_decay`)
  evaluated_params(state)   # what evaluation uses: the moving average when there is one
"""

from __future__ import annotations

from typing import Any, Sequence

import dataclasses

import flax
import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

# Model-state collections with a leading example axis `[B, ...]` (sharded with the
# batch across devices, e.g. a recurrent carry kept across batches); every other
# collection (e.g. 'batch_stats') is replicated.
PER_EXAMPLE_COLLECTIONS = ('carry',)


@flax.struct.dataclass
class TrainState:
  """All that changes during training; a pytree (vmappable over seeds, checkpointable).

  `rng` is the root key: step s draws `fold_in(rng, s)`, so resumption and the
  device count cannot change the random stream. `model_state` holds the model's
  variables other than 'params' (batch statistics, a carried recurrent state).
  A seed whose loss or gradient stops being finite keeps its last good values
  and records the step in `failed_step` (-1 while healthy). `ema_params` is `{}`
  unless the run keeps a moving average of the parameters; an empty one is left out
  of the state dict (`flax.serialization`), so such a state checkpoints and restores
  exactly as before the field existed.
  """

  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array
  model_state: Any = flax.struct.field(default_factory=dict)
  failed_step: jax.Array = flax.struct.field(default_factory=lambda: jnp.full((), -1, jnp.int32))
  ema_params: Any = flax.struct.field(default_factory=dict)


def _to_state_dict(state: TrainState) -> dict:
  fields = {field.name: flax.serialization.to_state_dict(getattr(state, field.name))
            for field in dataclasses.fields(state)}
  if not state.ema_params:
    del fields['ema_params']
  return fields


def _from_state_dict(target: TrainState, restored: dict) -> TrainState:
  """`target` with the values of `restored`; ValueError naming a field that one has and the other lacks."""
  restored = dict(restored)
  if not target.ema_params and 'ema_params' not in restored:
    restored['ema_params'] = {}
  names = [field.name for field in dataclasses.fields(target)]
  missing = [name for name in names if name not in restored]
  unknown = [name for name in restored if name not in names]
  if missing or unknown:
    raise ValueError(f'cannot restore a TrainState: missing fields {missing}, unknown fields {unknown}')
  if restored['ema_params'] and not target.ema_params:
    raise ValueError('cannot restore a TrainState: the state dict holds ema_params, the target keeps none')
  return target.replace(**{name: flax.serialization.from_state_dict(
      getattr(target, name), restored[name], name=name) for name in names})


flax.serialization.register_serialization_state(TrainState, _to_state_dict, _from_state_dict,
                                                override=True)


def evaluated_params(state: TrainState):
  """The parameters evaluation uses: the moving average when the state keeps one."""
  return state.ema_params or state.params


def with_params(state: TrainState, params) -> TrainState:
  """`state` with `params`, its moving average (when kept) restarting from them."""
  if not state.ema_params:
    return state.replace(params=params)
  return state.replace(params=params, ema_params=jax.tree_util.tree_map(jnp.array, params))


def create(model: nn.Module, tx: optax.GradientTransformation, task, rng: jax.Array,
           example_batch: dict[str, Any], ema: bool = False) -> TrainState:
  """Initialises params and model state from `example_batch` (shapes only) and the optimizer
  state; with `ema`, the moving average of the params starts at them."""
  init_rng, rng = jax.random.split(rng)
  args, kwargs = task.model_inputs(example_batch)
  variables = model.init({'params': init_rng, 'dropout': init_rng}, *args, **kwargs,
                         deterministic=True)
  params = variables['params']
  model_state = {name: value for name, value in variables.items() if name != 'params'}
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    rng=jax.random.key_data(rng), model_state=model_state,
                    failed_step=jnp.full((), -1, jnp.int32),
                    ema_params=jax.tree_util.tree_map(jnp.copy, params) if ema else {})


def create_seeds(model: nn.Module, tx: optax.GradientTransformation, task, seeds: Sequence[int],
                 example_batch: dict[str, Any], ema: bool = False) -> TrainState:
  """One state per seed, stacked on a leading axis `[S, ...]` (seed s uses `key(s)`).

  The seeds are initialised one after another by one compiled function, not under `vmap`:
  XLA:CPU runs a batched QR (the orthogonal initialiser under `vmap`) by fanning the batch
  out on the thread pool it already runs on and waiting there, and with two such QRs in
  flight (a bidirectional LSTM, 3+ seeds, 2 cores) every pool thread waits and the run
  hangs. The values are the same either way: each seed's draws depend only on its key.
  """
  init = jax.jit(lambda key: create(model, tx, task, key, example_batch, ema))
  states = [init(jax.random.key(seed)) for seed in seeds]
  return _stack(states)


@jax.jit
def _stack(trees):
  """Trees of equal structure stacked leaf by leaf on a new leading axis (one program, not one per leaf)."""
  return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees)


@jax.jit
def seed_slice(tree, index):
  """The values of seed `index` from a tree with a leading seed axis (one program, not one per leaf)."""
  return jax.tree_util.tree_map(lambda a: a[index], tree)
