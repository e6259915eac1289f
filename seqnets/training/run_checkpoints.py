"""Which checkpoint of a run a program reads: 'latest', 'best', 'average' or a step.

  latest   the newest restorable step of `checkpoints/` (what a resume continues from)
  best     the newest restorable step of `checkpoints_best/`: each seed's parameters at its
           best evaluation of `config.train.best_metric` (`training/best.py`), each seed
           from its own step
  average  the newest restorable step of `checkpoints_average/`: the mean of the parameters
           of the last N checkpoints (`python -m experiments.average_checkpoints`)
  STEP     step STEP of `checkpoints/` exactly (an integer, or its digits)

The default (None) is 'best' when the run has a best checkpoint, else 'latest': runs
trained without `best_metric`, and runs written before best checkpoints existed, read
their latest checkpoint as before. `experiments.evaluate`, `generate` and `decode`
(`--checkpoint`), `saved_run.load_run(checkpoint=)` and `config.init_from_checkpoint` all
read through `restore`.

Synopsis:
  which = parse('best', '--checkpoint')         # 'latest' | 'best' | 'average' | int | None
  chosen = restore('runs/tagger', which)
  chosen.state['params']                        # [S, ...] NumPy arrays
  chosen.describe(seed_index=0)                 # 'best checkpoint, step 6000 (seed index 0)'
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

import jax

from seqnets.training import checkpoints

DIRECTORIES = {'latest': 'checkpoints', 'best': 'checkpoints_best', 'average': 'checkpoints_average'}
CHOICES = tuple(DIRECTORIES)


def parse(value: Any, name: str) -> str | int | None:
  """`value` as a choice: one of `CHOICES`, a step (int >= 0) or None (the default).
  ValueError naming `name` (the flag or config field) for anything else."""
  if value is None or (isinstance(value, str) and not value.strip()):
    return None
  if isinstance(value, str):
    text = value.strip()
    if text in CHOICES:
      return text
    if text.isdigit():
      return int(text)
  elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
    return int(value)
  raise ValueError(f"{name}={value!r}; valid: 'latest', 'best', 'average' or a step number "
                   f'(an integer >= 0)')


def has_steps(directory: pathlib.Path) -> bool:
  """Whether `directory` holds at least one orbax step (a directory named by a number)."""
  return directory.is_dir() and any(p.name.isdigit() and p.is_dir() for p in directory.iterdir())


def default(workdir: str | pathlib.Path) -> str:
  """'best' when `workdir` has a best checkpoint, else 'latest'."""
  return 'best' if has_steps(pathlib.Path(workdir) / DIRECTORIES['best']) else 'latest'


@dataclasses.dataclass(frozen=True)
class Chosen:
  """A restored checkpoint: `kind` is 'latest', 'best', 'average' or 'step'; `step` the orbax
  step read; `seed_steps` the training step of each seed's parameters (for 'best' each
  seed's best step; for 'average' the newest step averaged); `averaged` the steps whose mean
  an 'average' holds."""
  kind: str
  step: int
  state: dict
  seed_steps: tuple[int, ...]
  averaged: tuple[int, ...] = ()

  def describe(self, seed_index: int | None = None) -> str:
    """What was read, in words, e.g. 'best checkpoint, step 6000 (seed index 0)'."""
    if self.kind == 'best':
      if seed_index is None or not 0 <= seed_index < len(self.seed_steps):
        return f'best checkpoint (each seed from its best step: {list(self.seed_steps)})'
      return f'best checkpoint, step {self.seed_steps[seed_index]} (seed index {seed_index})'
    if self.kind == 'average':
      return f'average of the checkpoints of steps {list(self.averaged)}'
    if self.kind == 'step':
      return f'checkpoint of step {self.step}'
    return f'latest checkpoint, step {self.step}'


def evaluated_params(state: dict):
  """The parameters a state dict's evaluations use: its moving average (`ema_params`, a run
  with `optim.ema_decay`) when it keeps one, else `params`. Best and averaged checkpoints
  hold those already, as their `params`."""
  return state.get('ema_params') or state['params']


def restore(workdir: str | pathlib.Path, which: str | int | None = None) -> Chosen:
  """The checkpoint `which` (see the module docstring) of `workdir`, as NumPy state dicts.

  FileNotFoundError naming what is missing (no such directory, step or kind of checkpoint);
  RuntimeError when checkpoints exist but none restores.
  """
  workdir = pathlib.Path(workdir)
  which = parse(which, 'checkpoint')
  if which is None:
    which = default(workdir)
  kind = 'step' if isinstance(which, int) else which
  directory = workdir / DIRECTORIES['latest' if kind == 'step' else kind]
  if not has_steps(directory):
    if kind == 'best':
      raise FileNotFoundError(
          f'{workdir} has no best checkpoint ({directory} holds none: the run sets no '
          f'config.train.best_metric, or has not evaluated it yet); read the latest instead')
    if kind == 'average':
      raise FileNotFoundError(
          f'{workdir} has no averaged checkpoint; write one with python -m '
          f'experiments.average_checkpoints --workdir={workdir} --last=N')
    raise FileNotFoundError(f'{directory} has no checkpoint yet')
  ckpt = checkpoints.Checkpointer(directory, max_to_keep=None)
  try:
    if kind == 'step':
      state, step = ckpt.restore_state_dict_at(which), which
    else:
      found = ckpt.restore_state_dict()
      if found is None:
        raise FileNotFoundError(f'{directory} has no checkpoint yet')
      state, step = found
    state = dict(state, params=evaluated_params(state))
    num_seeds = int(jax.tree_util.tree_leaves(state['params'])[0].shape[0])
    seed_steps, averaged = (step,) * num_seeds, ()
    if kind == 'best':
      record = ckpt.restore_json(step, 'best') or {}
      seed_steps = tuple(int(s['params_step']) for s in record.get('seeds', [])) or seed_steps
    elif kind == 'average':
      averaged = tuple((ckpt.restore_json(step, 'average') or {}).get('steps', [step]))
  finally:
    ckpt.close()
  return Chosen(kind, step, state, seed_steps, averaged)
