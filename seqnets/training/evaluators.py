"""Evaluators: named, configured evaluations that run on their own cadence.

`config.evals` maps a name to `dict(type=..., split=..., every_steps=...,
batch_size=...)` (big_vision style). `split` names one of the task's eval sets;
`every_steps` 0 means only at the end (every evaluator also runs at the end).
Results are `eval/<name>/<metric>`.

All device-side metrics are sums and counts, added across batches, devices
and processes and divided once (`metrics.compute`), so any dataset size gives
exact results. Types:
  metrics         the task's own metrics (loss, accuracy, ...)
  classification  + the confusion matrix `[C, C]` (`confusion[true, predicted]`) and
                  per-class precision / recall / F1 and their macro average
  accuracy_by_n   + accuracy of the strings of every size n and `max_correct_n`,
                  the largest n up to which every string is right (needs `batch['n']`)
  language_model  + `nats_per_token` (the mean cross-entropy, = `loss`), `perplexity`
                  (e^nats) and, for character-level text, `bits_per_char` (nats / ln 2)
  bleu            + corpus BLEU of the decoded split against its untokenised references
                  (sacrebleu, default 13a tokenisation, 0–100): `bleu` (cased) and
                  `bleu_lowercase`; the spec may set `beam_size` (1), `length_penalty`
                  (0.0) and `max_length` (0: twice the source bucket + 8)
  entity_f1       + span-level precision, recall and F1 of the predicted BIO tags (seqeval,
                  the CoNLL definition; micro averages and F1 by entity type), fractions
Confusion matrices and per-class figures exist only here, never in a train step. The
`bleu` and `entity_f1` types work on the host (every process scores the whole split, so
all agree).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from seqnets.data import formal_languages
from seqnets.tasks import base

Sums = dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class HostContext:
  """What a host-side evaluator needs besides the parameters."""
  model: Any
  task: base.Task
  preprocessing: base.Preprocessing
  data_config: Any


@dataclasses.dataclass(frozen=True)
class EvaluatorType:
  """`extra_sums(task, info, arrays) -> ((outputs, batch) -> Sums)` builds the
  device-side sums added to the task's; `finalize(means, arrays) -> metrics`
  turns the totals into reported values on the host; `host(evaluator, context,
  params, model_state) -> metrics`, when given, computes more on the host from
  one seed's parameters (decoding, say), from the split's raw texts when `needs_texts`;
  `host_metrics` names the numbers `host` reports."""
  extra_sums: Callable[[base.Task, base.DataInfo, base.Batch], Callable[[Any, base.Batch], Sums]]
  finalize: Callable[[dict, base.Batch], dict]
  host: Callable[..., dict] | None = None
  needs_texts: bool = False
  host_metrics: tuple[str, ...] = ()


def _no_sums(task, info, arrays):
  return lambda outputs, batch: {}


def _confusion_sums(task, info, arrays):
  num_classes = info.num_outputs
  def sums(outputs, batch):
    weights = base.label_weights(batch)                                       # [B] or [B, T]
    truth = jax.nn.one_hot(batch['labels'], num_classes)                     # [.., C]
    predicted = jax.nn.one_hot(task.predictions(outputs, batch), num_classes)  # [.., C]
    return {'confusion': jnp.einsum('...,...i,...j->ij', weights, truth, predicted)}  # [C, C]
  return sums


def _per_class(means: dict, arrays) -> dict:
  confusion = np.asarray(means.pop('confusion'))
  true_counts, predicted_counts = confusion.sum(1), confusion.sum(0)
  hits = np.diag(confusion)
  precision = np.where(predicted_counts > 0, hits / np.maximum(predicted_counts, 1), 0.0)
  recall = np.where(true_counts > 0, hits / np.maximum(true_counts, 1), 0.0)
  f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
  present = true_counts > 0
  return {**means, 'confusion': confusion.astype(np.int64).tolist(),
          'precision_by_class': precision.tolist(), 'recall_by_class': recall.tolist(),
          'f1_by_class': f1.tolist(), 'macro_f1': float(f1[present].mean()) if present.any() else 0.0}


def _by_n_sums(task, info, arrays):
  if 'n' not in arrays:
    raise ValueError("evaluator type 'accuracy_by_n' needs examples with a size 'n'")
  segments = int(np.max(arrays['n'])) + 1
  def sums(outputs, batch):
    weights = base.example_weights(batch)
    correct = task.example_correct(outputs, batch).astype(jnp.float32) * weights
    return {'correct_by_n': jax.ops.segment_sum(correct, batch['n'], segments),
            'count_by_n': jax.ops.segment_sum(weights, batch['n'], segments)}
  return sums


def _by_n(means: dict, arrays) -> dict:
  correct, count = np.asarray(means.pop('correct_by_n')), np.asarray(means.pop('count_by_n'))
  ns = np.flatnonzero(count > 0)
  accuracy = {int(n): float(correct[n] / count[n]) for n in ns}
  return {**means, 'accuracy_by_n': accuracy,
          'max_correct_n': formal_languages.max_correct_n(ns.tolist(), [accuracy[n] == 1.0 for n in ns])}


def _char_sums(task, info, arrays):
  if info.unit != 'char':
    return lambda outputs, batch: {}
  return lambda outputs, batch: {'char_count': jnp.sum(batch['weights'])}


def _language_model(means: dict, arrays) -> dict:
  nats = float(means['loss'])
  metrics = {**means, 'nats_per_token': nats, 'perplexity': float(np.exp(min(nats, 700.0)))}
  if 'char_count' in metrics:                     # one token is one character
    metrics.pop('char_count')
    metrics['bits_per_char'] = nats / float(np.log(2))
  return metrics


def _bleu(evaluator, context: HostContext, params, model_state) -> dict:
  """Corpus BLEU of the split decoded with `params` (see the module docstring)."""
  del model_state
  import sacrebleu
  from seqnets.decoding import encoder_decoder
  if context.task.detokenize is None:
    raise ValueError(f"evaluator type 'bleu' needs a task that writes text; "
                     f"{context.task.name!r} does not")
  spec = evaluator.spec
  ids, _ = encoder_decoder.decode_sources(
      context.model, params, evaluator.arrays['source'], evaluator.arrays['source_lengths'],
      bos_id=2, eos_id=3, beam_size=spec.get('beam_size', 1),
      length_penalty=spec.get('length_penalty', 0.0), max_length=spec.get('max_length', 0),
      batch_size=evaluator.batch_size)
  hypotheses = [context.task.detokenize(context.data_config, context.preprocessing, i) for i in ids]
  references = [target for _, target in evaluator.texts]
  return {'bleu': sacrebleu.corpus_bleu(hypotheses, [references]).score,
          'bleu_lowercase': sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score}


@functools.lru_cache(maxsize=8)
def _predict_fn(model, task: base.Task):
  from seqnets.training import steps
  def predict(params, model_state, batch):
    outputs, _ = steps.apply_model(model, params, model_state, batch, task, train=False)
    return task.predictions(outputs, batch)
  return jax.jit(predict)


def _entity_f1(evaluator, context: HostContext, params, model_state) -> dict:
  """seqeval's span-level scores of the predicted tags (CoNLL: an entity counts when its
  type and both ends are right): micro `entity_precision`, `entity_recall`, `entity_f1`
  and `entity_f1_by_type`, as fractions."""
  from seqeval import metrics as seqeval_metrics
  names = context.preprocessing.target_vocabulary
  if not names:
    raise ValueError(f"evaluator type 'entity_f1' needs a task with named tags; "
                     f"{context.task.name!r} has none")
  predict = _predict_fn(context.model, context.task)
  truth, guess = [], []
  for chunk in chunks(evaluator.arrays, evaluator.batch_size, context.task.time_keys):
    predicted = np.asarray(predict(params, model_state, chunk))
    for row, length in enumerate(chunk['lengths'].tolist()):
      truth.append([names[i] for i in chunk['labels'][row, :length]])
      guess.append([names[i] for i in predicted[row, :length]])
  report = seqeval_metrics.classification_report(truth, guess, output_dict=True, zero_division=0)
  by_type = {name: float(values['f1-score']) for name, values in report.items()
             if not name.endswith(' avg')}
  return {'entity_precision': float(seqeval_metrics.precision_score(truth, guess,
                                                                    zero_division=0)),
          'entity_recall': float(seqeval_metrics.recall_score(truth, guess, zero_division=0)),
          'entity_f1': float(seqeval_metrics.f1_score(truth, guess, zero_division=0)),
          'entity_f1_by_type': by_type}


EVALUATOR_TYPES: dict[str, EvaluatorType] = {
    'metrics': EvaluatorType(_no_sums, lambda means, arrays: means),
    'classification': EvaluatorType(_confusion_sums, _per_class),
    'accuracy_by_n': EvaluatorType(_by_n_sums, _by_n),
    'language_model': EvaluatorType(_char_sums, _language_model),
    'bleu': EvaluatorType(_no_sums, lambda means, arrays: means, host=_bleu, needs_texts=True,
                          host_metrics=('bleu', 'bleu_lowercase')),
    'entity_f1': EvaluatorType(_no_sums, lambda means, arrays: means, host=_entity_f1,
                               host_metrics=('entity_precision', 'entity_recall', 'entity_f1')),
}
DEFAULT_BATCH_SIZE = 256
# The keys of a `config.evals` entry: those of every type, and those of one type.
KEYS = ('type', 'split', 'every_steps', 'batch_size')
TYPE_KEYS = {'bleu': ('beam_size', 'max_length', 'length_penalty')}


def keys_of(kind: str | None) -> tuple[str, ...]:
  """The keys an evaluator of type `kind` takes."""
  return (*KEYS, *TYPE_KEYS.get(kind, ()))


def validate(evals, task: base.Task) -> None:
  """Raises ValueError naming `evals.<name>.<field>` (the split is checked when data exists)."""
  if not evals:
    raise ValueError('evals must list at least one evaluator, e.g. '
                     "dict(test=dict(type='metrics', split='test', every_steps=0))")
  for name, spec in evals.items():
    kind = spec.get('type')
    if kind not in task.evaluator_types:
      raise ValueError(f'evals.{name}.type={kind!r}; valid for task {task.name!r}: '
                       f'{list(task.evaluator_types)}')
    if not isinstance(spec.get('split'), str) or not spec.get('split'):
      raise ValueError(f'evals.{name}.split must name an evaluation split, got {spec.get("split")!r}')
    if kind == 'bleu':
      for field, default, lo in (('beam_size', 1, 1), ('max_length', 0, 0)):
        value = spec.get(field, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
          raise ValueError(f'evals.{name}.{field} must be an integer >= {lo}, got {value!r}')
      penalty = spec.get('length_penalty', 0.0)
      if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or penalty < 0:
        raise ValueError(f'evals.{name}.length_penalty must be a number >= 0, got {penalty!r}')
    for field, default in (('every_steps', 0), ('batch_size', DEFAULT_BATCH_SIZE)):
      value = spec.get(field, default)
      if not isinstance(value, int) or isinstance(value, bool) or value < (0 if field == 'every_steps' else 1):
        raise ValueError(f'evals.{name}.{field} must be an integer >= '
                         f'{0 if field == "every_steps" else 1}, got {value!r}')


@dataclasses.dataclass(frozen=True)
class Evaluator:
  """One configured evaluator bound to its data."""
  name: str
  kind: EvaluatorType
  arrays: base.Batch
  every_steps: int
  batch_size: int
  extra_sums: Callable[[Any, base.Batch], Sums]
  spec: dict = dataclasses.field(default_factory=dict)
  texts: list = dataclasses.field(default_factory=list)


def create(evals, task: base.Task, info: base.DataInfo, eval_sets: dict[str, base.Batch],
           texts: dict[str, list] | None = None) -> list[Evaluator]:
  """The evaluators of `config.evals` over the task's eval sets (ValueError naming an unknown
  split, or a host-side evaluator on a split without raw texts)."""
  created = []
  texts = texts or {}
  for name, spec in evals.items():
    if spec['split'] not in eval_sets:
      raise ValueError(f'evals.{name}.split={spec["split"]!r}; the data has splits {sorted(eval_sets)}')
    arrays = eval_sets[spec['split']]
    kind = EVALUATOR_TYPES[spec['type']]
    if kind.needs_texts and spec['split'] not in texts:
      raise ValueError(f'evals.{name}.type={spec["type"]!r} needs the raw texts of split '
                       f'{spec["split"]!r}, which this data does not keep')
    created.append(Evaluator(name, kind, arrays, spec.get('every_steps', 0),
                             spec.get('batch_size', DEFAULT_BATCH_SIZE),
                             kind.extra_sums(task, info, arrays), dict(spec),
                             list(texts.get(spec['split'], []))))
  return created


def metric_names(evaluator: Evaluator, model, task: base.Task, params, model_state) -> list[str]:
  """The numbers `evaluation.evaluate` reports for `evaluator` (`<metric>`, without the
  `eval/<name>/` prefix), found from shapes alone: the eval step is traced with
  `jax.eval_shape` and the evaluator's `finalize` run on zeros. `params` and
  `model_state` are one seed's (arrays or `jax.ShapeDtypeStruct`s)."""
  from seqnets.training import metrics as metrics_lib
  from seqnets.training import steps
  chunk = next(chunks(evaluator.arrays, evaluator.batch_size, task.time_keys))
  step = functools.partial(steps.eval_step, model=model, task=task,
                           extra_sums=evaluator.extra_sums)
  sums = jax.eval_shape(step, params, model_state, chunk)
  means = metrics_lib.compute({k: np.zeros(v.shape, v.dtype) for k, v in sums.items()})
  metrics = evaluator.kind.finalize(means, evaluator.arrays)
  numbers = [name for name, value in metrics.items()
             if np.ndim(value) == 0 and not isinstance(value, (bool, str, dict, list))
             and np.issubdtype(np.asarray(value).dtype, np.number)]
  return sorted({*numbers, *evaluator.kind.host_metrics})


def chunks(arrays: base.Batch, size: int, time_keys=(), multiple: int = 16):
  """Rows in chunks of `size`. Arrays named in `time_keys` are cut to the chunk's
  longest `lengths`, rounded up to a multiple of `multiple` (fewer compiles)."""
  rows = len(next(iter(arrays.values())))
  for start in range(0, rows, size):
    chunk = {k: v[start:start + size] for k, v in arrays.items()}
    if time_keys and 'lengths' in chunk:
      longest = max(int(chunk['lengths'].max()), 1)
      longest = -(-longest // multiple) * multiple
      chunk = {k: (v[:, :longest] if k in time_keys else v) for k, v in chunk.items()}
    yield chunk
