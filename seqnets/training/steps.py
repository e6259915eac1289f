"""Pure, undecorated train and eval steps. jit, sharding and seed-vmap are
applied where they are called (`parallel.py`)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from seqnets.tasks import base
from seqnets.training import optimizers
from seqnets.training.state import TrainState


def apply_model(model: nn.Module, params, model_state: dict, batch: dict, task: base.Task, *,
                train: bool, rng: jax.Array | None = None) -> tuple[Any, dict]:
  """`model(*task.model_inputs(batch))` -> (outputs, new model state).

  In training every model-state collection is mutable (batch statistics
  update, a carried state moves on); in evaluation the state is read only.
  """
  args, kwargs = task.model_inputs(batch)
  variables = {'params': params, **model_state}
  rngs = {'dropout': rng} if rng is not None else {}
  if train and model_state:
    return model.apply(variables, *args, **kwargs, deterministic=False, rngs=rngs,
                       mutable=list(model_state))
  return model.apply(variables, *args, **kwargs, deterministic=not train, rngs=rngs), model_state


def train_step(state: TrainState, batch: dict, controls: dict | None = None, *, model: nn.Module,
               tx: optax.GradientTransformation, task: base.Task,
               ema_decay: float | None = None) -> tuple[TrainState, dict]:
  """One optimizer step on `batch` -> (new state, Sums + norms).

  Dropout draws from `fold_in(state.rng, state.step)`. Reported norms:
  `grad_norm` (before clipping), `param_norm` (after the update), `update_norm`.
  A step whose loss, gradient or update is not finite changes nothing but
  `step` and marks the state failed (`failed_step`); a failed state never
  trains again, so every later checkpoint holds its last good values.

  `controls` (None: train, no extra argument): `active` (bool) False changes
  nothing but `step` (a seed stopped early keeps its values, and is never marked
  failed); `plateau_value`, when present, is passed to `tx.update` as the extra
  argument of the same name (`optimizers.plateau_scaling`).

  With `ema_decay` d (the state must keep `ema_params`), every step that updates
  the parameters (`optimizers.update_done`) also sets ema ← d · ema + (1 − d) · params.
  """
  if (ema_decay is None) != (not state.ema_params):
    raise ValueError(f'ema_decay={ema_decay!r} needs a state with ema_params, and a state '
                     'with ema_params needs an ema_decay')
  controls = controls or {}
  active = controls.get('active', True)
  extra = {'plateau_value': controls['plateau_value']} if 'plateau_value' in controls else {}
  dropout_rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

  def loss_fn(params):
    outputs, model_state = apply_model(model, params, state.model_state, batch, task,
                                       train=True, rng=dropout_rng)
    loss, sums = task.loss(outputs, batch)
    return loss, (sums, model_state)

  (loss, (sums, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  if extra:
    tx = optax.with_extra_args_support(tx)
  updates, opt_state = tx.update(grads, state.opt_state, state.params, **extra)
  params = optax.apply_updates(state.params, updates)
  grad_norm, update_norm = optax.global_norm(grads), optax.global_norm(updates)
  healthy = (state.failed_step < 0) & jnp.isfinite(loss) & jnp.isfinite(grad_norm) & jnp.isfinite(update_norm)
  changed = healthy & active
  keep = lambda new, old: jax.tree_util.tree_map(lambda n, o: jnp.where(changed, n, o), new, old)
  sums = dict(sums, grad_norm=grad_norm, update_norm=update_norm,
              param_norm=optax.global_norm(params), steps=jnp.ones((), jnp.float32))
  ema_params = state.ema_params
  if ema_decay is not None:
    done = optimizers.update_done(opt_state)
    ema_params = jax.tree_util.tree_map(
        lambda new, old: jnp.where(done, new, old),
        optax.incremental_update(params, state.ema_params, 1.0 - ema_decay), state.ema_params)
  new_state = state.replace(
      step=state.step + 1,
      params=keep(params, state.params),
      opt_state=keep(opt_state, state.opt_state),
      model_state=keep(model_state, state.model_state),
      ema_params=keep(ema_params, state.ema_params),
      failed_step=jnp.where((state.failed_step < 0) & active & ~healthy, state.step + 1,
                            state.failed_step))
  return new_state, sums


def eval_step(params, model_state, batch: dict, *, model: nn.Module, task: base.Task,
              extra_sums: Callable[[Any, dict], dict]) -> dict:
  """The task's Sums on `batch` plus the evaluator's own (`extra_sums`)."""
  outputs, _ = apply_model(model, params, model_state, batch, task, train=False)
  _, sums = task.loss(outputs, batch)
  return {**sums, **extra_sums(outputs, batch)}
