"""TrainState: params, optimizer state, step and the run's root RNG key."""

from __future__ import annotations

from typing import Any, Sequence

import flax
import jax
import jax.numpy as jnp
import optax
from flax import linen as nn


@flax.struct.dataclass
class TrainState:
  """All that changes during training; a pytree (vmappable over seeds, checkpointable).

  `rng` is the root key: step s draws `fold_in(rng, s)`, so resumption and the
  device count cannot change the random stream.
  """

  step: jax.Array
  params: Any
  opt_state: Any
  rng: jax.Array


def create(model: nn.Module, tx: optax.GradientTransformation, rng: jax.Array,
           example_batch: dict[str, Any]) -> TrainState:
  """Initialises params from `example_batch` (shapes only) and the optimizer state."""
  init_rng, rng = jax.random.split(rng)
  kwargs = {'lengths': example_batch['lengths']} if 'lengths' in example_batch else {}
  params = model.init({'params': init_rng}, example_batch['inputs'], **kwargs)['params']
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    rng=jax.random.key_data(rng))


def create_seeds(model: nn.Module, tx: optax.GradientTransformation, seeds: Sequence[int],
                 example_batch: dict[str, Any]) -> TrainState:
  """One state per seed, stacked on a leading axis `[S, ...]` (seed s uses `key(s)`)."""
  keys = jax.vmap(jax.random.key)(jnp.asarray(list(seeds)))
  return jax.jit(jax.vmap(lambda key: create(model, tx, key, example_batch)))(keys)
