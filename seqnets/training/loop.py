"""`train_and_evaluate(config, workdir)`: one run, from config to results on disk.

Writes into `workdir` (process 0 only): `config.json` (the resolved config),
`preprocessing.json` (what rebuilds the model's inputs: data info, vocabulary,
label set), `metrics.jsonl` (one JSON object per logged step and seed),
`tensorboard/`, `checkpoints/`, `pretrained_embeddings.json` (runs whose model names
pretrained word vectors: what each file gave, `seqnets.training.pretrained`) and, at the
end, `results.json` (final evaluation per seed) and `curves.png` (training and evaluation
loss against step). With `config.train.best_metric` also `checkpoints_best/` and
`best_tracking.json` (`best.py`: best checkpoints, early stopping), and results.json gives
each seed's best beside its final evaluation. Rerunning with the same `workdir` resumes
from its latest good checkpoint and ends with the same parameters and the same best as a
run that never stopped; only the fields in `resume.RESUMABLE_FIELDS` may change between
the two. A workdir is used by one run at a time (`workdir_lock`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import pathlib
from typing import Any, Callable, Iterator, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging

from seqnets import files
from seqnets.models import factory as model_factory
from seqnets.tasks import factory as task_factory
from seqnets.training import best as best_lib
from seqnets.training import checkpoints
from seqnets.training import curves
from seqnets.training import evaluation
from seqnets.training import evaluators as evaluators_lib
from seqnets.training import legacy_config
from seqnets.training import metrics as metrics_lib
from seqnets.training import optimizers
from seqnets.training import parallel
from seqnets.training import periodic
from seqnets.training import prefetch
from seqnets.training import pretrained
from seqnets.training import resume
from seqnets.training import state as state_lib
from seqnets.training import transfer
from seqnets.training import validation
from seqnets.training import workdir_lock
from seqnets.training import writers

Hook = Callable[[int, state_lib.TrainState], None]
FAILURE_CAUSE = 'non-finite loss, gradient or update'
PREFETCH_BATCHES = 2    # train batches loaded and placed on the devices ahead of the step


@dataclasses.dataclass
class RunResult:
  step: int                         # steps done
  interrupted: bool                 # stopped by SIGTERM/SIGINT (state saved)
  final: list[dict[str, Any]]       # per seed: final evaluation ([] if interrupted)
  state: state_lib.TrainState | None  # None when the run had finished before


def _stack_seeds(batches: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """The seeds' batches stacked `[S, B, ...]`. Bucketed batches differ in width between
  seeds (each seed draws its own bucket): each array is zero-padded at the end of every
  axis to the widest, which changes nothing (id 0 is padding, masks and lengths mark the
  real positions, and every model gives the same result on padded inputs)."""
  def stack(arrays):
    if all(a.shape == arrays[0].shape for a in arrays):
      return np.stack(arrays)
    widest = np.max([a.shape for a in arrays], axis=0)
    return np.stack([np.pad(a, [(0, w - n) for n, w in zip(a.shape, widest)]) for a in arrays])
  return {k: stack([b[k] for b in batches]) for k in batches[0]}


def _host_batches(iterators: Sequence[Iterator[dict]], steps: int) -> Iterator[dict]:
  """The next `steps` training batches `[S, B, ...]`: one from each seed's iterator, stacked."""
  return (_stack_seeds(batches) for batches in itertools.islice(zip(*iterators), steps))


def _check_freeze_patterns(config, params) -> None:
  """ConfigError naming the field of an optim pattern that matches no parameter (a typo)."""
  single_seed = jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), params)
  for field in ('freeze', 'learning_rate_factors', 'unfreeze_steps'):
    patterns = tuple(p if isinstance(p, str) else p[0] for p in config.optim.get(field) or ())
    unmatched = optimizers.unmatched_patterns(single_seed, patterns)
    if unmatched:
      raise validation.ConfigError(
          f'config.optim.{field} patterns {unmatched} match no parameter; parameters are '
          f'{optimizers.param_paths(single_seed)}')


def _restore(config, ckpt: checkpoints.Checkpointer, fresh: state_lib.TrainState, mesh,
             data, workdir: pathlib.Path, primary: bool):
  """`(state, step resumed from or None)`. Resume order: this workdir's latest good
  checkpoint → params of `config.init_from`, its checkpoint `config.init_from_checkpoint`
  (`transfer.init_from_run`; what was reused is logged and written to transfer.json) → fresh.
  Fresh and `init_from` parameters first get the pretrained word vectors the model names
  (`pretrained.initialise`; the report goes to pretrained_embeddings.json); a resumed run
  never reads those files.

  `fresh` is on the mesh already, so orbax restores every array into its sharding.
  """
  resumed = ckpt.restore_latest_with_step(fresh)
  if resumed is not None:
    return resumed
  preprocessing = data.preprocessing
  settings = model_factory.resolve(config.model)
  if pretrained.configured(settings):
    try:
      params, report = pretrained.initialise(settings, preprocessing,
                                             jax.device_get(fresh.params), data.token_counts)
    except ValueError as e:
      raise validation.ConfigError(f'config.{e}') from None
    for key, entry in report.items():
      logging.info('%s: %d of %d words found in %s', key, entry['found'],
                   entry['vocabulary_words'], entry['file'])
    if primary:
      pretrained.save_report(workdir, report)
    fresh = parallel.place_state(state_lib.with_params(fresh, params), mesh)
  if config.get('init_from'):
    params, report = transfer.init_from_run(config.init_from, jax.device_get(fresh.params),
                                            preprocessing, config.get('init_from_checkpoint'))
    read = report.pop('checkpoint')
    logging.info('init_from %s: %s', config.init_from, read)
    for kind, paths in report.items():
      logging.info('init_from %s: %d %s %s', config.init_from, len(paths), kind, paths)
    if primary:
      _write_json(workdir / 'transfer.json', {'init_from': str(config.init_from),
                                              'init_from_checkpoint': read, **report})
    return parallel.place_state(state_lib.with_params(fresh, params), mesh), None
  return fresh, None


def _check_best_metric(config, evaluators, model, task, state) -> None:
  """ConfigError when `config.train.best_metric` names no metric its evaluator reports
  (known from shapes alone, before anything is written)."""
  name = validation.best_metric(config)
  if name is None:
    return
  one_seed = lambda tree: jax.tree_util.tree_map(
      lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), tree)
  names = {e.name: evaluators_lib.metric_names(
      e, model, task, one_seed(state.params),
      one_seed(parallel.shared_model_state(state.model_state))) for e in evaluators
      if e.name == name.partition('/')[0]}
  validation.check_best_metric(config, names)


def _check_config(workdir: pathlib.Path, config_dict: dict, has_checkpoint: bool) -> dict:
  """Accepted changes against the saved config.json (ConfigError for any other change)."""
  saved = workdir / 'config.json'
  if not (has_checkpoint and saved.exists()):
    return {}
  try:
    return resume.check(legacy_config.canonical(json.loads(saved.read_text()), saved=True),
                        legacy_config.canonical(config_dict))
  except ValueError as e:
    raise validation.ConfigError(f'{workdir}: {e}') from None


def _finished(workdir: pathlib.Path, total: int, latest: int | None) -> dict | None:
  """results.json of a run that already reached `total` steps, or that early stopping ended,
  with its checkpoint (`latest`, the newest step) on disk; else None."""
  try:
    results = json.loads((workdir / 'results.json').read_text())
  except (OSError, ValueError):
    return None
  if not isinstance(results, dict):
    return None
  step = results.get('step', -1)
  reached = total if not results.get('early_stopped') else min(step, total)
  return results if step >= reached and (latest or 0) >= reached else None


def _write_json(path: pathlib.Path, value) -> None:
  """Writes atomically: a kill mid-write leaves the old file, never half a file."""
  files.write_atomically(path, json.dumps(value, indent=1) + '\n')


def _save_confusion_matrices(final: dict, workdir: pathlib.Path) -> None:
  """`confusion_<evaluator>.png` for every evaluator with a confusion matrix (of seed index 0)."""
  from seqnets.training import confusion
  for name, value in final.items():
    if name.endswith('/confusion'):
      evaluator = name.split('/')[1]
      confusion.save_png(np.asarray(value), workdir / f'confusion_{evaluator}.png', title=evaluator)


class _Health:
  """Tracks seeds whose training failed (non-finite loss); records each once."""

  def __init__(self, seeds, writer, ckpt, state):
    self.seeds, self.writer, self.ckpt = seeds, writer, ckpt
    # Failures before a resume were recorded then; only later ones are written.
    self.failed: dict[int, int] = {
        index: step for index, step in enumerate(np.asarray(jax.device_get(state.failed_step)).tolist())
        if step >= 0}

  def check(self, state) -> bool:
    """Records newly failed seeds; True when every seed has failed."""
    failed_step = np.asarray(jax.device_get(state.failed_step))
    for index, step in enumerate(failed_step.tolist()):
      if step >= 0 and index not in self.failed:
        self.failed[index] = step
        self.writer.write(step, {'seed': self.seeds[index], 'failed': True, 'cause': FAILURE_CAUSE})
        logging.warning('seed %d: %s at step %d; it keeps its last good values', self.seeds[index],
                        FAILURE_CAUSE, step)
    return len(self.failed) == len(self.seeds)

  def error(self) -> FloatingPointError:
    return FloatingPointError(
        f'non-finite training loss at step {min(self.failed.values())} (every seed: {FAILURE_CAUSE}); '
        f'the last good checkpoint (step {self.ckpt.latest_step()}) in {self.ckpt.directory} is kept')

  def record(self, index: int) -> dict:
    return {'failed': True, 'failed_step': self.failed[index], 'cause': FAILURE_CAUSE}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | pathlib.Path, *,
                       num_devices: int | None = None, hooks: Sequence[Hook] = ()) -> RunResult:
  """Trains `config.num_seeds` seeds side by side, evaluates, writes everything to `workdir`.

  Args:
    config: see `configs/anbn.py` for the fields. Never modified.
    workdir: output directory; an existing one is resumed.
    num_devices: local devices to shard the batch over (all by default).
    hooks: called as `hook(steps_done, state)` after every step (a hook that reads
      `state` makes the host wait for that step before it queues the next).
  Raises:
    ConfigError: a bad config value, or a resume with a changed config (before
      any data load or compile, and before anything is written).
    WorkdirBusyError: another process is running in `workdir`.
    FloatingPointError: every seed reached a non-finite loss (results.json
      records each seed's step; the last good checkpoint is kept).
  """
  validation.validate(config)
  config = validation.upgraded(config)
  workdir = validation.check_workdir(workdir)
  primary = jax.process_index() == 0
  workdir.mkdir(parents=True, exist_ok=True)
  lock = workdir_lock.WorkdirLock(workdir) if primary else contextlib.nullcontext()
  with lock:
    return _run(config, workdir, primary, num_devices, hooks)


def _run(config, workdir: pathlib.Path, primary: bool, num_devices, hooks) -> RunResult:
  config_dict = json.loads(config.to_json())
  total = config.train.num_train_steps
  ckpt = checkpoints.Checkpointer(workdir / 'checkpoints',
                                 config.train.get('max_checkpoints_to_keep', 3), asynchronous=True)
  changes = _check_config(workdir, config_dict, ckpt.latest_step() is not None)
  finished = _finished(workdir, total, ckpt.latest_step())
  if finished is not None:
    ckpt.close()
    return RunResult(step=finished['step'], interrupted=False, final=finished['runs'], state=None)

  task = task_factory.get(config.task)
  model_settings = model_factory.resolve(config.model)
  if ckpt.latest_step() is None:      # a fresh run: its vectors files fit, before any data load
    try:
      pretrained.check_files(model_settings)
    except ValueError as e:
      raise validation.ConfigError(f'config.{e}') from None
  data = pretrained.build_data(task, config)
  try:
    evaluators = evaluators_lib.create(config.evals, task, data.info, data.eval_sets, data.texts)
  except ValueError as e:
    raise validation.ConfigError(f'config.{e}') from None
  model = model_factory.from_config(config.model, data.info)
  tx = optimizers.from_config(config.optim, total)
  mesh = parallel.create_mesh(num_devices)
  seeds = [config.seed + s for s in range(config.num_seeds)]
  ema_decay = config.optim.get('ema_decay')
  state = state_lib.create_seeds(model, tx, task, seeds, next(data.train_batches(seeds[0], 0)),
                                 ema=ema_decay is not None)
  _check_freeze_patterns(config, state.params)
  _check_best_metric(config, evaluators, model, task, state)
  state, resumed_step = _restore(config, ckpt, parallel.place_state(state, mesh), mesh, data,
                                 workdir, primary)
  start = int(np.asarray(jax.device_get(state.step))[0])
  keeper = best_lib.BestKeeper(config, workdir, len(seeds), primary,
                               place=lambda tree: parallel.replicate(tree, mesh))
  keeper.resume(resumed_step)
  summary = dict(data.summary)
  if pretrained.configured(model_settings):
    summary.update(pretrained.summary_items(pretrained.load_report(workdir)))

  writer = writers.MetricWriter(workdir) if primary else writers.NullWriter()
  if primary:
    if changes:
      with (workdir / 'config_changes.jsonl').open('a') as f:
        f.write(json.dumps({'step': start, 'changes': writers.to_json_value(changes)}) + '\n')
    _write_json(workdir / 'config.json', config_dict)
    data.preprocessing.save(workdir)
    for key, value in summary.items():
      logging.info('data: %s = %s', key, value)
  writer.truncate_after(start)
  train_step = parallel.WindowedTrainStep(model, tx, task, mesh, state, ema_decay)
  evaluated = 'params' if ema_decay is None else 'ema_params'
  logging.info('evaluations use %s', 'the parameters' if ema_decay is None else
               f'their exponential moving average (optim.ema_decay={ema_decay})')
  eval_steps = {e.name: parallel.make_eval_step(model, task, e.extra_sums, mesh) for e in evaluators}
  host = evaluators_lib.HostContext(model, task, data.preprocessing, config.data)
  run_evals = lambda chosen: evaluation.evaluate_all(
      chosen, eval_steps, state_lib.evaluated_params(state),
      parallel.shared_model_state(state.model_state), mesh,
      len(seeds), task.time_keys, host)
  iterators = [data.train_batches(seed, start) for seed in seeds]
  health = _Health(seeds, writer, ckpt, state)
  all_failed = health.check(state)
  # Seeds that report: neither failed nor stopped by early stopping.
  healthy = lambda per_seed: [(i, values) for i, values in enumerate(per_seed)
                              if i not in health.failed and i not in keeper.stopped]
  all_stopped = lambda: keeper.stopped and len(keeper.stopped | set(health.failed)) == len(seeds)
  early_stopped = bool(all_stopped()) and not all_failed
  window, done, interrupted = None, start, False
  every = lambda name: config.train.get(name)

  def settle_checkpoints():
    """Waits for the checkpoint being written; then drops the best checkpoints that no
    latest checkpoint on disk needs any more."""
    ckpt.wait()
    keeper.after_save(ckpt.all_steps())

  def save_checkpoint(step):
    """Starts writing checkpoint `step` (asynchronously), the metrics and best tracker up to
    it on disk before it."""
    settle_checkpoints()
    keeper.before_save(step, ckpt.all_steps())
    writer.flush()
    ckpt.save(step, state, config_dict)

  steps = range(start, total if not (all_failed or early_stopped) else start)
  # Nothing in a step reads the devices except at log, checkpoint and evaluation steps, so
  # the host queues step k + 1 while the devices run step k and the prefetching thread loads
  # and places the batches after it. The step adds its metrics into `window` on the devices;
  # the host reads it at log steps. Ending the loop early drops the batches loaded ahead.
  # XLA:CPU runs the devices' parts of a collective on one thread pool: with several steps
  # in flight on several CPU devices, parts of a later step's all-reduce can hold the threads
  # an earlier one waits for (a deadlock seen on 8 host devices). There, each step finishes
  # before the next is dispatched; accelerators order the steps on each device's stream.
  one_step_in_flight = jax.default_backend() == 'cpu' and mesh.devices.size > 1
  with contextlib.ExitStack() as stack:
    stack.callback(settle_checkpoints)    # on every way out, the last checkpoint is on disk
    stop = stack.enter_context(ckpt.stop_requests())
    bar = stack.enter_context(periodic.progress_bar(start, total, str(workdir), primary))
    batches = stack.enter_context(prefetch.prefetch_to_mesh(
        _host_batches(iterators, len(steps)), mesh, PREFETCH_BATCHES))
    for step in steps:
      batch = next(batches)
      controls = keeper.controls(step)
      if window is None:
        window = train_step.empty_window(state, batch, controls)
      state, window = train_step(state, window, batch, controls)
      if one_step_in_flight:
        jax.block_until_ready(window)
      done = step + 1
      for hook in hooks:
        hook(done, state)
      log = periodic.due(done, every('log_every_steps'), total)
      save = periodic.due(done, every('checkpoint_every_steps'), total)
      stopping = parallel.agreed_stop(stop.requested, sync_point=log or save)
      save = save or stopping
      if (log or save) and health.check(state):
        all_failed = True
        break
      if log:
        means = metrics_lib.compute(jax.device_get(window))
        for index, _ in healthy(seeds):
          writer.write(done, {'seed': seeds[index], **{f'train/{k}': v[index] for k, v in means.items()}})
        window = None
        bar.set_postfix(loss=f"{float(np.nanmean(means['loss'])):.4f}")
      due_evals = [e for e in evaluators if periodic.due(done, e.every_steps, total) and done != total
                   and e.every_steps]
      if due_evals:
        results = run_evals(due_evals)
        for index, values in healthy(results):
          writer.write(done, {'seed': seeds[index], **values})
        for index, line in keeper.observe(done, results, state, config_dict, set(health.failed)):
          writer.write(done, {'seed': seeds[index], **line})
      early_stopped = bool(all_stopped())
      if save or early_stopped:
        save_checkpoint(done)
      bar.update(1)
      if stopping:
        interrupted = True
        break
      if early_stopped:
        logging.info('every seed has stopped or failed (early stopping) at step %d', done)
        break

  final = []
  if not interrupted:
    final = run_evals(evaluators) if not all_failed else [{} for _ in seeds]
    if not all_failed:
      lines = keeper.observe(done, final, state, config_dict, set(health.failed) | keeper.stopped)
      for index, line in lines:
        writer.write(done, {'seed': seeds[index], **line})
      if keeper.enabled:    # the step is on disk already: records the tracker after this evaluation
        save_checkpoint(done)
        settle_checkpoints()
    for index, result in enumerate(final):
      if index in health.failed:
        final[index] = result = health.record(index)
      else:
        result.update(task.finalize(result))
      writer.write(done, {'seed': seeds[index], 'final': True, **result})
    if primary:
      if 0 not in health.failed:
        _save_confusion_matrices(final[0], workdir)
      writer.flush()
      curves.save_png(workdir)
      best_fields = {'best_metric': keeper.metric, 'best_mode': keeper.tracker.mode,
                     'early_stopped': early_stopped} if keeper.enabled else {}
      _write_json(workdir / 'results.json', {
          'config': config_dict, 'step': done, 'data': writers.to_json_value(summary),
          'evaluated_params': evaluated, **best_fields,
          'runs': [{'seed': s, **writers.to_json_value(r), **keeper.summary(i)}
                   for i, (s, r) in enumerate(zip(seeds, final))]})
  writer.close()
  keeper.close()
  ckpt.close()
  if all_failed:
    raise health.error()
  return RunResult(step=done, interrupted=interrupted, final=final, state=state)
