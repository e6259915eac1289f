"""What image and text classification share: the softmax objective and the label set."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from seqnets.data import batching
from seqnets.tasks import base


def loss(logits, batch):
  """Softmax cross-entropy. `logits: [B, C]`, `batch['labels']: [B] int`,
  `batch['valid']: [B]` (0 on padding rows)."""
  valid = batch['valid'].astype(jnp.float32)
  losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch['labels'])    # [B]
  count = valid.sum()
  sums = {
      'loss_sum': jnp.sum(losses * valid),
      'example_count': count,
      'examples_correct': jnp.sum((jnp.argmax(logits, -1) == batch['labels']) * valid),
  }
  return sums['loss_sum'] / jnp.maximum(count, 1), sums


def example_correct(logits, batch) -> jax.Array:
  """`[B]` bool: the arg-max class is the label."""
  return jnp.argmax(logits, -1) == batch['labels']


def predictions(logits, batch) -> jax.Array:
  del batch
  return jnp.argmax(logits, -1)


# What every classification task shares: `base.Task(name=..., ..., **TASK_PARTS)`.
TASK_PARTS = dict(loss=loss, example_correct=example_correct, predictions=predictions,
                  evaluator_types=('metrics', 'classification'),
                  reported_metrics=base.accuracy_of_every_eval)


def with_valid(arrays: base.Batch) -> base.Batch:
  """Marks every row as a real example (`valid` 1); padding rows added later get 0."""
  return {**arrays, 'valid': np.ones(len(arrays['labels']), np.float32)}


def check_known_labels(labels: np.ndarray, known, where: str) -> None:
  """Raises ValueError naming `where` for the first label outside the training label set."""
  known_set = set(int(k) for k in known)
  for index, label in enumerate(np.asarray(labels).tolist()):
    if label not in known_set:
      raise ValueError(f'{where}: example {index} has label {label}, never seen in training '
                       f'(training labels: {sorted(known_set)})')


def make_data(train: base.Batch, evals: dict[str, base.Batch], batch_size: int,
              vocabulary: tuple[str, ...] = (), bucket_width: int = 0) -> base.TaskData:
  """Arrays `{'inputs', 'labels'[, 'lengths']}` -> TaskData of shuffled minibatches.

  The label set is the labels seen in training; `num_outputs` is its largest + 1.
  With `bucket_width` > 0 (sequences: `inputs [N, T]` with `lengths`), each batch holds
  sequences whose lengths differ by < `bucket_width`, cut to the next multiple of it
  (at most T) and filled to `batch_size` rows with padding rows (`valid` 0).
  """
  labels = tuple(sorted(set(np.asarray(train['labels']).tolist())))
  if not labels:
    raise ValueError('the training data has no examples')
  for split, arrays in evals.items():
    check_known_labels(arrays['labels'], labels, f'evaluation split {split!r}')
  info = base.DataInfo(vocab_size=len(vocabulary), num_outputs=labels[-1] + 1)
  train = with_valid(train)
  summary = {}
  if bucket_width:
    lengths = np.maximum(train['lengths'], 1)
    summary['train/padding_fraction'] = batching.padding_fraction(lengths, batch_size,
                                                                  bucket_width)

    def train_batches(seed, start):
      for rows, width in batching.bucketed_steps(lengths, batch_size, bucket_width, seed, start):
        batch = {k: np.zeros((batch_size,) + v.shape[1:], v.dtype) for k, v in train.items()}
        for k, v in train.items():
          batch[k][:len(rows)] = v[rows]
        batch['inputs'] = batch['inputs'][:, :width]
        yield batch
  else:
    train_batches = lambda seed, start: batching.epoch_batches(train, batch_size, seed, start)
  return base.TaskData(
      base.Preprocessing(info, vocabulary, labels), train_batches,
      {split: with_valid(arrays) for split, arrays in evals.items()}, summary=summary)
