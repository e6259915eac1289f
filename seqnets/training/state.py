"""TrainState: params, optimizer state, model state, step, the run's root RNG key and health.

Synopsis:
  state = create_seeds(model, tx, task, seeds=[0, 1, 2], example_batch=batch)  # leaves [S, ...]
  state.model_state         # {} or e.g. {'batch_stats': ...} or {'carry': [S, B, ...]}
  state.failed_step         # [S] int: -1 while healthy, else the step whose loss or gradient was not finite
"""

from __future__ import annotations

from typing import Any, Sequence

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
  and records the step in `failed_step` (-1 while healthy).
  """

  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array
  model_state: Any = flax.struct.field(default_factory=dict)
  failed_step: jax.Array = flax.struct.field(default_factory=lambda: jnp.full((), -1, jnp.int32))


def create(model: nn.Module, tx: optax.GradientTransformation, task, rng: jax.Array,
           example_batch: dict[str, Any]) -> TrainState:
  """Initialises params and model state from `example_batch` (shapes only) and the optimizer state."""
  init_rng, rng = jax.random.split(rng)
  args, kwargs = task.model_inputs(example_batch)
  variables = model.init({'params': init_rng, 'dropout': init_rng}, *args, **kwargs,
                         deterministic=True)
  params = variables['params']
  model_state = {name: value for name, value in variables.items() if name != 'params'}
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    rng=jax.random.key_data(rng), model_state=model_state,
                    failed_step=jnp.full((), -1, jnp.int32))


def create_seeds(model: nn.Module, tx: optax.GradientTransformation, task, seeds: Sequence[int],
                 example_batch: dict[str, Any]) -> TrainState:
  """One state per seed, stacked on a leading axis `[S, ...]` (seed s uses `key(s)`)."""
  keys = jax.vmap(jax.random.key)(jnp.asarray(list(seeds)))
  return jax.jit(jax.vmap(lambda key: create(model, tx, task, key, example_batch)))(keys)


def seed_slice(tree, index: int):
  """The values of seed `index` from a tree with a leading seed axis."""
  return jax.tree_util.tree_map(lambda a: a[index], tree)
