"""Seeds until significant: which variants get seeds, which seeds, when the rounds stop,
and what the report says; end to end from the command line, with a rerun."""

import json
import os
import pathlib
import subprocess
import sys

import ml_collections
import pytest

from seqnets.ablation import report
from seqnets.ablation import report_settings
from seqnets.ablation import seed_rounds

ROOT = pathlib.Path(__file__).resolve().parents[2]


def configs(*names, num_seeds=3):
  return {name: ml_collections.ConfigDict({'seed': 0, 'num_seeds': num_seeds}) for name in names}


def settings(**keys):
  return report_settings.from_config({'compare': [('a', 'b')], 'seeds_per_round': 2,
                                      'max_seeds': 6, **keys})


def test_an_undecided_pair_gets_the_next_seeds_of_both_variants(tmp_path, n_values_run):
  n_values_run(tmp_path / 'a', 'lstm', [10, 12, 9])
  n_values_run(tmp_path / 'b', 'gru', [11, 9, 13])
  planned = seed_rounds.plan_next_round(configs('a', 'b'), tmp_path, settings())
  assert [(name, c.seed, c.num_seeds, workdir) for name, c, workdir in planned] == [
      ('a/more_seeds/seeds_3-4', 3, 2, str(tmp_path / 'a/more_seeds/seeds_3-4')),
      ('b/more_seeds/seeds_3-4', 3, 2, str(tmp_path / 'b/more_seeds/seeds_3-4'))]
  assert seed_rounds.read_plan(tmp_path)[0]['round'] == 1
  # Round 1 trained: a is ahead now, but 5 + 5 seeds cannot separate these; round 2 takes
  # the last seed of the budget (6), with the seeds after those of round 1.
  n_values_run(tmp_path / 'a/more_seeds/seeds_3-4', 'lstm', [30, 31], first_seed=3)
  n_values_run(tmp_path / 'b/more_seeds/seeds_3-4', 'gru', [10, 12], first_seed=3)
  planned = seed_rounds.plan_next_round(configs('a', 'b'), tmp_path, settings())
  assert [(c.seed, c.num_seeds) for _, c, _ in planned] == [(5, 1), (5, 1)]
  assert len(seed_rounds.read_plan(tmp_path)) == 2


def test_the_rounds_stop_when_the_pair_is_decided(tmp_path, n_values_run):
  n_values_run(tmp_path / 'a', 'lstm', [30, 35, 38, 33])
  n_values_run(tmp_path / 'b', 'gru', [10, 12, 9, 11])
  assert seed_rounds.plan_next_round(configs('a', 'b', num_seeds=4), tmp_path, settings()) is None
  assert not (tmp_path / seed_rounds.PLAN).exists()
  note = seed_rounds.outcome(tmp_path, settings(), configs('a', 'b', num_seeds=4))
  assert "* `a` vs `b`: decided with the sweep's own seeds (p = 0.0286, 4 + 4 seeds)." in note


def test_the_rounds_stop_when_the_budget_is_spent(tmp_path, n_values_run):
  n_values_run(tmp_path / 'a', 'lstm', [10, 12, 9])
  n_values_run(tmp_path / 'b', 'gru', [11, 9, 13])
  tight = settings(max_seeds=3)
  assert seed_rounds.plan_next_round(configs('a', 'b'), tmp_path, tight) is None
  note = seed_rounds.outcome(tmp_path, tight, configs('a', 'b'))
  assert '* `a` vs `b`: undecided, the seed budget is spent (p = ' in note


def test_a_variant_in_two_undecided_pairs_gets_one_run_per_round(tmp_path, n_values_run):
  for name in 'abc':
    n_values_run(tmp_path / name, 'lstm', [10, 12, 9])
  chained = settings(compare=[('a', 'b'), ('b', 'c')])
  planned = seed_rounds.plan_next_round(configs('a', 'b', 'c'), tmp_path, chained)
  assert [name.split('/')[0] for name, _, _ in planned] == ['a', 'b', 'c']


def test_a_damaged_plan_is_named(tmp_path):
  (tmp_path / seed_rounds.PLAN).write_text('{"rounds": 3')
  with pytest.raises(ValueError, match='seed_rounds.json is not a seed-round plan'):
    seed_rounds.read_plan(tmp_path)


def test_until_significant_from_the_command_line_and_a_rerun(tmp_path):
  """The smoke sweep's pair (2 seeds each, 1 per round, at most 3) runs one round, says the
  budget is spent, and a rerun trains nothing."""
  env = dict(os.environ, XLA_FLAGS=os.environ['SEQNETS_TEST_XLA_FLAGS'], JAX_PLATFORMS='cpu')
  command = [sys.executable, '-m', 'experiments.ablate', '--config=configs/ablate_formal.py:smoke',
             f'--workdir={tmp_path}', '--until_significant']
  done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  for variant in ('anbn-elman_relu-h3', 'anbncn-lstm_peephole-h3'):
    assert json.loads((tmp_path / variant / 'more_seeds/seeds_2-2/results.json').read_text())
  rows = json.loads((tmp_path / 'results.json').read_text())['summary']
  assert [row['seeds'] for row in rows] == [3, 3]
  assert 'undecided, the seed budget is spent' in done.stdout
  assert '## Seeds added until significant' in (tmp_path / 'report.md').read_text()
  # `experiments.report` rebuilds the same account from the run directories alone.
  assert seed_rounds.saved_outcome(tmp_path) in done.stdout
  again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'done,' not in again.stderr and again.stderr.count('done before, skipped') == 2
  assert len(report.load_runs(tmp_path)) == 2


def test_compared_names_must_be_variants_of_the_sweep(tmp_path):
  env = dict(os.environ, XLA_FLAGS=os.environ['SEQNETS_TEST_XLA_FLAGS'], JAX_PLATFORMS='cpu')
  done = subprocess.run(
      [sys.executable, '-m', 'experiments.ablate', '--config=configs/ablate_formal.py:smoke',
       f'--workdir={tmp_path}', "--config.report.compare=(('anbn-elman_relu-h3', 'gru'),)"],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert done.returncode == 2
  assert "report.compare[0]: no variant named 'gru' in the sweep" in done.stderr
  assert not (tmp_path / 'anbn-elman_relu-h3').exists()
