"""The ablation report over finished run directories: rows, medians, failed seeds, plots."""

import json

import pytest

from seqnets.ablation import report
from seqnets.ablation import report_settings


def test_report_median_and_best_worked_example(tmp_path, write_run):
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
  # Seeds' n: 2, 4, 0. Median 2 with its interval (every resample's median is 0, 2 or 4),
  # mean 2 (its interval: tests/ablation/test_significance.py), best 4.
  line = next(l for l in table.splitlines() if l.startswith('| a | lstm |'))
  assert line.startswith('| a | lstm | 3 | 0 | 2/3 | 2 [0, 4] / 2 [') and line.endswith('] / 4 |')
  assert 'largest all-correct n: median [95 % CI] / mean [95 % CI] / best' in table
  assert '| b | elman | 1 | 0 | 1/1 | 1 / 1 / 1 |' in table     # one seed: no interval
  # Accuracy by n, mean over seeds: n = 1 and 3 right for 2 of 3 seeds.
  assert '| run | n = 1 | n = 2 | n = 3 | n = 4 |' in table
  assert '| a | 66.7 | 100.0 | 66.7 | 100.0 |' in table
  assert (tmp_path / 'accuracy_by_n.png').stat().st_size > 1000


def test_report_counts_each_seed_once_and_shows_failed_seeds(tmp_path, write_run):
  # Seed 1 has two final records (a finished run extended and finished again): the last counts.
  write_run(tmp_path / 'a', 'lstm', 'anbn', [[1, 1, 1, 1], [0, 0, 0, 0]],
            extra_finals=[(1, [1, 1, 0, 0]), (2, None)])
  write_run(tmp_path / 'b', 'gru', 'anbn', [[1, 0, 0, 0]])
  fields, rows, seeds = report.summarise(report.load_runs(tmp_path))
  row = next(r for r in rows if r['run'] == 'a')
  assert row['seeds'] == 3 and row['failed'] == 1
  assert row['metrics']['largest all-correct n']['median'] == 3   # seeds 0 and 1: n 4 and 2
  table = report.write_report(tmp_path)
  assert '| a | lstm | 3 | 1 | 2/2 | 3 [2, 4] / 3 [2, 4] / 4 |' in table
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
  assert ('| run | optim.learning_rate | seeds | failed | test accuracy: median [95 % CI] / '
          'mean [95 % CI] / best |') in table
  assert '| lr1e-3 | 0.001 | 2 | 0 | 0.85 [0.8, 0.9] / 0.85 [0.8, 0.9] / 0.9 |' in table
  assert (tmp_path / 'metrics.png').stat().st_size > 1000
  assert not (tmp_path / 'accuracy_vs_n.png').exists()


def test_report_without_runs_says_so(tmp_path):
  with pytest.raises(FileNotFoundError, match='no finished runs'):
    report.write_report(tmp_path)


def test_named_pairs_are_tested_and_stated_as_a_paper_would(tmp_path, n_values_run):
  n_values_run(tmp_path / 'peep', 'lstm_peephole', [30, 35, 38, 33, 36])
  n_values_run(tmp_path / 'lstm', 'lstm', [10, 12, 9, 11, 13])
  n_values_run(tmp_path / 'gru', 'gru', [11, 9, 12])
  settings = report_settings.from_config({'compare': [('peep', 'lstm'), ('lstm', 'gru')]})
  table = report.write_report(tmp_path, settings)
  results = json.loads((tmp_path / 'results.json').read_text())
  first, second = results['comparisons']
  # Completely separated 5 + 5 seeds: the exact two-sided p is 2 / C(10, 5).
  assert first['p_value'] == pytest.approx(2 / 252) and first['cliffs_delta'] == 1.0
  assert first['verdict'] == 'peep better' and first['exact']
  assert '`peep` scores higher than `lstm` on largest all-correct n (median 35 [' in table
  assert 'p = 0.00794, two-sided permutation test of the means, exact' in table
  assert second['verdict'] == 'not separated' and second['p_value'] > 0.5
  assert '`lstm` and `gru` are not separated on largest all-correct n at α = 0.05' in table
  report_md = (tmp_path / 'report.md').read_text()
  assert '## Comparisons' in report_md
  # Holm over the two pairs: 2 × 0.00794, and max(that, 1 × 0.964).
  assert ('| peep | lstm | largest all-correct n | 5 + 5 | 35 / 11 | +23.4 | +1.00 | 0.00794 | '
          '0.0159 | peep better |') in report_md
  assert second['p_holm'] == pytest.approx(second['p_value'])


def test_a_baseline_is_compared_with_every_run_on_its_data_and_few_seeds_are_named(tmp_path, n_values_run):
  n_values_run(tmp_path / 'anbn-lstm', 'lstm', [10, 12, 9])
  n_values_run(tmp_path / 'anbn-peep', 'lstm_peephole', [30, 35, 38])
  n_values_run(tmp_path / 'anbncn-peep', 'lstm_peephole', [5, 6, 7], language='anbncn')
  table = report.write_report(tmp_path, report_settings.from_config({'baseline': ['anbn-lstm']}))
  results = json.loads((tmp_path / 'results.json').read_text())
  assert [(c['a'], c['b']) for c in results['comparisons']] == [('anbn-peep', 'anbn-lstm')]
  assert results['comparisons'][0]['verdict'] == 'too few seeds'
  assert 'the smallest p-value 3 + 3 seeds can give is 0.1, not below α = 0.05' in table


def test_the_saved_report_section_is_used_and_a_bad_metric_is_named(tmp_path, n_values_run):
  section = {'compare': [('a', 'b')], 'alpha': 0.2}
  n_values_run(tmp_path / 'a', 'lstm', [1, 2, 3], report_section=section)
  n_values_run(tmp_path / 'b', 'gru', [7, 8, 9], report_section=section)
  report.write_report(tmp_path)
  assert json.loads((tmp_path / 'results.json').read_text())['comparisons'][0]['verdict'] == 'b better'
  with pytest.raises(ValueError, match=r"report.metric='eval/x' is not a numeric metric"):
    report.write_report(tmp_path, report_settings.from_config({'compare': [('a', 'b')],
                                                               'metric': 'eval/x'}))


def test_seeds_of_later_rounds_count_with_their_variant(tmp_path, n_values_run):
  n_values_run(tmp_path / 'a', 'lstm', [10, 12, 9])
  n_values_run(tmp_path / 'a' / report.MORE_SEEDS / 'seeds_3-4', 'lstm', [11, 13], first_seed=3)
  n_values_run(tmp_path / 'b', 'gru', [1, 2, 3])
  fields, rows, _ = report.summarise(report.load_runs(tmp_path))
  row = next(r for r in rows if r['run'] == 'a')
  assert row['seeds'] == 5 and row['metrics']['largest all-correct n']['median'] == 11
  assert [r['run'] for r in rows] == ['a', 'b']
