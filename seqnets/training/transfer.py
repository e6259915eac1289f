"""Initialising a model from another run's parameters (fine-tuning, `config.init_from`).

Synopsis:
  params, report = transfer_params(fresh, source, target_vocab=prep.vocabulary,
                                   source_vocab=source_prep.vocabulary)
  params, report = init_from_run('runs/lm', fresh_params [S, ...], prep)   # every seed
  params, report = init_from_run('runs/lm', fresh, prep, checkpoint='latest')  # or 'best', a step

For every parameter of the new model (`fresh`, one seed's tree), by its '/'-joined path:
  copied      the source has the same path and shape: its values
  mapped      an embedding table (`.../embedding`, rows = the vocabulary) of either
              shape: the row of each token found in the source's vocabulary comes from
              the source; rows of new tokens keep their fresh initialisation
  partial     a kernel whose first (input) axis is longer than the source's, e.g. a
              recurrent layer that reads [word embedding ; character features] where
              the source read the word embedding only, or [→h ; ←h] where it read →h:
              the source's rows fill the first rows (the inputs the source saw come
              first), the rest stay fresh
  fresh       no source parameter of that path fits (e.g. the output layer of another
              task): kept as initialised
The report lists each path under its kind, so a run states what it reused.
"""

from __future__ import annotations

import pathlib
from typing import Any, Sequence

import flax
import jax
import numpy as np

from seqnets.tasks import base
from seqnets.training import run_checkpoints

KINDS = ('copied', 'mapped', 'partial', 'fresh')


def copy_rows(fresh: np.ndarray, source: np.ndarray, rows: np.ndarray) -> np.ndarray:
  """A copy of the table `fresh [..., V, E]` (any leading axes, e.g. seeds) whose row `i`
  is `source[rows[i]]` where `rows[i] >= 0` (`rows [V]`); the other rows stay as they are."""
  out = np.array(fresh, copy=True)
  hit = np.asarray(rows) >= 0
  out[..., hit, :] = np.asarray(source)[np.asarray(rows)[hit]].astype(out.dtype)
  return out


def _mapped_rows(fresh: np.ndarray, source: np.ndarray, target_vocab: Sequence[str],
                 source_vocab: Sequence[str]) -> tuple[np.ndarray, int]:
  """The fresh table with the rows of shared tokens taken from the source's."""
  index = {token: row for row, token in enumerate(source_vocab) if row < len(source)}
  rows = np.asarray([index.get(token, -1) for token in target_vocab], np.int64)
  return copy_rows(fresh, source, rows), int((rows >= 0).sum())


def transfer_params(fresh: Any, source: Any, *, target_vocab: Sequence[str] = (),
                    source_vocab: Sequence[str] = ()) -> tuple[Any, dict[str, list[str]]]:
  """`(params shaped like fresh, {kind: [paths]})` (see the module docstring). Raises
  ValueError when nothing at all fits (the runs share no parameter)."""
  fresh_flat = flax.traverse_util.flatten_dict(flax.serialization.to_state_dict(fresh))
  source_flat = {'/'.join(k): np.asarray(v) for k, v in
                 flax.traverse_util.flatten_dict(flax.serialization.to_state_dict(source)).items()}
  report: dict[str, list[str]] = {kind: [] for kind in KINDS}
  out = {}
  for key, value in fresh_flat.items():
    path = '/'.join(key)
    value = np.asarray(value)
    theirs = source_flat.get(path)
    kind = 'fresh'
    if theirs is not None:
      embedding = (path.endswith('embedding') and value.ndim == 2 and theirs.ndim == 2
                   and value.shape[1] == theirs.shape[1] and len(target_vocab) == len(value)
                   and len(source_vocab) == len(theirs))
      if embedding and tuple(target_vocab) != tuple(source_vocab):
        value, found = _mapped_rows(value, theirs, target_vocab, source_vocab)
        kind = 'mapped'
        path = f'{path} ({found} of {len(target_vocab)} rows)'
      elif theirs.shape == value.shape:
        value, kind = theirs.astype(value.dtype), 'copied'
      elif (value.ndim == theirs.ndim >= 2 and value.shape[1:] == theirs.shape[1:]
            and value.shape[0] > theirs.shape[0]):
        value = np.concatenate([theirs.astype(value.dtype), value[theirs.shape[0]:]])
        kind = 'partial'
        path = f'{path} ({theirs.shape[0]} of {value.shape[0]} rows)'
    report[kind].append(path)
    out[key] = value
  if not any(report[kind] for kind in KINDS if kind != 'fresh'):
    raise ValueError(f'no parameter of the source run fits this model; its parameters: '
                     f'{sorted(source_flat)[:8]}, this model\'s: '
                     f'{sorted("/".join(k) for k in fresh_flat)[:8]}')
  restored = flax.traverse_util.unflatten_dict(out)
  return flax.serialization.from_state_dict(fresh, restored), report


def init_from_run(workdir: str | pathlib.Path, fresh: Any, preprocessing: base.Preprocessing,
                  checkpoint: str | int | None = None) -> tuple[Any, dict[str, list[str]]]:
  """`fresh` (`[S, ...]`, one slice per seed) with the parameters of seed 0 of `workdir`'s
  checkpoint `checkpoint` (`run_checkpoints`: by default its best when it has one, else its
  newest) transferred into every seed (`transfer_params`, the word vocabularies from both
  runs' preprocessing.json). Beside the paths of each kind, the report's 'checkpoint'
  says in words which checkpoint was read. FileNotFoundError without such a checkpoint."""
  workdir = pathlib.Path(workdir)
  try:
    chosen = run_checkpoints.restore(workdir, checkpoint)
  except FileNotFoundError as e:
    raise FileNotFoundError(f'config.init_from={str(workdir)!r}: {e}') from None
  source = jax.tree_util.tree_map(lambda a: np.asarray(a)[0], chosen.state['params'])
  try:
    source_vocab = base.Preprocessing.load(workdir).vocabulary
  except FileNotFoundError:
    source_vocab = ()
  seeds = jax.tree_util.tree_leaves(fresh)[0].shape[0]
  slices, report = [], {}
  for seed in range(seeds):
    params, report = transfer_params(jax.tree_util.tree_map(lambda a: np.asarray(a)[seed], fresh),
                                     source, target_vocab=preprocessing.vocabulary,
                                     source_vocab=source_vocab)
    slices.append(params)
  stacked = jax.tree_util.tree_map(lambda *a: np.stack(a), *slices)
  report = {**report, 'checkpoint': chosen.describe(0)}
  return jax.tree_util.tree_map(lambda s, f: s.astype(f.dtype), stacked, fresh), report
