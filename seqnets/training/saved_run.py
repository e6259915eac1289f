"""A trained run, loaded back from its workdir for use in other programs.

A workdir is self-describing: `config.json` rebuilds the task and the model,
`preprocessing.json` the inputs (vocabulary, label set, data info), and a
checkpoint gives the parameters: by default the best checkpoint when the run
has one, else the newest restorable one (`run_checkpoints`). The training data
is not needed.

Synopsis:
  run = load_run('runs/text_cnn')                       # best if any, else latest
  run = load_run('runs/text_cnn', checkpoint='latest')  # or 'best', 'average', a step
  run.describe(0)                                       # 'best checkpoint, step 600 (seed index 0)'
  batch = run.encode([('a gripping film', 1)])          # raw examples -> batch
  logits = run.apply(batch)                             # seed index 0
  batch = run.read_file('my_dev.tsv')                   # in the format the config names
  run.evaluate(eval_file='my_dev.tsv')                  # {'eval/<evaluator>/<metric>': value}
  flat_numbers(run.evaluate(), bare=True)               # {'<metric>': number}
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import jax
import ml_collections
from flax import linen as nn

from seqnets.models import factory as model_factory
from seqnets.tasks import base
from seqnets.tasks import factory as task_factory
from seqnets.training import evaluation
from seqnets.training import evaluators as evaluators_lib
from seqnets.training import legacy_config
from seqnets.training import parallel
from seqnets.training import run_checkpoints
from seqnets.training import pretrained
from seqnets.training import steps


@dataclasses.dataclass(frozen=True)
class SavedRun:
  """Config, task, model, preprocessing and the checkpoint of one workdir.

  `params` and `model_state` keep the leading seed axis `[S, ...]` of
  training; `seed(i)` gives the variables of seed index i. `checkpoint` is the
  kind read ('latest', 'best', 'average' or 'step'), `step` its orbax step and
  `seed_steps` the training step of each seed's parameters (they differ between
  seeds only for 'best').
  `params` are the ones evaluations use: the moving average of a run with
  `optim.ema_decay` (`evaluated_params` is then 'ema_params'), else the trained ones.
  """
  workdir: pathlib.Path
  config: ml_collections.ConfigDict
  task: base.Task
  model: nn.Module
  preprocessing: base.Preprocessing
  params: Any
  model_state: Any
  step: int
  checkpoint: str = 'latest'
  seed_steps: tuple[int, ...] = ()
  averaged: tuple[int, ...] = ()
  evaluated_params: str = 'params'

  def describe(self, seed_index: int | None = None) -> str:
    """Which checkpoint was read, e.g. 'best checkpoint, step 600 (seed index 0)'."""
    steps = self.seed_steps or (self.step,) * self.num_seeds
    read = run_checkpoints.Chosen(self.checkpoint, self.step, {}, steps,
                                  self.averaged).describe(seed_index)
    return read + (', its moving-average parameters' if self.evaluated_params == 'ema_params' else '')

  @property
  def num_seeds(self) -> int:
    return int(jax.tree_util.tree_leaves(self.params)[0].shape[0])

  def seed(self, index: int = 0) -> tuple[Any, Any]:
    """`(params, model_state)` of seed index `index`."""
    if not 0 <= index < self.num_seeds:
      raise ValueError(f'seed index {index}: {self.workdir} has {self.num_seeds} seeds')
    pick = lambda tree: jax.tree_util.tree_map(lambda a: a[index], tree)
    return pick(self.params), pick(self.model_state)

  def encode(self, examples) -> base.Batch:
    """Raw examples (as the task's `read_file` returns them) -> a batch."""
    return self.task.encode(self.config.data, self.preprocessing, examples)

  def read_file(self, path: str | pathlib.Path) -> base.Batch:
    """A file in the format the run's config names -> a batch.

    ValueError naming the file for a malformed file (and its line where there
    is one) or a label outside the training label set.
    """
    examples = self.task.read_file(self.config.data, path)
    try:
      return self.encode(examples)
    except ValueError as e:
      raise ValueError(f'{path}: {e}') from None

  def apply(self, batch: base.Batch, seed_index: int = 0) -> Any:
    """The model's outputs on `batch` (evaluation mode: no dropout)."""
    params, model_state = self.seed(seed_index)
    outputs, _ = steps.apply_model(self.model, params, parallel.shared_model_state(model_state),
                                   batch, self.task, train=False)
    return outputs

  def evaluate(self, eval_file: str | pathlib.Path | None = None, seed_index: int = 0,
               num_devices: int | None = None) -> dict[str, Any]:
    """`{'eval/<evaluator>/<metric>': value}` of seed index `seed_index`.

    Without `eval_file`: the run's evaluators on its configured evaluation
    data (rebuilt; ValueError if the data no longer gives the saved
    preprocessing). With it: the file, read in the configured format, scored
    by every evaluator type of the run (each named after its type).
    """
    params, model_state = self.seed(seed_index)
    if eval_file is not None:
      eval_sets = {'file': self.read_file(eval_file)}
      texts = {'file': list(self.task.read_file(self.config.data, eval_file))}
      specs = {}
      for spec in self.config.evals.values():
        specs.setdefault(spec.type, {**spec.to_dict(), 'split': 'file', 'every_steps': 0})
    else:
      data = pretrained.build_data(self.task, self.config)
      if data.preprocessing != self.preprocessing:
        raise ValueError(f'the configured data no longer gives the vocabulary and labels saved in '
                         f'{self.workdir}; evaluate with --eval_file instead')
      eval_sets, specs, texts = data.eval_sets, self.config.evals, data.texts
    evaluators = evaluators_lib.create(specs, self.task, self.preprocessing.info, eval_sets, texts)
    mesh = parallel.create_mesh(num_devices)
    add_seed_axis = lambda tree: jax.tree_util.tree_map(lambda a: a[None], tree)
    eval_steps = {e.name: parallel.make_eval_step(self.model, self.task, e.extra_sums, mesh)
                  for e in evaluators}
    return evaluation.evaluate_all(
        evaluators, eval_steps, add_seed_axis(params),
        add_seed_axis(parallel.shared_model_state(model_state)), mesh, 1, self.task.time_keys,
        evaluators_lib.HostContext(self.model, self.task, self.preprocessing, self.config.data))[0]



def flat_numbers(results: dict, bare: bool) -> dict:
  """`{'eval/<name>/<metric>': value}` -> `{metric or <name>/<metric>: number}` (numbers only;
  `bare`: the metric names alone, for the results of one evaluator)."""
  flat = {}
  for key, value in results.items():
    if isinstance(value, bool) or not isinstance(value, (int, float)):
      continue
    name = key.removeprefix('eval/')
    flat[name.split('/', 1)[1] if bare else name] = value
  return flat

def load_run(workdir: str | pathlib.Path, checkpoint: str | int | None = None) -> SavedRun:
  """Loads `workdir` with its checkpoint `checkpoint`: 'latest', 'best', 'average', a step,
  or None for 'best' when the run has a best checkpoint, else 'latest' (`run_checkpoints`).

  Raises FileNotFoundError naming what is missing when `workdir` is not a seqnets run
  with such a checkpoint, ValueError for a `checkpoint` that is none of these.
  """
  workdir = pathlib.Path(workdir)
  config_path = workdir / 'config.json'
  if not config_path.exists():
    raise FileNotFoundError(f'{config_path} is missing: {workdir} is not a seqnets run directory')
  # Runs written by earlier versions hold their config in an older layout.
  config = ml_collections.ConfigDict(
      legacy_config.upgrade(json.loads(config_path.read_text()), saved=True))
  task = task_factory.get(config.task)
  preprocessing = base.Preprocessing.load(workdir)
  model = model_factory.from_config(config.model, preprocessing.info)
  chosen = run_checkpoints.restore(workdir, run_checkpoints.parse(checkpoint, 'checkpoint'))
  return SavedRun(workdir, config, task, model, preprocessing, chosen.state['params'],
                  chosen.state.get('model_state') or {}, chosen.step, chosen.kind,
                  chosen.seed_steps, chosen.averaged,
                  'ema_params' if config.optim.get('ema_decay') is not None else 'params')
