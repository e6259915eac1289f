"""Data parallelism over local devices (jit + Mesh) and seeds side by side (vmap).

Every array in the train state carries a leading seed axis `[S, ...]`; batches
are `[S, B, ...]`, sharded over the 'data' mesh axis along B. The step function
is `steps.train_step` vmapped over S and jitted with these shardings, so one
compiled program trains S seeds on all devices with the numbers one device gives.

Synopsis:
  mesh = create_mesh()                        # all local devices
  step = make_train_step(model, tx, objective, mesh)
  state, sums = step(state, shard_batch(batch, mesh))
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from seqnets.training import steps


def create_mesh(num_devices: int | None = None) -> Mesh:
  """1-D mesh named 'data' over the first `num_devices` local devices (all by default)."""
  devices = jax.local_devices()
  if num_devices is not None:
    if not 1 <= num_devices <= len(devices):
      raise ValueError(f'num_devices={num_devices}; this host has {len(devices)}')
    devices = devices[:num_devices]
  return Mesh(np.asarray(devices), ('data',))


def pad_batch(batch: dict[str, np.ndarray], multiple: int, axis: int = 1) -> dict[str, np.ndarray]:
  """Appends all-zero rows (length 0) along `axis` up to a multiple of `multiple`.

  Zero-length rows add nothing to any Sums, so padding changes no result.
  """
  size = next(iter(batch.values())).shape[axis]
  extra = -size % multiple
  if not extra:
    return batch
  def pad(x):
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, extra)
    return np.pad(x, widths)
  return {k: pad(v) for k, v in batch.items()}


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """`[S, B, ...]` numpy -> device arrays split along B over the mesh."""
  batch = pad_batch(batch, mesh.size)
  sharding = NamedSharding(mesh, P(None, 'data'))
  return {k: jax.device_put(v, sharding) for k, v in batch.items()}


def replicate(tree, mesh: Mesh):
  return jax.device_put(tree, NamedSharding(mesh, P()))


def make_train_step(model, tx, objective, mesh: Mesh):
  """jit(vmap(train_step)) over seeds; state replicated and donated, batch sharded."""
  step = functools.partial(steps.train_step, model=model, tx=tx, objective=objective)
  replicated = NamedSharding(mesh, P())
  return jax.jit(jax.vmap(step), in_shardings=(replicated, NamedSharding(mesh, P(None, 'data'))),
                 out_shardings=(replicated, replicated), donate_argnums=0)


def make_eval_step(model, objective, mesh: Mesh):
  """jit(vmap(eval_step)) over seeds -> (Sums [S], per-sequence correct [S, B])."""
  step = functools.partial(steps.eval_step, model=model, objective=objective)
  replicated = NamedSharding(mesh, P())
  return jax.jit(jax.vmap(step), in_shardings=(replicated, NamedSharding(mesh, P(None, 'data'))),
                 out_shardings=(replicated, replicated))
