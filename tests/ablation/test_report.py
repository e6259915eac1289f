"""The ablation report over finished run directories: rows, medians, failed seeds, plots."""

import json

import pytest

from seqnets.ablation import report


def write_run(directory, cell, language, finals, extra_finals=()):
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


def test_report_median_and_best_worked_example(tmp_path):
  write_run(tmp_path / 'a', 'lstm', 'anbn', [[1, 1, 0, 1], [1, 1, 1, 1], [0, 1, 1, 1]])
  write_run(tmp_path / 'b', 'elman', 'anbn', [[1, 0, 0, 0]])
  fields, rows, seeds = report.summarise(report.load_runs(tmp_path))
  assert fields == ['model.cell']
  rows = {r['model.cell']: r for r in rows}
  n = rows['lstm']['metrics']['largest all-correct n']
  assert rows['lstm']['run'] == 'a' and n['median'] == 2 and n['best'] == 4
  assert rows['lstm']['metrics']['seeds that learned the training range'] == {
      'key': 'learned_training_range', 'aggregate': 'count_true', 'count': 2, 'of': 3}
  assert rows['elman']['metrics']['largest all-correct n']['best'] == 1
  table = report.write_report(tmp_path)
  assert '| a | lstm | 3 | 0 | 2/3 | 2 / 4 |' in table
  # Accuracy by n, mean over seeds: n = 1 and 3 right for 2 of 3 seeds.
  assert '| run | n = 1 | n = 2 | n = 3 | n = 4 |' in table
  assert '| a | 66.7 | 100.0 | 66.7 | 100.0 |' in table
  assert (tmp_path / 'accuracy_by_n.png').stat().st_size > 1000


def test_report_counts_each_seed_once_and_shows_failed_seeds(tmp_path):
  # Seed 1 has two final records (a finished run extended and finished again): the last counts.
  write_run(tmp_path / 'a', 'lstm', 'anbn', [[1, 1, 1, 1], [0, 0, 0, 0]],
            extra_finals=[(1, [1, 1, 0, 0]), (2, None)])
  write_run(tmp_path / 'b', 'gru', 'anbn', [[1, 0, 0, 0]])
  fields, rows, seeds = report.summarise(report.load_runs(tmp_path))
  row = next(r for r in rows if r['run'] == 'a')
  assert row['seeds'] == 3 and row['failed'] == 1
  assert row['metrics']['largest all-correct n']['median'] == 3   # seeds 0 and 1: n 4 and 2
  table = report.write_report(tmp_path)
  assert '| a | lstm | 3 | 1 | 2/2 | 3 / 4 |' in table
  assert '| a | 2 | 7 | non-finite loss |' in (tmp_path / 'report.md').read_text()


def test_report_of_a_classification_sweep_over_learning_rates(tmp_path):
  for name, lr, accuracies in (('lr1e-3', 1e-3, [0.9, 0.8]), ('lr1e-2', 1e-2, [0.5, 0.7])):
    directory = tmp_path / name
    directory.mkdir()
    (directory / 'config.json').write_text(json.dumps({
        'task': 'image_classification', 'seed': 0, 'optim': {'learning_rate': lr},
        'evals': {'test': {'type': 'classification', 'split': 'test'}}}))
    (directory / 'metrics.jsonl').write_text(''.join(
        json.dumps({'step': 3, 'seed': s, 'final': True, 'eval/test/accuracy': a}) + '\n'
        for s, a in enumerate(accuracies)))
  table = report.write_report(tmp_path)
  assert '| run | optim.learning_rate | seeds | failed | test accuracy: median / best |' in table
  assert '| lr1e-3 | 0.001 | 2 | 0 | 0.85 / 0.9 |' in table
  assert (tmp_path / 'metrics.png').stat().st_size > 1000
  assert not (tmp_path / 'accuracy_vs_n.png').exists()


def test_report_without_runs_says_so(tmp_path):
  with pytest.raises(FileNotFoundError, match='no finished runs'):
    report.write_report(tmp_path)
