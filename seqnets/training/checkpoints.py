"""Orbax checkpoints in `workdir/checkpoints`: periodic, on SIGTERM/Ctrl-C, auto-resume.

Each checkpoint holds the train state and the run's resolved config (so tools
can rebuild the model without the original config file). Resume order: the
latest checkpoint in `workdir`, else a fresh state.

Synopsis:
  ckpt = Checkpointer(workdir / 'checkpoints', max_to_keep=3)
  state = ckpt.restore_latest(fresh_state) or fresh_state
  ckpt.save(step, state, config_dict)
  with ckpt.stop_requests() as stop:  ...  if stop.requested: save and leave
"""

from __future__ import annotations

import contextlib
import pathlib
import signal
import threading
from typing import Any

import flax
import numpy as np
import orbax.checkpoint as ocp


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
  """Thin wrapper over `ocp.CheckpointManager` for a `TrainState` pytree."""

  def __init__(self, directory: str | pathlib.Path, max_to_keep: int = 3):
    self.directory = pathlib.Path(directory).absolute()
    self.manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def restore_latest(self, template: Any) -> Any | None:
    """The latest saved state shaped like `template`, or None when there is none."""
    step = self.manager.latest_step()
    if step is None:
      return None
    target = flax.serialization.to_state_dict(template)
    restored = self.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
    return flax.serialization.from_state_dict(template, restored['state'])

  def restore_params(self, template: Any) -> Any:
    """Params of the latest checkpoint (of seed index 0), shaped like `template` (`[S, ...]`).

    For fine-tuning from another run: its optimizer state is not needed and
    its number of seeds may differ; every seed starts from its seed 0.
    """
    step = self.manager.latest_step()
    if step is None:
      raise FileNotFoundError(f'no checkpoint in {self.directory}')
    saved = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    saved = flax.traverse_util.flatten_dict(saved['state']['params'])
    wanted = flax.traverse_util.flatten_dict(flax.serialization.to_state_dict(template))
    if set(saved) != set(wanted):
      missing = sorted('/'.join(p) for p in set(wanted) - set(saved))
      raise ValueError(f'checkpoint {self.directory} (step {step}) does not fit this model; '
                       f'parameters it lacks: {missing[:5]}')
    restored = {}
    for path, like in wanted.items():
      value = np.asarray(saved[path])[0]
      if value.shape != like.shape[1:]:
        raise ValueError(f'checkpoint {self.directory}: {"/".join(path)} has shape {value.shape}, '
                         f'this model needs {like.shape[1:]}')
      restored[path] = np.broadcast_to(value, like.shape).astype(like.dtype)
    return flax.serialization.from_state_dict(template, flax.traverse_util.unflatten_dict(restored))

  def restore_config(self, step: int | None = None) -> dict:
    """The config saved with checkpoint `step` (latest by default)."""
    step = self.manager.latest_step() if step is None else step
    return self.manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))['config']

  def save(self, step: int, state: Any, config: dict) -> None:
    """Saves and waits until the checkpoint is on disk (a stop right after cannot lose it)."""
    if step in self.manager.all_steps():
      return
    self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(flax.serialization.to_state_dict(state)),
        config=ocp.args.JsonSave(config)), force=True)
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()

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
