"""Orbax checkpoints in `workdir/checkpoints`: periodic, on SIGTERM/Ctrl-C, auto-resume.

Each checkpoint holds the train state and the run's resolved config (so tools
can rebuild the model without the original config file). Resume order: the
newest checkpoint in `workdir` that restores (damaged newer ones are logged with
`absl.logging.warning` and skipped, never deleted), else a fresh state.

Synopsis:
  ckpt = Checkpointer(workdir / 'checkpoints', max_to_keep=3)
  state = ckpt.restore_latest(fresh_state) or fresh_state
  state, step = ckpt.restore_latest_with_step(fresh_state) or (fresh_state, None)
  ckpt.save(step, state, config_dict)              # + extra JSON items: save(..., extra={'best': {...}})
  ckpt = Checkpointer(directory, asynchronous=True)   # save() returns before the write ends:
  ckpt.save(step, state, config_dict); ...; ckpt.wait()   # wait() before relying on the step
  state_dict = ckpt.restore_state_dict_at(step)    # that step exactly, without a template
  with ckpt.stop_requests() as stop:  ...  if stop.requested: save and leave
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import threading
from typing import Any, Callable

import flax
import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging
from orbax.checkpoint._src.metadata import array_metadata_store

from seqnets.training import param_names


class NoRestorableCheckpointError(RuntimeError):
  """Checkpoints exist, but none of them restores."""


def _state_handler() -> ocp.StandardCheckpointHandler:
  """orbax's standard handler, with every jax.Array written whole by its first replica.

  By default orbax splits each replicated array among its replicas and has each
  write its part (replica-parallel saving), which costs a compiled slice per part
  and shape: about 3 s of a small model's first save on 8 CPU devices. The state
  here is small and replicated over the data axis, so the split buys nothing (orbax
  itself turns it off on GPUs). orbax offers the switch only on the process-wide
  registry of type handlers; this handler gets a registry of its own instead, so
  other orbax users in the process are unaffected. The handler's class, hence the
  checkpoint's metadata and files, are orbax's standard ones.
  """
  handler = ocp.StandardCheckpointHandler()
  if not isinstance(getattr(handler, '_impl', None), ocp.PyTreeCheckpointHandler):
    raise RuntimeError('orbax.checkpoint.StandardCheckpointHandler changed: it has no '
                       'PyTreeCheckpointHandler `_impl` to give a type handler registry')
  arrays = ocp.type_handlers.ArrayHandler(use_replica_parallel=False,
                                          array_metadata_store=array_metadata_store.Store())
  registry = ocp.type_handlers.create_type_handler_registry(
      *((ty, ocp.type_handlers.get_type_handler(ty))
        for ty in (int, float, bytes, np.number, np.ndarray, str)),
      (jax.Array, arrays))
  handler._impl = ocp.PyTreeCheckpointHandler(type_handler_registry=registry)
  return handler


def _handler_registry() -> ocp.handlers.DefaultCheckpointHandlerRegistry:
  """The state through `_state_handler`; every other item (JSON) through orbax's default."""
  registry = ocp.handlers.DefaultCheckpointHandlerRegistry()
  handler = _state_handler()
  registry.add('state', ocp.args.StandardSave, handler)
  registry.add('state', ocp.args.StandardRestore, handler)
  return registry


class StopRequest:
  """Set by SIGTERM or SIGINT while installed; the loop saves and stops at the next step."""

  def __init__(self):
    self.requested = False
    self.signal_name = ''

  def _handler(self, signum, frame):
    del frame
    self.requested = True
    self.signal_name = signal.Signals(signum).name


class Checkpointer:
  """Thin wrapper over `ocp.CheckpointManager` for a `TrainState` pytree.

  Damaged checkpoints: the `restore_*` methods try the steps on disk newest
  first; a step that fails to restore (truncated or missing files, unreadable
  metadata, ...) is logged with `absl.logging.warning` (naming its directory and
  the error) and the next older step is tried. When steps exist but none
  restores, they raise `RuntimeError` naming the directory and every step tried.
  Nothing is deleted. Unfinished saves (`<step>.orbax-checkpoint-tmp`
  directories) are not steps and are ignored.

  Asynchronous saving (`asynchronous=True`): `save` returns once the state is copied to
  host memory (the caller may then change or donate it) and orbax writes it in a
  background thread, into `<step>.orbax-checkpoint-tmp` renamed to `<step>` when complete,
  so a kill mid-write leaves every earlier step as it was. Steps that the new one pushes
  out of `max_to_keep` are deleted only after it is complete. Until `wait()` returns,
  `all_steps()` and `latest_step()` already list the step being written and no longer the
  ones it pushes out: wait before relying on them, restoring, deleting or moving a step.
  """

  def __init__(self, directory: str | pathlib.Path, max_to_keep: int | None = 3, *,
               asynchronous: bool = False):
    """`max_to_keep` None keeps every step (the caller deletes)."""
    self.directory = pathlib.Path(directory).absolute()
    self.asynchronous = asynchronous
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        handler_registry=_handler_registry())
    self._unrestorable: set[int] = set()

  def latest_step(self) -> int | None:
    """The newest step on disk, whether or not it restores (None when there is none)."""
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    """Every step on disk, ascending."""
    return sorted(self.manager.all_steps())

  @property
  def unrestorable_steps(self) -> list[int]:
    """Steps that failed to restore through this object so far, ascending."""
    return sorted(self._unrestorable)

  def step_directory(self, step: int) -> pathlib.Path:
    """Where orbax keeps step `step` (whether or not it exists)."""
    return self.directory / str(step)

  def restore_latest(self, template: Any) -> Any | None:
    """The newest restorable state shaped like `template`, or None when there is no step."""
    found = self.restore_latest_with_step(template)
    return None if found is None else found[0]

  def restore_latest_with_step(self, template: Any) -> tuple[Any, int] | None:
    """`(state, step)` of the newest step that restores, or None when there is no step.

    `step` is below `latest_step()` when newer steps are damaged.
    Raises RuntimeError when steps exist but none restores.
    """
    target = flax.serialization.to_state_dict(template)

    def restore(step):
      try:
        return self.manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))['state']
      except Exception:
        renamed = self._restore_renamed(step, target)
        if renamed is None:
          raise
        return renamed

    found = self._newest_restorable('state', restore)
    if found is None:
      return None
    restored, step = found
    return flax.serialization.from_state_dict(template, restored), step

  def _restore_renamed(self, step: int, target: dict) -> dict | None:
    """Step `step` written with parameter names of an earlier version (`param_names`),
    renamed and placed like `target`; None when it holds no such names or still does not fit."""
    try:
      raw = self._restore_raw(step)
    except Exception:
      return None
    if not param_names.is_renamed(raw):
      return None
    renamed = param_names.rename(raw)
    if jax.tree_util.tree_structure(renamed) != jax.tree_util.tree_structure(target):
      return None
    return jax.tree_util.tree_map(
        lambda value, like: jax.device_put(np.asarray(value, like.dtype), like.sharding)
        if hasattr(like, 'sharding') else value, renamed, target)

  def _restore_raw(self, step: int) -> dict:
    """Step `step`'s state as saved, without a template, on this process's first device."""
    # A checkpoint written on other devices (another device count, other processes)
    # restores onto this process's first device.
    fallback = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.device_get(self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(fallback_sharding=fallback)))['state'])

  def restore_state_dict(self) -> tuple[dict, int] | None:
    """`(state dict, step)` of the newest step that restores, without a template; None without steps.

    The state dict is nested dicts of NumPy arrays (`['params']`, `['opt_state']`, ...).
    Raises RuntimeError when steps exist but none restores.
    """
    return self._newest_restorable('state',
                                   lambda step: param_names.rename(self._restore_raw(step)))

  def restore_state_dict_at(self, step: int) -> dict:
    """The state dict of step `step` (like `restore_state_dict`), with no fallback: RuntimeError
    naming the step's directory when it does not restore, FileNotFoundError when it is not on disk."""
    if step not in self.manager.all_steps():
      raise FileNotFoundError(f'{self.directory} has no step {step}; its steps: {self.all_steps()}')
    try:
      return param_names.rename(self._restore_raw(step))
    except Exception as err:
      self._unrestorable.add(step)
      raise RuntimeError(f'cannot restore checkpoint {self.step_directory(step)}: '
                         f'{_describe(err)}') from err

  def restore_json(self, step: int, item: str) -> Any | None:
    """The JSON item `item` saved with step `step` (`save(..., extra=)`); None when the step has
    no such item (e.g. written before the item existed). RuntimeError when it does not restore."""
    if not (self.step_directory(step) / item).is_dir():
      return None
    try:
      return self.manager.restore(step, args=ocp.args.Composite(**{item: ocp.args.JsonRestore()}))[item]
    except Exception as err:
      raise RuntimeError(f'cannot restore the {item} of checkpoint {self.step_directory(step)}: '
                         f'{_describe(err)}') from err

  def restore_config(self, step: int | None = None) -> dict:
    """The config saved with checkpoint `step`; by default that of the newest step whose config restores.

    Raises FileNotFoundError without steps, RuntimeError when the config of
    `step` (or of every step) cannot be restored.
    """
    def restore(s: int) -> dict:
      return self.manager.restore(s, args=ocp.args.Composite(config=ocp.args.JsonRestore()))['config']

    if step is not None:
      try:
        return restore(step)
      except Exception as err:
        raise RuntimeError(f'cannot restore the config of checkpoint {self.step_directory(step)}: '
                           f'{_describe(err)}') from err
    found = self._newest_restorable('config', restore)
    if found is None:
      raise FileNotFoundError(f'no checkpoint in {self.directory}')
    return found[0]

  def save(self, step: int, state: Any, config: dict, extra: dict[str, Any] | None = None) -> None:
    """Saves and, unless asynchronous, waits until the checkpoint is on disk (a stop right
    after cannot lose it). An asynchronous save first waits for the one before.

    `extra` maps item names to JSON values saved beside the state and config
    (`restore_json`). A step already on disk is kept, unless it failed to
    restore through this object: then its directory is renamed to
    `<step>.unrestorable[-n]` (never deleted; orbax ignores it) and the step is
    saved afresh.
    """
    self.wait()
    if step in self.manager.all_steps():
      if step not in self._unrestorable:
        return
      self._move_aside(step)
    items = {name: ocp.args.JsonSave(value) for name, value in (extra or {}).items()}
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(flax.serialization.to_state_dict(state)),
        config=ocp.args.JsonSave(config), **items), force=True)
    if not self.asynchronous:
      self.wait()

  def wait(self) -> None:
    """Returns once the save in flight, if any, is on disk and the steps it pushed out are
    deleted; raises the error of a save that failed."""
    self.manager.wait_until_finished()

  def delete(self, step: int) -> None:
    """Deletes step `step` (orbax's own deletion)."""
    self.manager.delete(step)

  def move_aside(self, step: int, suffix: str) -> pathlib.Path:
    """Renames the directory of `step` to `<step>.<suffix>[-n]` (orbax then ignores it); the new path."""
    return self._move_aside(step, suffix)

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()

  def _newest_restorable(self, item: str, restore: Callable[[int], Any]) -> tuple[Any, int] | None:
    """`(restore(step), step)` for the newest step where `restore` succeeds; None without steps."""
    steps = sorted(self.manager.all_steps(), reverse=True)
    errors = []
    for i, step in enumerate(steps):
      try:
        return restore(step), step
      except Exception as err:  # Any failure of one step: tensorstore, JSON, missing files.
        errors.append((step, err))
        self._unrestorable.add(step)
        nxt = f'falling back to step {steps[i + 1]}' if i + 1 < len(steps) else 'no older step left'
        logging.warning('cannot restore the %s of checkpoint %s (left in place): %s; %s',
                        item, self.step_directory(step), _describe(err), nxt)
    if not errors:
      return None
    details = '; '.join(f'step {step}: {_describe(err)}' for step, err in errors)
    raise NoRestorableCheckpointError(
        f'no checkpoint in {self.directory} could be restored (the {item} of steps '
        f'{[step for step, _ in errors]} tried, newest first; all left in place): {details}'
    ) from errors[0][1]

  def _move_aside(self, step: int, suffix: str = 'unrestorable') -> pathlib.Path:
    """Renames the directory of `step` to a name orbax does not take for a step."""
    source = self.step_directory(step)
    target = self.directory / f'{step}.{suffix}'
    n = 1
    while target.exists():
      n += 1
      target = self.directory / f'{step}.{suffix}-{n}'
    os.rename(source, target)
    self.manager.reload()
    self._unrestorable.discard(step)
    if suffix == 'unrestorable':
      logging.warning('checkpoint %s failed to restore earlier: moved it to %s and saving step %d '
                      'afresh', source, target, step)
    return target

  @staticmethod
  @contextlib.contextmanager
  def stop_requests():
    """Installs SIGTERM/SIGINT handlers that set a `StopRequest` (main thread only)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
      yield request
      return
    previous = {s: signal.signal(s, request._handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
      yield request
    finally:
      for s, handler in previous.items():
        signal.signal(s, handler)


def _describe(err: BaseException) -> str:
  """`Type: first line of the message`, without tensorstore's long spec dump."""
  text = str(err).split(' [tensorstore_spec')[0].strip()
  text = text.splitlines()[0] if text else ''
  return f'{type(err).__name__}: {text[:500]}'
