"""What a task is: its data, what the model receives, the objective and the reported metrics.

A task is a `Task` value in `seqnets.tasks.factory.TASKS`, chosen by `config.task`.
The harness (`seqnets.training.loop`) knows nothing else about the data:

  task.validate(config.data)                         # ValueError naming data.<field>
  data = task.build_data(config.data)                # TaskData: batches, eval sets, preprocessing
  args, kwargs = task.model_inputs(batch)            # model(*args, **kwargs, deterministic=...)
  loss, sums = task.loss(outputs, batch)             # scalar to minimise, {name: sum or count}
  batch = task.encode(config.data, preprocessing, task.read_file(config.data, path))

Batches are dicts of NumPy arrays with a leading example axis `[B, ...]`;
padding rows (added to fill devices) are all zeros and must add nothing to
any sum (`lengths` 0, or `valid` 0).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Callable, Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from seqnets import files

Batch = dict[str, np.ndarray]
PREPROCESSING_FILE = 'preprocessing.json'


@dataclasses.dataclass(frozen=True)
class DataInfo:
  """Values derived from the data that the model needs (never written into the config)."""
  vocab_size: int
  num_outputs: int
  pad_id: int = 0
  unit: str = ''             # one token of text: 'char' or 'word' ('' when not text)
  carry_steps: int = 0       # truncated BPTT: steps after which the model stores its state
  char_vocab_size: int = 0   # characters, for models that read the characters of each word
  label_names: tuple[str, ...] = ()   # the names of the outputs, in id order (taggers)

  def __post_init__(self):
    object.__setattr__(self, 'label_names', tuple(self.label_names))   # JSON gives a list


@dataclasses.dataclass(frozen=True)
class Preprocessing:
  """Everything a trained run needs to turn raw examples into batches.

  Saved as `workdir/preprocessing.json`, so a run can be reloaded without
  its training data: the `DataInfo`, the vocabulary (tokens in id order, or
  empty), the label set (the labels seen in training, or empty) and, for
  sequence-to-sequence models with a vocabulary per side, the target
  vocabulary (empty: the one vocabulary serves both; a tagger's tag names),
  the trained tokenizers (JSON, e.g. a SentencePiece model per side) and the
  character vocabulary (models that read the characters of each word).
  """
  info: DataInfo
  vocabulary: tuple[str, ...] = ()
  labels: tuple[int, ...] = ()
  target_vocabulary: tuple[str, ...] = ()
  tokenizers: tuple[str, ...] = ()
  char_vocabulary: tuple[str, ...] = ()

  def save(self, workdir: str | pathlib.Path) -> None:
    path = pathlib.Path(workdir) / PREPROCESSING_FILE
    files.write_atomically(path, json.dumps({
        'info': dataclasses.asdict(self.info),
        'vocabulary': list(self.vocabulary),
        'labels': list(self.labels),
        'target_vocabulary': list(self.target_vocabulary),
        'tokenizers': list(self.tokenizers),
        'char_vocabulary': list(self.char_vocabulary)}, indent=1) + '\n')

  @classmethod
  def load(cls, workdir: str | pathlib.Path) -> 'Preprocessing':
    path = pathlib.Path(workdir) / PREPROCESSING_FILE
    if not path.exists():
      raise FileNotFoundError(f'{path} is missing: {workdir} is not a finished or started seqnets run')
    saved = json.loads(path.read_text(encoding='utf-8'))
    return cls(DataInfo(**saved['info']), tuple(saved['vocabulary']), tuple(saved['labels']),
               tuple(saved.get('target_vocabulary', ())), tuple(saved.get('tokenizers', ())),
               tuple(saved.get('char_vocabulary', ())))


@dataclasses.dataclass(frozen=True)
class TaskData:
  """The data of one run.

  `train_batches(seed, start_step)` yields the global training batches from
  step `start_step` on, deterministic in (seed, step) so a resumed run replays
  exactly. `eval_sets` maps a split name to its arrays (all examples);
  `texts` maps a split to its raw examples, row by row, for evaluators that
  score text on the host (e.g. BLEU against the untokenised references).
  `summary` holds facts about the data worth reporting (e.g. the padding
  fraction of the training batches); the run logs them and writes them into
  results.json. `token_counts` gives, for a word vocabulary ('source': the
  vocabulary, 'target': the target vocabulary), how often each id occurs in the
  training data (`[V]` ints), for the coverage of pretrained word vectors.
  """
  preprocessing: Preprocessing
  train_batches: Callable[[int, int], Iterator[Batch]]
  eval_sets: dict[str, Batch]
  texts: dict[str, list] = dataclasses.field(default_factory=dict)
  summary: dict[str, float] = dataclasses.field(default_factory=dict)
  token_counts: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

  @property
  def info(self) -> DataInfo:
    return self.preprocessing.info


def token_counts(inputs: np.ndarray, lengths: np.ndarray, size: int) -> np.ndarray:
  """`[size]` ints: how often each id occurs in the first `lengths[b]` steps of `inputs [B, T]`."""
  inputs = np.asarray(inputs)
  real = np.arange(inputs.shape[1])[None, :] < np.asarray(lengths)[:, None]
  return np.bincount(inputs[real].ravel(), minlength=size).astype(np.int64)


def generated_data(make_batch: Callable[[np.random.Generator, int], Batch], cfg, info: DataInfo,
                   summary: dict[str, float] | None = None) -> TaskData:
  """TaskData of a task whose examples the code draws: `make_batch(rng, count)`.

  Every training step gets fresh examples from `default_rng([0, seed, step])` (so a
  resumed run replays exactly), and the 'test' set `cfg.eval_size` examples from
  `default_rng([1, cfg.eval_seed])`, a stream no training step reads.
  """
  batch_size = cfg.batch_size

  def train_batches(seed: int, start_step: int):
    step = start_step
    while True:
      yield make_batch(np.random.default_rng([_TRAIN_STREAM, seed, step]), batch_size)
      step += 1

  eval_rng = np.random.default_rng([_EVAL_STREAM, cfg.get('eval_seed', 0)])
  return TaskData(Preprocessing(info), train_batches,
                  {'test': make_batch(eval_rng, cfg.eval_size)}, summary=dict(summary or {}))


_TRAIN_STREAM, _EVAL_STREAM = 0, 1     # first word of the random streams' seeds


@dataclasses.dataclass(frozen=True)
class ReportedMetric:
  """A final metric the ablation report tabulates: `key` in the final record,
  shown as `label`; `aggregate` is 'median_best' (median and best over seeds)
  or 'count_true' (how many seeds have it true)."""
  key: str
  label: str
  higher_is_better: bool = True
  aggregate: str = 'median_best'


def accuracy_of_every_eval(config: dict) -> list[ReportedMetric]:
  """The accuracy of every configured evaluator (classifiers)."""
  return [ReportedMetric(f'eval/{name}/accuracy', f'{name} accuracy') for name in config['evals']]


def sequence_inputs(batch: Batch) -> tuple[tuple, dict]:
  """Sequence models take `(inputs, lengths=)`."""
  return (batch['inputs'],), {'lengths': batch['lengths']}


def array_inputs(batch: Batch) -> tuple[tuple, dict]:
  """Image models take the inputs and `valid` (`[B]`, 0 on the rows that fill
  devices), which keeps padding rows out of batch statistics."""
  return (batch['inputs'],), {'valid': batch['valid']}


def example_weights(batch: Batch) -> jax.Array:
  """`[B]` float: 1 for real examples, 0 for the padding rows that fill devices."""
  if 'valid' in batch:
    return batch['valid'].astype(jnp.float32)
  return (batch['lengths'] > 0).astype(jnp.float32)


def label_weights(batch: Batch) -> jax.Array:
  """Weights shaped like `batch['labels']`: per example `[B]` (`example_weights`), or per
  time step `[B, T]` (1 on the first `lengths` steps) for labels with a time axis."""
  if batch['labels'].ndim == 1:
    return example_weights(batch)
  time = batch['labels'].shape[1]
  return (jnp.arange(time)[None] < batch['lengths'][:, None]).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class Task:
  """One kind of learning problem. See the module docstring for the contract.

  Attributes:
    name: the registry name (`config.task`).
    data_keys: every `config.data` key the task reads (any other is refused).
    validate: `data_cfg -> None`; raises ValueError naming `data.<field>`.
    build_data: `data_cfg -> TaskData`; a task with `data.vocabulary_from`
      (`seqnets.tasks.word_vocabulary`) also takes `vectors_file=`, the file whose words
      join its vocabulary.
    loss: `(outputs, batch) -> (scalar loss, sums)`; sums are sums and counts
      (`metrics.RATIOS` names the means), so padding rows count nowhere.
    example_correct: `(outputs, batch) -> [B] bool`, for per-example evaluators.
    predictions: `(outputs, batch) -> [B] int` predicted class, or None.
    read_file: `(data_cfg, path) -> raw examples`, in the format the config
      names (for `experiments.evaluate --eval_file`).
    encode: `(data_cfg, preprocessing, raw examples) -> Batch`.
    model_inputs: `batch -> (args, kwargs)` for the model's `__call__`.
    evaluator_types: the evaluator types (`training.evaluators`) that apply.
    reported_metrics: `config dict -> [ReportedMetric]`, what the ablation
      report shows for each run.
    finalize: `(final record) -> extra fields` derived after the final evaluation.
    time_keys: batch keys whose axis 1 is the time axis of `lengths`;
      evaluation cuts them to each chunk's longest sequence.
    detokenize: `(data_cfg, preprocessing, target ids) -> text`, for tasks whose
      outputs are decoded text (BLEU), else None.
  """
  name: str
  data_keys: tuple[str, ...]
  validate: Callable[[Any], None]
  build_data: Callable[[Any], TaskData]
  loss: Callable[[Any, Batch], tuple[jax.Array, dict]]
  example_correct: Callable[[Any, Batch], jax.Array]
  read_file: Callable[[Any, str], Any]
  encode: Callable[[Any, Preprocessing, Any], Batch]
  evaluator_types: Sequence[str]
  reported_metrics: Callable[[dict], Sequence[ReportedMetric]]
  model_inputs: Callable[[Batch], tuple[tuple, dict]] = sequence_inputs
  predictions: Callable[[Any, Batch], jax.Array] | None = None
  finalize: Callable[[dict], dict] = lambda record: {}
  time_keys: Sequence[str] = ()
  detokenize: Callable[[Any, 'Preprocessing', Any], str] | None = None
