"""Best checkpoints and early stopping in real runs, against references taken from the runs'
own records: the evaluations in metrics.jsonl and the parameters a hook saw after each step.

One reference run (2 seeds, different data, 24 steps, an evaluation every 2 steps,
checkpoints every 4 of which 2 are kept) serves every test; the others train at most 24
steps of the same tiny model.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
from optax import contrib

from configs import anbn
from seqnets.training import averaging, checkpoints, loop, saved_run, transfer, writers

ROOT = pathlib.Path(__file__).resolve().parents[2]
METRIC = 'train_range/token_accuracy'


def config_of(**train):
  config = anbn.get_config('smoke')
  config.train.update({**dict(num_train_steps=24, log_every_steps=24, checkpoint_every_steps=4,
                              max_checkpoints_to_keep=2, best_metric=METRIC, best_mode='max'),
                       **train})
  config.evals.train_range.every_steps = 2
  config.num_seeds = 2
  config.data.update(full_batch=False, batch_size=2)    # the seeds see different data
  config.optim.learning_rate = 0.3
  return config


def evaluations(workdir, metric, seed_index):
  """[(step, value)] of `metric` in the periodic and final evaluations of one seed."""
  return [(r['step'], r[f'eval/{metric}']) for r in writers.read_metrics(workdir)
          if r.get('seed') == seed_index and f'eval/{metric}' in r]


def earliest_best(pairs, mode):
  sign = -1 if mode == 'max' else 1
  return min(pairs, key=lambda pair: (sign * pair[1], pair[0]))


def seed_tree(tree, index):
  return jax.tree_util.tree_map(lambda a: np.asarray(a)[index], tree)


def assert_trees_equal(a, b):
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)


class History:
  """A hook keeping the parameters after every step (and sending SIGTERM at `stop_at`)."""

  def __init__(self, stop_at=None):
    self.params, self.stop_at = {}, stop_at

  def __call__(self, step, state):
    self.params[step] = jax.device_get(state.params)
    if step == self.stop_at:
      self.stop_at = None
      os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
  """`(workdir, params after each step)` of the reference run."""
  workdir = tmp_path_factory.mktemp('best') / 'run'
  history = History()
  loop.train_and_evaluate(config_of(), workdir, hooks=[history])
  return workdir, history.params


def best_steps(workdir):
  return [run['best_step'] for run in json.loads((workdir / 'results.json').read_text())['runs']]


def test_each_seed_gets_its_best_and_the_rotation_never_deletes_it(reference):
  workdir, history = reference
  results = json.loads((workdir / 'results.json').read_text())
  assert results['best_metric'] == METRIC and results['best_mode'] == 'max'
  expected = [earliest_best(evaluations(workdir, METRIC, index), 'max') for index in (0, 1)]
  assert [(r['best_step'], r['best_value']) for r in results['runs']] == expected
  assert len({step for step, _ in expected}) == 2 and 24 not in {s for s, _ in expected}, expected
  for run, (step, _) in zip(results['runs'], expected):
    record = next(r for r in writers.read_metrics(workdir)
                  if r.get('seed') == run['seed'] and r['step'] == step and f'eval/{METRIC}' in r)
    assert run['best'] == {k: v for k, v in record.items() if k.startswith('eval/train_range/')
                           and isinstance(v, (int, float))}
  assert sorted(os.listdir(workdir / 'checkpoints')) == ['20', '24']     # rotation kept two
  assert os.listdir(workdir / 'checkpoints_best') == [str(max(s for s, _ in expected))]
  run = saved_run.load_run(workdir)                                       # default: best
  assert run.checkpoint == 'best' and run.seed_steps == tuple(s for s, _ in expected)
  for index, (step, _) in enumerate(expected):
    assert_trees_equal(seed_tree(run.params, index), seed_tree(history[step], index))
    assert run.describe(index) == f'best checkpoint, step {step} (seed index {index})'
  lines = [(r['seed'], r['step']) for r in writers.read_metrics(workdir) if 'best_value' in r]
  assert lines and all(r['best_metric'] == METRIC for r in writers.read_metrics(workdir)
                       if 'best_value' in r)
  for index, (step, _) in enumerate(expected):
    assert max(s for seed, s in lines if seed == index) == step          # the last change


@pytest.mark.parametrize('which,step', [('latest', 24), ('20', 20), (20, 20)])
def test_load_run_reads_the_checkpoint_asked_for(reference, which, step):
  workdir, history = reference
  run = saved_run.load_run(workdir, checkpoint=which)
  assert run.step == step and run.seed_steps == (step, step)
  assert_trees_equal(jax.device_get(run.params), history[step])


def test_a_missing_checkpoint_is_named(reference, tmp_path):
  workdir, _ = reference
  with pytest.raises(FileNotFoundError, match=r"checkpoints has no step 12; its steps: \[20, 24\]"):
    saved_run.load_run(workdir, checkpoint=12)
  with pytest.raises(FileNotFoundError, match='has no averaged checkpoint'):
    saved_run.load_run(workdir, checkpoint='average')
  with pytest.raises(ValueError, match=r"checkpoint='bset'; valid: 'latest', 'best'"):
    saved_run.load_run(workdir, checkpoint='bset')


def run_command(*args):
  env = dict(os.environ, XLA_FLAGS=os.environ['SEQNETS_TEST_XLA_FLAGS'], JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=300)


def test_evaluate_prints_the_figures_of_the_step_it_reads(reference):
  """Seed index 1's evaluation at its best step and at step 20 (metrics.jsonl), printed again."""
  workdir, _ = reference
  best_step = best_steps(workdir)[1]
  for flags, step, said in (([], best_step, f'best checkpoint, step {best_step} (seed index 1)'),
                            (['--checkpoint=20'], 20, 'checkpoint of step 20')):
    done = run_command('experiments.evaluate', f'--workdir={workdir}', '--seed_index=1', *flags)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    [record] = [r for r in writers.read_metrics(workdir) if r.get('seed') == 1 and r['step'] == step
                and 'eval/train_range/loss' in r]
    for name in ('loss', 'token_accuracy', 'accuracy'):
      assert printed[f'train_range/{name}'] == pytest.approx(record[f'eval/train_range/{name}'],
                                                             rel=1e-5, abs=1e-7)
    assert f'{workdir}: read the {said}' in done.stderr
  bad = run_command('experiments.evaluate', f'--workdir={workdir}', '--checkpoint=newest')
  assert bad.returncode == 2 and "--checkpoint='newest'; valid: 'latest', 'best'" in bad.stderr
  assert 'Traceback' not in bad.stderr


def test_averaging_is_the_mean_of_the_restored_parameters(reference, tmp_path):
  source, _ = reference
  workdir = tmp_path / 'run'
  shutil.copytree(source, workdir)
  done = run_command('experiments.average_checkpoints', f'--workdir={workdir}', '--last=2')
  assert done.returncode == 0, done.stderr[-3000:]
  assert json.loads(done.stdout.strip().splitlines()[-1]) == {
      'written': str(workdir / 'checkpoints_average' / '24'), 'steps': [20, 24]}
  ckpt = checkpoints.Checkpointer(workdir / 'checkpoints')
  restored = [ckpt.restore_state_dict_at(step)['params'] for step in (20, 24)]
  ckpt.close()
  expected = jax.tree_util.tree_map(lambda a, b: np.mean(np.stack([a, b]), axis=0), *restored)
  run = saved_run.load_run(workdir, checkpoint='average')
  assert run.checkpoint == 'average' and run.averaged == (20, 24)
  jax.tree_util.tree_map(lambda got, want: np.testing.assert_allclose(got, want, rtol=1e-6),
                         run.params, expected)
  assert saved_run.load_run(workdir).checkpoint == 'best'      # the default stays the best
  assert averaging.average_checkpoints(workdir, 1) == (24, [24])  # replaces the average
  assert os.listdir(workdir / 'checkpoints_average') == ['24']
  assert_trees_equal(saved_run.load_run(workdir, checkpoint='average').params, restored[1])
  too_many = run_command('experiments.average_checkpoints', f'--workdir={workdir}', '--last=3')
  assert too_many.returncode == 2 and '--last=3' in too_many.stderr and 'holds 2 checkpoints' in too_many.stderr


def test_init_from_reads_the_checkpoint_asked_for(reference):
  workdir, history = reference
  fresh = jax.tree_util.tree_map(np.zeros_like, history[24])
  preprocessing = saved_run.load_run(workdir).preprocessing
  for which, step in (('best', best_steps(workdir)[0]), ('latest', 24), (None, best_steps(workdir)[0])):
    params, report = transfer.init_from_run(workdir, fresh, preprocessing, which)
    for index in (0, 1):        # every seed gets seed 0's parameters of that step
      assert_trees_equal(seed_tree(params, index), seed_tree(history[step], 0))
    assert str(step) in report['checkpoint']


def test_resumed_run_keeps_the_same_best(reference, tmp_path):
  """Shorter then longer (num_train_steps 12, then 24): the same best, tracker and files."""
  workdir, history = reference
  resumed = tmp_path / 'run'
  loop.train_and_evaluate(config_of(num_train_steps=12), resumed)
  loop.train_and_evaluate(config_of(), resumed)
  assert best_steps(resumed) == best_steps(workdir)
  want, got = (json.loads((w / 'results.json').read_text()) for w in (workdir, resumed))
  for w, g in zip(want['runs'], got['runs']):
    assert {k: g[k] for k in ('best_step', 'best_value', 'best')} == {
        k: w[k] for k in ('best_step', 'best_value', 'best')}
  trackers = [json.loads((w / 'best_tracking.json').read_text())['trackers']['24']
              for w in (workdir, resumed)]
  assert trackers[0] == trackers[1]
  assert os.listdir(resumed / 'checkpoints_best') == os.listdir(workdir / 'checkpoints_best')
  assert_trees_equal(saved_run.load_run(resumed).params, saved_run.load_run(workdir).params)


def test_early_stopping_stops_each_seed_after_patience_evaluations(reference, tmp_path):
  """Loss ('min'), patience 1: each seed stops at its first evaluation that is not a new
  best (from the reference run's evaluations; the seeds train alike until then). The run is
  stopped by SIGTERM in between, resumed, and rerun once done."""
  source, history = reference
  stops = []
  for index in (0, 1):
    pairs = evaluations(source, 'train_range/loss', index)
    stops.append(next((step for (_, before), (step, v) in zip(pairs, pairs[1:]) if v >= before)))
  assert len(set(stops)) == 2 and max(stops) < 24, stops
  workdir = tmp_path / 'run'
  config = config_of(best_metric='train_range/loss', best_mode='min', early_stopping_patience=1)
  first_stop = min(stops)
  interrupted = loop.train_and_evaluate(config, workdir, hooks=[History(stop_at=first_stop + 1)])
  assert interrupted.interrupted and interrupted.step == first_stop + 1
  result = loop.train_and_evaluate(config, workdir)
  assert result.step == max(stops) and not result.interrupted
  results = json.loads((workdir / 'results.json').read_text())
  assert results['early_stopped'] is True and results['step'] == max(stops)
  assert [r['early_stopped_step'] for r in results['runs']] == stops
  for index, stop in enumerate(stops):   # a stopped seed keeps the parameters of its stop
    assert_trees_equal(seed_tree(jax.device_get(result.state.params), index),
                       seed_tree(history[stop], index))
    best_step = results['runs'][index]['best_step']
    assert best_step == earliest_best([p for p in evaluations(source, 'train_range/loss', index)
                                       if p[0] <= stop], 'min')[0]
  stopped_lines = [(r['seed'], r['step']) for r in writers.read_metrics(workdir) if r.get('early_stopped')]
  assert stopped_lines == sorted([(0, stops[0]), (1, stops[1])], key=lambda p: p[1])
  later = [r for r in writers.read_metrics(workdir) if 'train/loss' in r or 'eval/train_range/loss' in r]
  assert all(r['step'] <= stops[r['seed']] for r in later if not r.get('final'))
  again = loop.train_and_evaluate(config, workdir)              # ended by early stopping: done
  assert again.state is None and again.step == max(stops)


def plateau_scales(values, factor, patience, min_delta):
  scale, best_value, count = 1.0, float('inf'), 0
  for v in values:
    if v < best_value - min_delta:
      best_value, count = v, 0
    else:
      count += 1
    if count == patience:
      scale, count = scale * factor, 0
  return scale


def assert_plateau_scales_follow_the_evaluations(state, workdir):
  """Each seed's reduce_on_plateau scale is that of the rule (factor 0.5, patience 1,
  min delta 0.05) applied to its periodic evaluations; the scale did drop."""
  is_plateau = lambda x: isinstance(x, contrib.ReduceLROnPlateauState)
  [plateau] = [x for x in jax.tree_util.tree_leaves(state.opt_state, is_leaf=is_plateau)
               if is_plateau(x)]
  for index in (0, 1):
    values = [v for step, v in evaluations(workdir, 'train_range/loss', index) if step < 24]
    expected = plateau_scales(values, 0.5, 1, 0.05)
    assert float(np.asarray(plateau.scale)[index]) == pytest.approx(expected, rel=1e-6)
    assert expected < 1.0


def test_reduce_on_plateau_follows_the_evaluations_across_a_resume(tmp_path):
  """The scale after training is that of the rule applied to every periodic evaluation
  (the final one trains nothing); a SIGTERM right after an evaluation loses none."""
  config = config_of(best_metric='train_range/loss', best_mode='min')
  config.optim.update(schedule='reduce_on_plateau', plateau_factor=0.5, plateau_patience=1,
                      plateau_min_delta=0.05)
  workdir = tmp_path / 'run'
  assert loop.train_and_evaluate(config, workdir, hooks=[History(stop_at=10)]).interrupted
  result = loop.train_and_evaluate(config, workdir)
  assert_plateau_scales_follow_the_evaluations(result.state, workdir)


def test_best_checkpoints_newer_than_the_resumed_step_are_set_aside(reference, tmp_path):
  """As after a kill: the newest latest checkpoint and results.json are gone, so the run
  resumes from step 16 while checkpoints_best holds bests of later steps. Those are moved
  aside and written again: the same best as the reference run (checkpoint cadence does not
  change training)."""
  source, history = reference
  workdir = tmp_path / 'run'
  config = config_of(checkpoint_every_steps=8)
  loop.train_and_evaluate(config, workdir)
  shutil.rmtree(workdir / 'checkpoints' / '24')
  (workdir / 'results.json').unlink()
  tracked = json.loads((workdir / 'best_tracking.json').read_text())['trackers']
  later = sorted(int(p.name) for p in (workdir / 'checkpoints_best').iterdir()
                 if p.name.isdigit() and int(p.name) > tracked['16']['saved_at'])
  assert later, tracked['16']
  loop.train_and_evaluate(config, workdir)
  assert sorted(p.name for p in (workdir / 'checkpoints_best').iterdir()
                if p.name.endswith('.superseded')) == [f'{s}.superseded' for s in later]
  assert best_steps(workdir) == best_steps(source)
  run = saved_run.load_run(workdir)
  for index, step in enumerate(best_steps(source)):
    assert_trees_equal(seed_tree(run.params, index), seed_tree(history[step], index))


def test_with_a_moving_average_the_best_checkpoint_holds_the_average_that_was_evaluated(tmp_path):
  """The evaluations of a run with `optim.ema_decay` score the moving average, so its best
  checkpoint, `--checkpoint=STEP` and averaging read the average too."""
  config = config_of(checkpoint_every_steps=2, max_checkpoints_to_keep=12)
  config.optim.ema_decay = 0.5
  workdir = tmp_path / 'run'
  history = {}
  hook = lambda step, state: history.__setitem__(step, jax.device_get(state.ema_params))
  loop.train_and_evaluate(config, workdir, hooks=[hook])
  best = saved_run.load_run(workdir)
  assert best.checkpoint == 'best' and best.evaluated_params == 'ema_params'
  assert best.describe(0).endswith('its moving-average parameters')
  for index, step in enumerate(best_steps(workdir)):
    assert_trees_equal(seed_tree(best.params, index), seed_tree(history[step], index))
    at_step = saved_run.load_run(workdir, checkpoint=step)
    assert_trees_equal(seed_tree(at_step.params, index), seed_tree(history[step], index))
  averaging.average_checkpoints(workdir, 2)
  average = saved_run.load_run(workdir, checkpoint='average')
  expected = jax.tree_util.tree_map(lambda a, b: (np.asarray(a) + np.asarray(b)) / 2,
                                    history[22], history[24])
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
                         jax.device_get(average.params), expected)


def test_with_accumulation_each_plateau_value_reaches_the_next_update(tmp_path):
  """optax.MultiSteps keeps what the optimizer is given only on the micro-step that
  updates: an evaluation after step 6 (of k = 2 micro-steps each) must wait for step 8."""
  config = config_of(best_metric='train_range/loss', best_mode='min')
  config.optim.update(schedule='reduce_on_plateau', plateau_factor=0.5, plateau_patience=1,
                      plateau_min_delta=0.05, accumulate_steps=2)
  config.evals.train_range.every_steps = 3     # evaluations after odd and even steps
  workdir = tmp_path / 'run'
  result = loop.train_and_evaluate(config, workdir)
  assert_plateau_scales_follow_the_evaluations(result.state, workdir)
