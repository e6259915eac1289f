"""Checkpoint averaging: the mean of the parameters of a run's last N checkpoints.

`average_checkpoints(workdir, last=N)` restores the newest N steps of `checkpoints/` and
writes their mean into `checkpoints_average/<newest step>/` (a third orbax
CheckpointManager, holding one step: a new average replaces the old one), with the run's
config and a JSON item `average` listing the steps averaged. Every program reads it with
`--checkpoint=average` (`run_checkpoints`); resuming never does, and the default
checkpoint stays 'best' or 'latest'.

Every floating-point array of the parameters and of the model state (without per-example
collections, e.g. batch statistics are averaged too) is the mean over the N steps,
computed in float64 and stored in its own dtype; any other array comes from the newest
step. Only the checkpoints still on disk can be averaged (`max_checkpoints_to_keep`).
"""

from __future__ import annotations

import json
import pathlib

import jax
import numpy as np

from seqnets.training import checkpoints
from seqnets.training import parallel
from seqnets.training import run_checkpoints


def mean_of(trees: list) -> object:
  """The mean of same-shaped trees of arrays (floats: float64 mean in their dtype; others:
  the last tree's)."""
  def mean(*leaves):
    last = np.asarray(leaves[-1])
    if not np.issubdtype(last.dtype, np.floating):
      return last
    return np.mean(np.stack([np.asarray(l, np.float64) for l in leaves]), axis=0).astype(last.dtype)
  return jax.tree_util.tree_map(mean, *trees)


def average_checkpoints(workdir: str | pathlib.Path, last: int) -> tuple[int, list[int]]:
  """Writes the mean of the last `last` checkpoints of `workdir` (see the module docstring).

  Returns `(step written, steps averaged)`. ValueError naming `last` when fewer
  checkpoints exist (or `last` < 1), FileNotFoundError without a run or checkpoints,
  RuntimeError naming a step that does not restore (none is skipped: the mean would be
  of other steps than asked).
  """
  workdir = pathlib.Path(workdir)
  if isinstance(last, bool) or not isinstance(last, int) or last < 1:
    raise ValueError(f'--last={last!r}: give the number of checkpoints to average, an integer >= 1')
  directory = workdir / run_checkpoints.DIRECTORIES['latest']
  if not run_checkpoints.has_steps(directory):
    raise FileNotFoundError(f'{directory} has no checkpoint yet')
  latest = checkpoints.Checkpointer(directory, max_to_keep=None)
  try:
    available = latest.all_steps()
    if last > len(available):
      raise ValueError(f'--last={last}: {directory} holds {len(available)} checkpoints '
                       f'(steps {available}; config.train.max_checkpoints_to_keep keeps that many)')
    steps = available[-last:]
    states = [latest.restore_state_dict_at(step) for step in steps]
    config = latest.restore_config(steps[-1])
  finally:
    latest.close()
  average = {'params': mean_of([run_checkpoints.evaluated_params(s) for s in states]),
             'model_state': mean_of([parallel.shared_model_state(s.get('model_state') or {})
                                     for s in states])}
  target = checkpoints.Checkpointer(workdir / run_checkpoints.DIRECTORIES['average'], max_to_keep=1)
  try:
    if steps[-1] in target.all_steps():
      target.delete(steps[-1])
    target.save(steps[-1], average, config, extra={'average': {'steps': steps}})
  finally:
    target.close()
  return steps[-1], steps


def describe(workdir: str | pathlib.Path, step: int, steps: list[int]) -> str:
  """One line saying what `average_checkpoints` wrote."""
  path = pathlib.Path(workdir) / run_checkpoints.DIRECTORIES['average'] / str(step)
  return json.dumps({'written': str(path), 'steps': steps})
