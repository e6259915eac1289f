"""Data parallelism over every device of every process (jit + Mesh) and seeds side by side (vmap).

Every array in the train state carries a leading seed axis `[S, ...]`; batches
are `[S, B, ...]`, sharded over the 'data' mesh axis along B. The step function
is `steps.train_step` vmapped over S and jitted with these shardings, so one
compiled program trains S seeds on all devices with the numbers one device gives.
Parameters and optimizer state are replicated; model-state collections with an
example axis (`state.PER_EXAMPLE_COLLECTIONS`) are sharded along B like the batch.

With several processes (`jax.distributed.initialize`), the mesh spans all their
devices; every process passes the same global host batch to `shard_batch`,
which keeps only this process's rows (`jax.make_array_from_process_local_data`).

Synopsis:
  mesh = create_mesh()                        # all devices of all processes
  step = make_train_step(model, tx, task, mesh, state)
  state, sums = step(state, shard_batch(batch, mesh))
  step = WindowedTrainStep(model, tx, task, mesh, state)   # the Sums added up on the devices
  window = step.empty_window(state, batch)
  state, window = step(state, window, batch)  # ... metrics.compute(jax.device_get(window))
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from seqnets.training import metrics
from seqnets.training import state as state_lib
from seqnets.training import steps

BATCH_SPEC = P(None, 'data')   # [S, B, ...]: seeds on every device, examples split


def create_mesh(num_devices: int | None = None) -> Mesh:
  """1-D mesh named 'data' over all devices of all processes, or the first
  `num_devices` local devices (single process only)."""
  devices = jax.devices()
  if num_devices is not None:
    local = jax.local_devices()
    if jax.process_count() > 1:
      raise ValueError('num_devices selects local devices; with several processes every device is used')
    if not 1 <= num_devices <= len(local):
      raise ValueError(f'num_devices={num_devices}; this host has {len(local)}')
    devices = local[:num_devices]
  return Mesh(np.asarray(devices), ('data',))


def pad_batch(batch: dict[str, np.ndarray], multiple: int, axis: int = 1) -> dict[str, np.ndarray]:
  """Appends all-zero rows (length 0, `valid` 0) along `axis` up to a multiple of `multiple`.

  Zero rows add nothing to any Sums, so padding changes no result.
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


def process_rows(size: int) -> slice:
  """The rows of a global batch of `size` (a multiple of the device count) that this process holds."""
  share = size // jax.process_count()
  index = jax.process_index()
  return slice(index * share, (index + 1) * share)


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """The global host batch `[S, B, ...]` -> device arrays split along B over the mesh."""
  batch = pad_batch(batch, mesh.size)
  sharding = NamedSharding(mesh, BATCH_SPEC)
  if jax.process_count() == 1:
    return {k: jax.device_put(v, sharding) for k, v in batch.items()}
  rows = process_rows(next(iter(batch.values())).shape[1])
  return {k: jax.make_array_from_process_local_data(sharding, v[:, rows], v.shape)
          for k, v in batch.items()}


def state_shardings(state: state_lib.TrainState, mesh: Mesh):
  """A tree of shardings for `state`: replicated, except per-example model state (along B)."""
  replicated, per_example = NamedSharding(mesh, P()), NamedSharding(mesh, BATCH_SPEC)
  model_state = {name: jax.tree_util.tree_map(
      lambda _: per_example if name in state_lib.PER_EXAMPLE_COLLECTIONS else replicated, value)
      for name, value in state.model_state.items()}
  shardings = jax.tree_util.tree_map(lambda _: replicated, state.replace(model_state={}))
  return shardings.replace(model_state=model_state)


def place_state(state: state_lib.TrainState, mesh: Mesh) -> state_lib.TrainState:
  """Puts a host or device state onto the mesh with `state_shardings`.

  Raises ValueError when per-example model state has a batch size the devices
  do not divide: its rows must line up with the batch rows, which are never
  padded for it.
  """
  for name in state_lib.PER_EXAMPLE_COLLECTIONS:
    for leaf in jax.tree_util.tree_leaves(state.model_state.get(name, {})):
      if leaf.shape[1] % mesh.size:
        raise ValueError(f'model state {name!r} holds {leaf.shape[1]} examples, which {mesh.size} '
                         f'devices do not divide: make the batch size a multiple of {mesh.size}')
  shardings = state_shardings(state, mesh)
  if jax.process_count() == 1:
    return jax.device_put(state, shardings)
  return jax.tree_util.tree_map(
      lambda x, s: jax.make_array_from_callback(np.shape(x), s, lambda index: np.asarray(x)[index]),
      jax.device_get(state), shardings)


def replicate(tree, mesh: Mesh):
  """Host arrays (the same on every process) -> device arrays replicated over the mesh."""
  sharding = NamedSharding(mesh, P())
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)
  return jax.tree_util.tree_map(
      lambda x: jax.make_array_from_callback(np.shape(x), sharding, lambda index: np.asarray(x)[index]),
      tree)


def make_train_step(model, tx, task, mesh: Mesh, state: state_lib.TrainState,
                    ema_decay: float | None = None):
  """jit(vmap(train_step)) over seeds; state donated, batch sharded.

  The result is called as `step(state, batch, controls=None)`: `controls` holds
  `[S]` arrays (`steps.train_step`; None: every seed trains). It runs with `mesh` in
  context (`jax.set_mesh`), so layers that cannot be partitioned by XLA split the batch
  themselves (`cudnn_lstm.lstm`).
  """
  step = functools.partial(steps.train_step, model=model, tx=tx, task=task, ema_decay=ema_decay)
  shardings = state_shardings(state, mesh)
  replicated = NamedSharding(mesh, P())
  jitted = jax.jit(jax.vmap(step),
                   in_shardings=(shardings, NamedSharding(mesh, BATCH_SPEC), replicated),
                   out_shardings=(shardings, replicated), donate_argnums=0)
  every_seed = _every_seed(state)

  def run(state, batch, controls=None):
    with jax.set_mesh(mesh):
      return jitted(state, batch, every_seed if controls is None else controls)
  return run


def _every_seed(state: state_lib.TrainState) -> dict:
  """The controls under which every seed trains."""
  return {'active': np.ones(state.step.shape[0], bool)}


class WindowedTrainStep:
  """`make_train_step`'s step that also adds its Sums into a running window on the devices.

  `step(state, window, batch, controls=None) -> (state, window)`: the window after it is
  `metrics.merge(window, sums)` of the step's `[S]` Sums, computed in the same compiled
  program, so a loop that logs every k steps reads the devices once per k steps and
  dispatches nothing else per step. State and window are donated (use the returned ones).
  `empty_window(state, batch, controls=None)` is an all-zero window to start from (each
  call a fresh one, replicated; its shapes come from the first call's arguments). Adding
  the step's Sums to zeros gives those Sums exactly (sums, counts and norms are never
  -0.0), so the window holds the numbers the same merge on the host gives.
  """

  def __init__(self, model, tx, task, mesh: Mesh, state: state_lib.TrainState,
               ema_decay: float | None = None):
    step = functools.partial(steps.train_step, model=model, tx=tx, task=task,
                             ema_decay=ema_decay)
    # Nested in `windowed`, this jit traces the step once for the window's shapes and the
    # program alike (JAX caches the trace).
    self._step = jax.jit(jax.vmap(step))
    self.mesh = mesh
    replicated = NamedSharding(mesh, P())
    shardings = state_shardings(state, mesh)

    def windowed(state, window, batch, controls):
      state, sums = self._step(state, batch, controls)
      return state, metrics.merge(window, sums)

    self._jitted = jax.jit(
        windowed, donate_argnums=(0, 1),
        in_shardings=(shardings, replicated, NamedSharding(mesh, BATCH_SPEC), replicated),
        out_shardings=(shardings, replicated))
    self._every_seed = _every_seed(state)
    self._zeros = None

  def __call__(self, state, window, batch, controls=None):
    """One step: `(state, window)` after it (see the class)."""
    with jax.set_mesh(self.mesh):
      return self._jitted(state, window, batch,
                          self._every_seed if controls is None else controls)

  def empty_window(self, state, batch, controls=None) -> metrics.Sums:
    """A fresh all-zero window `[S]` for steps on arguments like these."""
    if self._zeros is None:
      with jax.set_mesh(self.mesh):
        _, shapes = jax.eval_shape(self._step, state, batch,
                                   self._every_seed if controls is None else controls)
      self._zeros = jax.jit(
          lambda: jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes),
          out_shardings=NamedSharding(self.mesh, P()))
    return self._zeros()


def shared_model_state(model_state: dict) -> dict:
  """The model state evaluation uses: every collection without an example axis."""
  return {k: v for k, v in model_state.items() if k not in state_lib.PER_EXAMPLE_COLLECTIONS}


def make_eval_step(model, task, extra_sums, mesh: Mesh):
  """jit(vmap(eval_step)) over seeds: (params [S], model state [S], batch [S, B]) -> Sums [S],
  run with `mesh` in context (as `make_train_step`)."""
  step = functools.partial(steps.eval_step, model=model, task=task, extra_sums=extra_sums)
  replicated = NamedSharding(mesh, P())
  jitted = jax.jit(jax.vmap(step), out_shardings=replicated,
                   in_shardings=(replicated, replicated, NamedSharding(mesh, BATCH_SPEC)))

  def run(params, model_state, batch):
    with jax.set_mesh(mesh):
      return jitted(params, model_state, batch)
  return run


def any_process(flag: bool) -> bool:
  """True on every process when `flag` is true on any (a stop request agreed by all)."""
  if jax.process_count() == 1:
    return bool(flag)
  from jax.experimental import multihost_utils
  return bool(np.any(multihost_utils.process_allgather(np.asarray([flag], np.int32))))


def agreed_stop(requested: bool, sync_point: bool) -> bool:
  """Whether the run stops after this step: the same answer on every process at the same step.

  With one process that is `requested` itself, at any step. With several, a request is
  agreed (`any_process`, which waits for every process) only where `sync_point` is true;
  elsewhere the answer is False. Every process must pass the same `sync_point` at the same
  step: the training loop passes its log and checkpoint steps, where it waits for the
  devices anyway, so a stop costs nothing at the other steps.
  """
  if jax.process_count() == 1:
    return bool(requested)
  return sync_point and any_process(requested)
