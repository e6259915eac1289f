"""Metric sums and the tasks' objectives on worked examples."""

import numpy as np
import optax

from seqnets.data import formal_languages
from seqnets.tasks import classification
from seqnets.tasks import formal_languages as formal_languages_task
from seqnets.training import metrics


def test_compute_divides_once_and_averages_norms_over_steps():
  total = metrics.merge(None, {'loss_sum': 3.0, 'token_count': 2.0, 'grad_norm': 4.0, 'steps': 1.0})
  total = metrics.merge(total, {'loss_sum': 1.0, 'token_count': 6.0, 'grad_norm': 2.0, 'steps': 1.0})
  out = metrics.compute(total)
  assert out['loss'] == 0.5 and out['grad_norm'] == 3.0 and 'steps' not in out


def test_next_symbol_sets_worked_example():
  # One aⁿbⁿ string with n=1 (inputs S a b; targets {a}, {b}, {T}) plus an empty padding row.
  language = formal_languages.get_language('anbn')
  batch = formal_languages.make_batch(language, [1], pad_to=4)
  assert batch['lengths'][0] == 3
  batch = {k: np.concatenate([v, np.zeros_like(v)]) for k, v in batch.items()}
  logits = np.where(batch['targets'] > 0, 2.0, -2.0).astype(np.float32)
  logits[0, 1, 0] = 1.0  # also claims the first symbol (S) may follow: a wrong step
  loss, sums = formal_languages_task.loss(logits, batch)
  per_step = optax.sigmoid_binary_cross_entropy(logits[0, :3], batch['targets'][0, :3]).sum(-1)
  np.testing.assert_allclose(loss, per_step.mean(), rtol=1e-6)
  assert sums['token_count'] == 3 and sums['tokens_correct'] == 2
  assert sums['sequence_count'] == 1 and sums['sequences_correct'] == 0
  np.testing.assert_array_equal(formal_languages_task.example_correct(logits, batch), [False, True])


def test_classification_worked_example_ignores_padding_rows():
  logits = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.9, 0.05, 0.05]], np.float32))
  batch = {'labels': np.array([0, 2, 0]), 'valid': np.array([1, 1, 0])}
  loss, sums = classification.loss(logits, batch)
  np.testing.assert_allclose(loss, (-np.log(0.5) - np.log(0.1)) / 2, rtol=1e-5)
  assert sums['example_count'] == 2 and sums['examples_correct'] == 1
  assert 'confusion' not in sums                      # confusion matrices belong to evaluators
  assert metrics.compute(sums)['accuracy'] == 0.5
