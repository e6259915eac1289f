"""Pure, undecorated train and eval steps. jit, sharding and seed-vmap are
applied where they are called (`parallel.py`)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from seqnets.training import objectives as objectives_lib
from seqnets.training.state import TrainState


def model_kwargs(batch: dict) -> dict:
  """Sequence models take `lengths=`; image models take only the inputs."""
  return {'lengths': batch['lengths']} if 'lengths' in batch else {}


def train_step(state: TrainState, batch: dict, *, model: nn.Module,
               tx: optax.GradientTransformation,
               objective: objectives_lib.Objective) -> tuple[TrainState, dict]:
  """One optimizer step on `batch` -> (new state, Sums + norms).

  Dropout draws from `fold_in(state.rng, state.step)`. Reported norms:
  `grad_norm` (before clipping), `param_norm` (after the update), `update_norm`.
  """
  dropout_rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

  def loss_fn(params):
    outputs = model.apply({'params': params}, batch['inputs'], **model_kwargs(batch),
                          deterministic=False, rngs={'dropout': dropout_rng})
    return objective.loss_and_sums(outputs, batch)

  (_, sums), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  sums = dict(sums, grad_norm=optax.global_norm(grads), update_norm=optax.global_norm(updates),
              param_norm=optax.global_norm(params), steps=jnp.ones((), jnp.float32))
  new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
  return new_state, sums


def eval_step(params, batch: dict, *, model: nn.Module,
              objective: objectives_lib.Objective) -> tuple[dict, jax.Array]:
  """Sums on `batch` plus `[B]` bool per-example correctness."""
  outputs = model.apply({'params': params}, batch['inputs'], **model_kwargs(batch),
                        deterministic=True)
  _, sums = objective.loss_and_sums(outputs, batch)
  return sums, objective.per_example_correct(outputs, batch)
