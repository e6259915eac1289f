"""Best checkpoints and early stopping (`config.train.best_metric`, `best_mode`,
`early_stopping_patience`).

At every evaluation of the evaluator that `best_metric` names (`<evaluator>/<metric>`),
each seed's value is compared with that seed's best so far: strictly higher (`best_mode`
'max') or lower ('min') is an improvement; a tie keeps the earlier step; a value that is
not finite never improves, and any finite value improves on none. The final evaluation
counts like the others.

`checkpoints_best/` is a second orbax CheckpointManager beside `checkpoints/`. Each of its
steps holds the parameters and model state (without per-example collections) of every
seed, stacked `[S, ...]` as in training, where each seed's slice is that seed's best so
far: step t is written when a seed improved at step t, and the slices of the seeds that
did not improve are carried over from the previous best checkpoint. Its JSON item `best`
gives each seed's best step and value and the step its slice comes from (`params_step`).
So the newest step of `checkpoints_best/` is the run's best, for every seed at once, and
the latest-checkpoint rotation (`max_checkpoints_to_keep`) never touches it. An older best
checkpoint is deleted once no latest checkpoint that a resume could start from refers to it.

Early stopping: a seed stops after `early_stopping_patience` evaluations in a row without
an improvement. From the next step on its parameters, optimizer state and model state stay
as they are (the train step's `active` control; the seed still runs through the vmapped
step), its metrics are no longer logged, and it is not marked failed. The run ends when
every seed has stopped or failed; the final evaluation is, as always, of the latest
parameters (for a stopped seed: those of the step it stopped at).

Resume: the tracker (each seed's best step, value and metrics, evaluations since its best,
stop step, the best checkpoint in use, and the evaluation not yet passed to a
reduce_on_plateau optimizer) is written into `best_tracking.json` (atomically, under the
step of each latest checkpoint, before that checkpoint). A resumed run takes the tracker of
the step it resumes from and sets aside (renames to `<step>.superseded`) the best
checkpoints written after it, which the run will write again: it chooses the same best as
a run that never stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from typing import Any, Callable, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging

from seqnets import files
from seqnets.training import checkpoints
from seqnets.training import parallel
from seqnets.training import run_checkpoints
from seqnets.training import state as state_lib
from seqnets.training import validation

TRACKING_FILE = 'best_tracking.json'


def improves(value: float | None, best: float | None, mode: str) -> bool:
  """Whether `value` is a new best over `best` (None: no best yet) in `mode` 'max' or 'min'.

  Strictly better only (a tie keeps the earlier best); a value that is None or not
  finite never improves.
  """
  if value is None or not math.isfinite(value):
    return False
  if best is None:
    return True
  return value > best if mode == 'max' else value < best


def _number(value: Any) -> float | None:
  """A metric value as a float (JSON writes NaN as 'nan'); None when it is no number."""
  if isinstance(value, bool):
    return None
  if isinstance(value, (int, float)):
    return float(value)
  if isinstance(value, str):
    try:
      return float(value)
    except ValueError:
      return None
  return None


def _numbers(result: dict, prefix: str) -> dict:
  """The scalar numbers of an evaluation record whose keys start with `prefix`."""
  return {k: v for k, v in result.items()
          if k.startswith(prefix) and isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclasses.dataclass
class SeedBest:
  """One seed's best so far."""
  step: int | None = None             # the step of its best evaluation
  value: float | None = None
  metrics: dict = dataclasses.field(default_factory=dict)   # its evaluator's numbers then
  since: int = 0                      # evaluations since the best (all of them before one)
  stopped_step: int | None = None     # set when early stopping stopped the seed


@dataclasses.dataclass
class Tracker:
  """The best so far of every seed, from a sequence of evaluations (pure host bookkeeping).

  `observe(step, results)` takes one evaluation (one result dict per seed, keys
  `eval/<evaluator>/<metric>`); `pending[i]` is seed i's newest value with lower
  better (negated for 'max'), until the optimizer has taken it (None: nothing new).
  """
  metric: str
  mode: str
  patience: int | None
  seeds: list[SeedBest]
  pending: list[float | None]
  observed_step: int = -1
  saved_at: int | None = None         # the best checkpoint holding every seed's best

  @classmethod
  def fresh(cls, metric: str, mode: str, patience: int | None, num_seeds: int) -> 'Tracker':
    return cls(metric, mode, patience, [SeedBest() for _ in range(num_seeds)], [None] * num_seeds)

  @property
  def key(self) -> str:
    return f'eval/{self.metric}'

  def observe(self, step: int, results: Sequence[dict], skip=()) -> tuple[list[int], list[int]]:
    """(seeds that improved, seeds that stopped) after the evaluation `results` at `step`.

    Results without the metric, and steps not after the last observed one, change
    nothing; seeds in `skip` (failed) and stopped seeds are left as they are.
    """
    if step <= self.observed_step or not any(self.key in r for r in results):
      return [], []
    self.observed_step = step
    improved, stopped = [], []
    for index, (seed, result) in enumerate(zip(self.seeds, results)):
      if index in skip or seed.stopped_step is not None or self.key not in result:
        continue
      value = _number(result[self.key])
      finite = value is not None and math.isfinite(value)
      self.pending[index] = (value if self.mode == 'min' else -value) if finite else None
      if improves(value, seed.value, self.mode):
        seed.metrics = _numbers(result, self.key.rpartition('/')[0] + '/')
        seed.step, seed.value, seed.since = step, value, 0
        improved.append(index)
        continue
      seed.since += 1
      if self.patience and seed.since >= self.patience:
        seed.stopped_step = step
        stopped.append(index)
    return improved, stopped

  def take_pending(self) -> np.ndarray:
    """`[S]` float32 values for the optimizer (NaN: nothing new), then cleared."""
    values = np.asarray([np.nan if v is None else v for v in self.pending], np.float32)
    self.pending = [None] * len(self.pending)
    return values

  def forget_best(self) -> None:
    """Drops every seed's best (its checkpoint is lost); stops and counts stay."""
    for seed in self.seeds:
      seed.step, seed.value, seed.metrics = None, None, {}
    self.saved_at = None

  def to_json(self) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(self)))

  @classmethod
  def from_json(cls, record: dict) -> 'Tracker':
    record = dict(record)
    record['seeds'] = [SeedBest(**seed) for seed in record['seeds']]
    return cls(**record)


class BestKeeper:
  """The training loop's side of best checkpoints, early stopping and plateau values.

  Disabled (every method a no-op, every seed active) without `config.train.best_metric`.
  Every process keeps the same tracker (evaluations agree across processes); process 0
  writes `best_tracking.json`; orbax saves collectively.
  """

  def __init__(self, config: ml_collections.ConfigDict, workdir: pathlib.Path, num_seeds: int,
               primary: bool, place: Callable[[Any], Any] = lambda tree: tree):
    self.num_seeds, self.primary, self.place = num_seeds, primary, place
    self.metric = validation.best_metric(config)
    self.enabled = self.metric is not None
    self.plateau = config.optim.get('schedule') == 'reduce_on_plateau'
    self.accumulate_steps = config.optim.get('accumulate_steps') or 1
    self.path = workdir / TRACKING_FILE
    self.tracker = Tracker.fresh(self.metric, config.train.get('best_mode'),
                                 config.train.get('early_stopping_patience'), num_seeds)
    self.entries: dict[int, dict] = {}        # tracker of each latest checkpoint on disk
    self.ckpt = (checkpoints.Checkpointer(workdir / run_checkpoints.DIRECTORIES['best'],
                                          max_to_keep=None) if self.enabled else None)
    self._host: dict | None = None            # the stacked best, NumPy
    self._params_steps: list[int | None] = [None] * num_seeds
    self._controls = None

  # Resume.

  def resume(self, step: int | None) -> None:
    """Continues from the tracker of latest checkpoint `step` (None: a fresh start)."""
    if not self.enabled:
      return
    if step is not None:
      self.entries = self._read_entries()
      if step in self.entries:
        self.tracker = Tracker.from_json(self.entries[step])
      else:
        logging.warning('%s holds no best so far for step %d, the step this run resumes from; '
                        'the best starts again from the next evaluation', self.path, step)
    saved_at = self.tracker.saved_at
    later = [s for s in self.ckpt.all_steps() if saved_at is None or s > saved_at]
    if later:
      if self.primary:
        for s in later:
          target = self.ckpt.move_aside(s, 'superseded')
          logging.warning('best checkpoint %s was written after step %s, the step this run resumes '
                          'from: moved it to %s (the run writes its best again)',
                          self.ckpt.step_directory(s), step, target)
      _sync('best_resume')
      self.ckpt.manager.reload()
    if saved_at is not None:
      try:
        state = self.ckpt.restore_state_dict_at(saved_at)
        record = self.ckpt.restore_json(saved_at, 'best') or {}
        self._host = {'params': state['params'], 'model_state': state.get('model_state') or {}}
        self._params_steps = [s['params_step'] for s in record['seeds']]
      except (RuntimeError, FileNotFoundError, KeyError, TypeError) as err:
        logging.warning('cannot read the best checkpoint of step %d (%s); the best starts again '
                        'from the next evaluation', saved_at, err)
        self.tracker.forget_best()

  def _read_entries(self) -> dict[int, dict]:
    try:
      record = json.loads(self.path.read_text())
      return {int(step): entry for step, entry in record['trackers'].items()}
    except FileNotFoundError:
      return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
      logging.warning('cannot read %s (%s)', self.path, err)
      return {}

  # During training.

  @property
  def stopped(self) -> set[int]:
    """Indices of the seeds that early stopping stopped."""
    return {i for i, s in enumerate(self.tracker.seeds) if s.stopped_step is not None}

  def controls(self, step: int) -> dict | None:
    """The controls (`steps.train_step`, placed) of the train step that starts at `step`.
    An evaluation's plateau value waits for the next step that updates the parameters (with
    `optim.accumulate_steps` k, a step s with (s + 1) divisible by k): optax.MultiSteps
    drops what the other micro-steps give the optimizer."""
    due = (step + 1) % self.accumulate_steps == 0
    if self.plateau and due and any(v is not None for v in self.tracker.pending):
      self._controls = None
      return self.place({'active': self._active(), 'plateau_value': self.tracker.take_pending()})
    if self._controls is None:
      controls = {'active': self._active()}
      if self.plateau:
        controls['plateau_value'] = np.full(self.num_seeds, np.nan, np.float32)
      self._controls = self.place(controls)
    return self._controls

  def _active(self) -> np.ndarray:
    return np.asarray([s.stopped_step is None for s in self.tracker.seeds], bool)

  def observe(self, step: int, results: Sequence[dict], state, config: dict,
              skip=()) -> list[tuple[int, dict]]:
    """Takes the evaluation `results` of `state` at `step`: writes the best checkpoint when a
    seed improved, stops seeds. Returns the `(seed index, record)` lines for metrics.jsonl."""
    if not self.enabled:
      return []
    improved, stopped = self.tracker.observe(step, results, skip)
    if improved:
      self._save(step, improved, state, config)
    if stopped:
      self._controls = None
    lines = [(i, {'best_metric': self.metric, 'best_value': self.tracker.seeds[i].value})
             for i in improved]
    lines += [(i, {'early_stopped': True, 'best_step': self.tracker.seeds[i].step})
              for i in stopped]
    return lines

  def _save(self, step: int, improved: list[int], state, config: dict) -> None:
    current = jax.device_get({'params': state_lib.evaluated_params(state),
                              'model_state': parallel.shared_model_state(state.model_state)})
    if self._host is None:      # the first save: every slice from now
      self._host = jax.tree_util.tree_map(np.array, current)
      self._params_steps = [step] * self.num_seeds
    else:
      def replace(host, new):
        host = np.array(host)
        host[improved] = np.asarray(new)[improved]
        return host
      self._host = jax.tree_util.tree_map(replace, self._host, current)
    for index in improved:
      self._params_steps[index] = step
    seeds = [{'step': s.step, 'value': s.value, 'params_step': p}
             for s, p in zip(self.tracker.seeds, self._params_steps)]
    self.ckpt.save(step, self._host, config, extra={'best': {
        'metric': self.metric, 'mode': self.tracker.mode, 'seeds': seeds}})
    self.tracker.saved_at = step

  def before_save(self, step: int, latest_steps: Sequence[int]) -> None:
    """Records the tracker under latest checkpoint `step` (call before saving it);
    `latest_steps` are the latest checkpoints on disk (others' records are dropped)."""
    if not self.enabled:
      return
    kept = set(latest_steps)
    self.entries = {s: e for s, e in self.entries.items() if s in kept}
    self.entries[step] = self.tracker.to_json()
    if self.primary:
      files.write_atomically(self.path, json.dumps(
          {'metric': self.metric, 'mode': self.tracker.mode,
           'trackers': {str(s): e for s, e in sorted(self.entries.items())}}, indent=1) + '\n')

  def after_save(self, latest_steps: Sequence[int]) -> None:
    """Deletes the best checkpoints that neither this run nor any latest checkpoint on disk
    (`latest_steps`) refers to."""
    if not self.enabled or self.tracker.saved_at is None:
      return
    needed = {self.tracker.saved_at} | {self.entries[s].get('saved_at') for s in latest_steps
                                        if s in self.entries}
    for step in self.ckpt.all_steps():
      if step not in needed and step < self.tracker.saved_at:
        self.ckpt.delete(step)

  def summary(self, index: int) -> dict:
    """Seed index `index`'s best, for results.json."""
    if not self.enabled:
      return {}
    seed = self.tracker.seeds[index]
    out = {'best_step': seed.step, 'best_value': seed.value, 'best': seed.metrics}
    if seed.stopped_step is not None:
      out['early_stopped_step'] = seed.stopped_step
    return out

  def close(self) -> None:
    if self.ckpt is not None:
      self.ckpt.close()


def _sync(name: str) -> None:
  """Waits for every process (nothing to wait for with one)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)
