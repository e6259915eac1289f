"""train_and_evaluate with diverging seeds: what is marked, kept, evaluated and reported.

(Damaged workdirs and resumes from the command line: tests/experiments/test_run_integrity.py.)
"""

import json
import os
import signal

import jax
import numpy as np
import pytest

from configs import anbn
from seqnets.ablation import report
from seqnets.training import checkpoints, loop, writers


def small_config():
  config = anbn.get_config('smoke')  # 20 steps, checkpoints at 10 and 20, logs every 5
  config.model.cell = dict(name='elman', hidden_size=config.model.cell.hidden_size)
  return config


def seed_params(tree, index):
  return jax.tree_util.tree_map(lambda a: np.asarray(a[index]), tree)


def diverging_config(seed, num_seeds, learning_rate):
  """Elman ReLU, plain SGD without clipping, different data per seed. Measured: at 1e3, of
  seeds 2, 3, 4 the first and last reach a non-finite loss at step 2 and seed 3 stays finite
  (up to 1e5); at 1e4 seeds 0 and 1 both fail at step 2."""
  config = small_config()
  config.seed, config.num_seeds = seed, num_seeds
  config.model.cell.activation = 'relu'
  config.data.update(full_batch=False, batch_size=2)
  config.optim.update(name='sgd', learning_rate=learning_rate, clip_norm=0.0)
  return config


@pytest.fixture(scope='module')
def diverged_run(tmp_path_factory):
  """`(workdir, params after each step)`: 3 seeds, some of which diverge at step 2; the run is
  stopped by SIGTERM at step 15 and resumed to step 20."""
  workdir = tmp_path_factory.mktemp('diverged') / 'run'
  history = {}

  def keep_params(step, state):
    if step == 15 and step not in history:
      os.kill(os.getpid(), signal.SIGTERM)
    history[step] = jax.device_get(state.params)

  config = diverging_config(2, 3, 1e3)
  assert loop.train_and_evaluate(config, workdir, num_devices=1, hooks=[keep_params]).interrupted
  assert loop.train_and_evaluate(config, workdir, num_devices=1, hooks=[keep_params]).step == 20
  return workdir, history


def test_a_diverged_seed_is_marked_and_keeps_its_last_good_values(diverged_run):
  workdir, history = diverged_run
  results = json.loads((workdir / 'results.json').read_text())
  runs = {r['seed']: r for r in results['runs']}
  failed = [s for s, r in runs.items() if r.get('failed')]
  healthy = [s for s in runs if s not in failed]
  assert failed and healthy, runs
  finals = {r['seed']: r for r in writers.read_metrics(workdir) if r.get('final')}
  state, step = checkpoints.Checkpointer(workdir / 'checkpoints').restore_state_dict()
  assert step == 20
  for seed in failed:
    index = seed - 2
    bad_step = runs[seed]['failed_step']
    assert 2 <= bad_step <= 20
    assert runs[seed]['cause'] == finals[seed]['cause'] == loop.FAILURE_CAUSE
    assert finals[seed]['failed'] is True and finals[seed]['failed_step'] == bad_step
    saved = seed_params(state['params'], index)
    assert all(np.all(np.isfinite(l)) for l in jax.tree_util.tree_leaves(saved))
    jax.tree_util.tree_map(np.testing.assert_array_equal, saved, seed_params(history[bad_step - 1], index))
  for seed in healthy:
    assert not runs[seed].get('failed')
    assert isinstance(runs[seed]['eval/test_range/max_correct_n'], int)
    assert 'eval/train_range/accuracy' in finals[seed]
  report.write_report(workdir.parent)
  text = (workdir.parent / 'report.md').read_text()
  assert '## Failed seeds' in text
  for seed in failed:
    assert f"| run | {seed} | {runs[seed]['failed_step']} | {loop.FAILURE_CAUSE} |" in text
  assert f'| run | 3 | {len(failed)} |' in text


def test_a_failed_seed_is_recorded_once_across_a_resume(diverged_run):
  workdir, _ = diverged_run
  records = writers.read_metrics(workdir)
  failures = [(r['seed'], r['step']) for r in records if r.get('failed') and not r.get('final')]
  assert failures and len(failures) == len(set(failures)), failures
  steps = [r['step'] for r in records]
  assert steps == sorted(steps)


def test_every_seed_diverging_raises_naming_the_step(tmp_path):
  with pytest.raises(FloatingPointError, match=r'at step \d+') as error:
    loop.train_and_evaluate(diverging_config(0, 2, 1e4), tmp_path, num_devices=1)
  results = json.loads((tmp_path / 'results.json').read_text())
  runs = results['runs']
  assert [r['seed'] for r in runs] == [0, 1]
  assert all(r['failed'] and r['failed_step'] >= 1 and r['cause'] == loop.FAILURE_CAUSE for r in runs)
  assert f"at step {min(r['failed_step'] for r in runs)} " in str(error.value)
