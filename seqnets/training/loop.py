"""`train_and_evaluate(config, workdir)`: one run, from config to results on disk.

Writes into `workdir`: `config.json` (the resolved config), `metrics.jsonl`
(one JSON object per logged step and seed), `tensorboard/`, `checkpoints/`
and, at the end, `results.json` (final evaluation per seed). Rerunning with
the same `workdir` resumes from its latest checkpoint and ends with the same
parameters as a run that never stopped; `metrics.jsonl` loses the records
written after that checkpoint, and the first logged window after the resume
averages only the steps since the resume.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Callable, Sequence

import jax
import ml_collections
import numpy as np

from seqnets.data import factory as data_factory
from seqnets.models import factory as model_factory
from seqnets.training import checkpoints
from seqnets.training import evaluation
from seqnets.training import metrics as metrics_lib
from seqnets.training import objectives
from seqnets.training import optimizers
from seqnets.training import parallel
from seqnets.training import periodic
from seqnets.training import state as state_lib
from seqnets.training import validation
from seqnets.training import writers

Hook = Callable[[int, state_lib.TrainState], None]


@dataclasses.dataclass
class RunResult:
  step: int                         # steps done
  interrupted: bool                 # stopped by SIGTERM/SIGINT (state saved)
  final: list[dict[str, Any]]       # per seed: final evaluation ([] if interrupted)
  state: state_lib.TrainState


def _stack_seeds(batches: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  return {k: np.stack([b[k] for b in batches]) for k in batches[0]}


def _check_finite(pending: list[tuple[int, jax.Array]], ckpt: checkpoints.Checkpointer) -> None:
  """Raises FloatingPointError at the first step whose loss is NaN/Inf for any seed."""
  for step, loss in pending:
    loss = np.asarray(jax.device_get(loss))
    if not np.all(np.isfinite(loss)):
      bad = np.flatnonzero(~np.isfinite(loss)).tolist()
      raise FloatingPointError(
          f'non-finite training loss at step {step} (seed index {bad}); the last good checkpoint '
          f'(step {ckpt.latest_step()}) in {ckpt.directory} is kept')
  pending.clear()


def _check_freeze_patterns(config, params) -> None:
  patterns = tuple(config.optim.get('freeze') or ())
  single_seed = jax.tree_util.tree_map(lambda a: a[0], params)
  unmatched = optimizers.unmatched_patterns(single_seed, patterns)
  if unmatched:
    raise validation.ConfigError(
        f'config.optim.freeze patterns {unmatched} match no parameter; parameters are '
        f'{optimizers.param_paths(single_seed)}')


def _restore(config, ckpt: checkpoints.Checkpointer, fresh: state_lib.TrainState):
  """Resume order: this workdir's latest checkpoint → params of `config.init_from` → fresh."""
  resumed = ckpt.restore_latest(fresh)
  if resumed is not None:
    return resumed
  if config.get('init_from'):
    source = checkpoints.Checkpointer(pathlib.Path(config.init_from) / 'checkpoints')
    return fresh.replace(params=source.restore_params(fresh.params))
  return fresh


def _write_seeds(writer: writers.MetricWriter, step: int, per_seed: list[dict], seeds: list[int]):
  for seed, values in zip(seeds, per_seed):
    writer.write(step, {'seed': seed, **values})


def _save_confusion_matrices(final: list[dict], workdir: pathlib.Path) -> None:
  """`confusion_<split>.png` of seed index 0 for every split with a confusion matrix."""
  from seqnets.training import confusion
  for name, value in final[0].items():
    if name.endswith('/confusion'):
      split = name.split('/')[1]
      confusion.save_png(np.asarray(value), workdir / f'confusion_{split}.png', title=split)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                       num_devices: int | None = None, hooks: Sequence[Hook] = ()) -> RunResult:
  """Trains `config.num_seeds` seeds side by side, evaluates, writes everything to `workdir`.

  Args:
    config: see `configs/anbn.py` for the fields. Never modified.
    workdir: output directory; an existing one is resumed.
    num_devices: local devices to shard the batch over (all by default).
    hooks: called as `hook(steps_done, state)` after every step.
  Raises:
    ConfigError: a bad config value (before any data load or compile).
    FloatingPointError: a non-finite loss (the last good checkpoint is kept).
  """
  validation.validate(config)
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  config_dict = json.loads(config.to_json())
  (workdir / 'config.json').write_text(json.dumps(config_dict, indent=2) + '\n')

  source = data_factory.from_config(config.data)
  model = model_factory.from_config(config.model, source.info)
  total = config.train.num_train_steps
  tx = optimizers.from_config(config.optim, total)
  objective = objectives.OBJECTIVES[source.info.objective]
  mesh = parallel.create_mesh(num_devices)
  seeds = [config.seed + s for s in range(config.num_seeds)]

  example = next(source.train_batches(seeds[0], 0))
  state = state_lib.create_seeds(model, tx, seeds, example)
  _check_freeze_patterns(config, state.params)
  ckpt = checkpoints.Checkpointer(workdir / 'checkpoints', config.train.get('max_checkpoints_to_keep', 3))
  state = parallel.replicate(_restore(config, ckpt, state), mesh)
  start = int(state.step[0])

  writer = writers.MetricWriter(workdir)
  writer.truncate_after(start)
  train_step = parallel.make_train_step(model, tx, objective, mesh)
  eval_step = parallel.make_eval_step(model, objective, mesh)
  eval_batch_size = config.get('eval', {}).get('batch_size', 256)
  periodic_sets = {split: source.eval_sets[split] for split in source.periodic_splits}
  iterators = [source.train_batches(seed, start) for seed in seeds]
  window, pending, done, interrupted = None, [], start, False
  every = lambda name: config.train.get(name)

  with ckpt.stop_requests() as stop, periodic.progress_bar(start, total, str(workdir)) as bar:
    for step in range(start, total):
      batch = parallel.shard_batch(_stack_seeds([next(it) for it in iterators]), mesh)
      state, sums = train_step(state, batch)
      done = step + 1
      window = metrics_lib.merge(window, sums)
      pending.append((done, sums['loss_sum']))
      for hook in hooks:
        hook(done, state)
      log = periodic.due(done, every('log_every_steps'), total)
      save = periodic.due(done, every('checkpoint_every_steps'), total) or stop.requested
      if log or save:
        _check_finite(pending, ckpt)
      if log:
        means = metrics_lib.compute(jax.device_get(window))
        _write_seeds(writer, done, [{f'train/{k}': v[i] for k, v in means.items()}
                                    for i in range(len(seeds))], seeds)
        window = None
        bar.set_postfix(loss=f"{float(np.mean(means['loss'])):.4f}")
      if periodic.due(done, every('eval_every_steps'), total) and done != total:
        _write_seeds(writer, done, evaluation.evaluate(
            state.params, periodic_sets, eval_step, mesh, len(seeds), eval_batch_size), seeds)
      if save:
        ckpt.save(done, state, config_dict)
      bar.update(1)
      if stop.requested:
        interrupted = True
        break

  final = []
  if not interrupted:
    final = evaluation.evaluate(state.params, source.eval_sets, eval_step, mesh, len(seeds),
                                eval_batch_size)
    if source.train_split:
      for result in final:
        result['learned_training_range'] = bool(result[f'eval/{source.train_split}/accuracy'] == 1.0)
    _write_seeds(writer, done, [{'final': True, **r} for r in final], seeds)
    _save_confusion_matrices(final, workdir)
    (workdir / 'results.json').write_text(json.dumps(
        {'config': config_dict, 'runs': [{'seed': s, **writers.to_json_value(r)} for s, r in zip(seeds, final)]},
        indent=1) + '\n')
  writer.close()
  ckpt.close()
  return RunResult(step=done, interrupted=interrupted, final=final, state=state)
