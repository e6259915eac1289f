"""Best checkpoints, early stopping, reduce_on_plateau and checkpoint averaging.

The references are independent of the code under test: the best of an evaluation sequence
is its earliest argmax / argmin over the finite values, a seed stops at its N-th evaluation
in a row without a strict improvement, a checkpoint's parameters are those a hook saw after
that step, an average is NumPy's mean.
"""

import json
import math

import jax
import ml_collections
import numpy as np
import pytest

from configs import anbn
from seqnets.training import best, loop, optimizers, run_checkpoints, validation

NAN = float('nan')


def reference_best(values, mode):
  """(index, value) of the earliest best finite value, or (None, None)."""
  finite = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
  if not finite:
    return None, None
  sign = -1 if mode == 'max' else 1
  return min(finite, key=lambda item: (sign * item[1], item[0]))


def reference_stop(values, mode, patience):
  """Index of the evaluation after which a seed stops (None: never)."""
  best_so_far, since = None, 0
  for i, v in enumerate(values):
    better = math.isfinite(v) and (best_so_far is None or (v > best_so_far if mode == 'max'
                                                           else v < best_so_far))
    if better:
      best_so_far, since = v, 0
    else:
      since += 1
      if since == patience:
        return i
  return None


def feed(tracker, steps, per_seed_values, evaluator='dev', metric='accuracy'):
  for k, step in enumerate(steps):
    tracker.observe(step, [{f'eval/{evaluator}/{metric}': values[k], f'eval/{evaluator}/loss': -k,
                            'eval/other/loss': 7.0} for values in per_seed_values])


SEQUENCES = {
    'rising then falling': [0.2, 0.5, 0.9, 0.7, 0.6],
    'ties keep the earlier': [0.3, 0.8, 0.8, 0.1, 0.8],
    'nan never improves': [NAN, 0.4, NAN, 0.4, 0.2],
    'falling': [0.9, 0.7, 0.5, 0.5, 0.6],
    'all nan': [NAN, NAN, NAN],
}


@pytest.mark.parametrize('mode', ['max', 'min'])
@pytest.mark.parametrize('name', list(SEQUENCES))
def test_the_best_of_a_known_sequence(name, mode):
  values = SEQUENCES[name]
  steps = [10 * (k + 1) for k in range(len(values))]
  tracker = best.Tracker.fresh('dev/accuracy', mode, None, 1)
  feed(tracker, steps, [values])
  index, value = reference_best(values, mode)
  seed = tracker.seeds[0]
  assert seed.step == (None if index is None else steps[index])
  assert seed.value == value
  if index is not None:   # the numbers of that evaluation, of its evaluator only
    assert seed.metrics == {'eval/dev/accuracy': value, 'eval/dev/loss': -index}


def test_per_seed_bests_differ():
  values = [[0.1, 0.9, 0.5, 0.4], [0.1, 0.2, 0.3, 0.95], [0.5, 0.5, 0.5, 0.5]]
  tracker = best.Tracker.fresh('dev/accuracy', 'max', None, 3)
  feed(tracker, [5, 10, 15, 20], values)
  assert [s.step for s in tracker.seeds] == [10, 20, 5]
  assert [s.value for s in tracker.seeds] == [0.9, 0.95, 0.5]


@pytest.mark.parametrize('patience', [1, 2, 3])
@pytest.mark.parametrize('mode', ['max', 'min'])
def test_early_stopping_after_exactly_n_evaluations_without_improvement(patience, mode):
  values = [[0.3, 0.5, 0.5, 0.4, 0.6, 0.2, 0.2, 0.1, 0.7],
            [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
            [0.1, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.9, 0.9]]
  steps = list(range(2, 20, 2))
  tracker = best.Tracker.fresh('dev/accuracy', mode, patience, 3)
  stopped_at = {}
  for k, step in enumerate(steps):
    _, stopped = tracker.observe(step, [{'eval/dev/accuracy': v[k]} for v in values])
    for index in stopped:
      stopped_at[index] = step
  for index, seed_values in enumerate(values):
    stop = reference_stop(seed_values, mode, patience)
    assert stopped_at.get(index) == (None if stop is None else steps[stop]), index
    assert tracker.seeds[index].stopped_step == stopped_at.get(index)
    # A stopped seed's best is the best of what it saw until it stopped.
    seen = seed_values if stop is None else seed_values[:stop + 1]
    assert tracker.seeds[index].value == reference_best(seen, mode)[1]


def test_an_evaluation_is_taken_once_and_the_tracker_survives_json():
  tracker = best.Tracker.fresh('dev/accuracy', 'min', 2, 2)
  assert tracker.observe(4, [{'eval/dev/accuracy': 0.5}, {'eval/dev/accuracy': 0.7}]) == ([0, 1], [])
  assert tracker.observe(4, [{'eval/dev/accuracy': 0.1}, {'eval/dev/accuracy': 0.1}]) == ([], [])
  assert tracker.observe(6, [{'eval/dev/loss': 0.1}, {'eval/dev/loss': 0.1}]) == ([], [])   # not its metric
  assert tracker.observe(8, [{'eval/dev/accuracy': 'nan'}, {'eval/dev/accuracy': 0.6}], skip={1}) == ([], [])
  assert [s.since for s in tracker.seeds] == [1, 0]                       # seed 1 skipped (failed)
  np.testing.assert_array_equal(tracker.take_pending(), np.float32([np.nan, 0.7]))   # 'nan' is nothing new
  np.testing.assert_array_equal(tracker.take_pending(), [np.nan, np.nan])
  again = best.Tracker.from_json(json.loads(json.dumps(tracker.to_json())))
  assert again == tracker
  maxed = best.Tracker.fresh('dev/accuracy', 'max', None, 1)
  maxed.observe(2, [{'eval/dev/accuracy': 0.25}])
  np.testing.assert_array_equal(maxed.take_pending(), np.float32([-0.25]))            # lower is better


def plateau_reference(values, factor, patience, min_delta, cooldown=0):
  """The scale after each value (Keras's ReduceLROnPlateau rule with an absolute delta)."""
  scale, best_value, count, cool, scales = 1.0, math.inf, 0, 0, []
  for v in values:
    if v < best_value - min_delta:
      best_value, count = v, 0
    else:
      count += 1
    if cool > 0:
      cool, count = cool - 1, 0
    elif count == patience:
      scale, count, cool = scale * factor, 0, cooldown
    scales.append(scale)
  return scales


def test_plateau_scaling_moves_on_evaluations_only():
  config = optimizers_config(plateau_factor=0.5, plateau_patience=2, plateau_min_delta=0.1,
                             plateau_cooldown=1)
  tx = optimizers.plateau_scaling(config)
  params = {'w': np.zeros(2, np.float32)}
  state = tx.init(params)
  update = jax.jit(lambda s, v: tx.update({'w': np.ones(2, np.float32)}, s, params, plateau_value=v))
  values = [1.0, 0.95, 0.96, 0.5, 0.45, 0.47, 0.44, 0.3, 0.31, 0.32, 0.33]
  expected = plateau_reference(values, 0.5, 2, 0.1, 1)
  for value, scale in zip(values, expected):
    for _ in range(3):                    # steps without an evaluation change nothing
      updates, state = update(state, np.float32(np.nan))
    updates, state = update(state, np.float32(value))
    np.testing.assert_allclose(updates['w'], scale, rtol=1e-6)
    np.testing.assert_allclose(float(state.scale), scale, rtol=1e-6)
  assert expected[-1] < 1.0


def optimizers_config(**extra):
  return ml_collections.ConfigDict(dict(name='sgd', learning_rate=0.1, **extra))


def small_config(**train):
  config = anbn.get_config('smoke')
  config.train.update({**dict(num_train_steps=24, log_every_steps=24, checkpoint_every_steps=4,
                              max_checkpoints_to_keep=2), **train})
  config.evals.train_range.every_steps = 2
  config.num_seeds = 2
  config.data.update(full_batch=False, batch_size=2)   # the seeds see different data
  config.optim.learning_rate = 0.3
  return config


@pytest.mark.parametrize('path,value,message', [
    ('train.best_metric', 'dev/accuracy', "config.train.best_metric='dev/accuracy' names no metric "
                                          "of the run's evaluators"),
    ('train.best_metric', 'accuracy', "config.train.best_metric='accuracy' names no metric"),
    ('train.best_metric', 'test_range/accuracy', "evaluator 'test_range' runs only at the end"),
    ('train.best_mode', 'maximum', "config.train.best_mode='maximum'; valid: ['max', 'min']"),
    ('train.best_mode', None, 'config.train.best_mode=None; valid'),
    ('train.early_stopping_patience', 0, 'config.train.early_stopping_patience must be a positive'),
    ('train.early_stopping_patience', 2.5, 'config.train.early_stopping_patience must be a positive'),
    ('optim.plateau_factor', 1.5, 'config.optim.plateau_factor must be a finite number in (0, 1)'),
    ('optim.plateau_patience', 0, 'config.optim.plateau_patience must be an integer >= 1'),
    ('optim.plateau_min_delta', 0.0, 'config.optim.plateau_min_delta must be a finite positive'),
    ('optim.plateau_cooldown', -1, 'config.optim.plateau_cooldown must be an integer >= 0'),
    ('init_from_checkpoint', 'best', "config.init_from_checkpoint='best' needs config.init_from"),
])
def test_bad_values_are_one_line_errors_naming_the_field(tmp_path, path, value, message):
  config = small_config(best_metric='train_range/accuracy', best_mode='max')
  *sections, leaf = path.split('.')
  node = config
  for section in sections:
    node = node[section]
  node[leaf] = value
  with pytest.raises(validation.ConfigError) as error:
    loop.train_and_evaluate(config, tmp_path / 'run')
  assert message in str(error.value) and '\n' not in str(error.value)
  assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('train', [dict(best_mode='max'), dict(early_stopping_patience=2)])
def test_what_needs_best_metric_is_refused_without_it(tmp_path, train):
  config = small_config(**train)
  [field] = train
  with pytest.raises(validation.ConfigError, match=f'config.train.{field}=.* needs config.train.best_metric'):
    loop.train_and_evaluate(config, tmp_path / 'run')
  config = small_config()
  config.optim.schedule = 'reduce_on_plateau'
  with pytest.raises(validation.ConfigError, match="schedule='reduce_on_plateau' needs config.train.best_metric"):
    loop.train_and_evaluate(config, tmp_path / 'run')


def test_init_from_checkpoint_values_are_checked(tmp_path):
  config = small_config()
  config.init_from = str(tmp_path / 'source')
  config.init_from_checkpoint = 'bestest'
  with pytest.raises(validation.ConfigError, match="config.init_from_checkpoint='bestest'; valid: "
                                                   "'latest', 'best', 'average' or a step"):
    loop.train_and_evaluate(config, tmp_path / 'run')


def test_a_metric_the_evaluator_does_not_report_is_named_before_anything_is_written(tmp_path):
  config = small_config(best_metric='train_range/acuracy', best_mode='max')
  with pytest.raises(validation.ConfigError) as error:
    loop.train_and_evaluate(config, tmp_path / 'run')
  message = str(error.value)
  assert message.startswith("config.train.best_metric='train_range/acuracy' names no metric of the "
                            "run's evaluators; valid: [")
  for name in ('train_range/accuracy', 'train_range/loss', 'train_range/max_correct_n',
               'train_range/token_accuracy'):
    assert f"'{name}'" in message
  assert [p for p in (tmp_path / 'run').rglob('*') if p.is_file() and p.name != '.lock'] == []


def test_parse_checkpoint_choices():
  assert [run_checkpoints.parse(v, '--checkpoint') for v in ('best', 'latest', 'average', '12', 7,
                                                             None, '')] == [
      'best', 'latest', 'average', 12, 7, None, None]
  for bad in ('bset', '-3', -3, 2.0, True):
    with pytest.raises(ValueError, match=r"--checkpoint=.*; valid: 'latest', 'best'"):
      run_checkpoints.parse(bad, '--checkpoint')
