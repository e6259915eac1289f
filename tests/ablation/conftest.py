"""Fixtures: finished formal-language run directories, as the ablation report reads them."""

import json

import pytest


def _write_run(directory, cell, language, finals, extra_finals=()):
  """A finished formal-language run directory; `finals` per seed: correct flags for n = 1..4."""
  directory.mkdir(parents=True)
  (directory / 'config.json').write_text(json.dumps({
      'task': 'formal_language', 'seed': 0,
      'model': {'cell': cell, 'use_peepholes': False, 'activation': 'relu'},
      'data': {'language': language, 'test_n': [1, 4]},
      'evals': {'test_range': {'type': 'accuracy_by_n', 'split': 'test_range'}}}))
  lines = [{'step': 5, 'seed': 0, 'train/loss': 1.0}]
  for seed, correct in [*enumerate(finals), *extra_finals]:
    if correct is None:
      lines.append({'step': 10, 'seed': seed, 'final': True, 'failed': True, 'failed_step': 7,
                    'cause': 'non-finite loss'})
      continue
    lines.append({'step': 10, 'seed': seed, 'final': True, 'learned_training_range': correct[0] == 1.0,
                  'eval/test_range/max_correct_n': next((n for n, c in enumerate(correct) if not c), len(correct)),
                  'eval/test_range/accuracy_by_n': {str(n + 1): c for n, c in enumerate(correct)}})
  (directory / 'metrics.jsonl').write_text(''.join(json.dumps(l) + '\n' for l in lines))


def _n_values_run(directory, cell, ns, language='anbn', first_seed=0, report_section=None):
  """A formal-language run whose seeds reach the largest all-correct n of `ns` (n ≤ 40)."""
  finals = []
  for seed, n in enumerate(ns, start=first_seed):
    finals.append((seed, [1.0] * n + [0.0] * (40 - n)))
  _write_run(directory, cell, language, [], extra_finals=finals)
  config = json.loads((directory / 'config.json').read_text())
  config['data']['test_n'] = [1, 40]
  if report_section is not None:
    config['report'] = report_section
  (directory / 'config.json').write_text(json.dumps(config))


@pytest.fixture
def write_run():
  return _write_run


@pytest.fixture
def n_values_run():
  return _n_values_run
