import re

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from seqnets.training import optimizers


def cfg(**kwargs):
  base = dict(name='sgd', learning_rate=0.1, schedule='constant', warmup_steps=0,
              end_learning_rate_factor=0.0, momentum=0.9, clip_norm=0.0, clip_value=0.0)
  base.update(kwargs)
  return ml_collections.ConfigDict(base)


def first_update(config, grads):
  tx = optimizers.from_config(config, total_steps=100)
  params = {'w': jnp.zeros_like(grads['w'])}
  updates, _ = tx.update(grads, tx.init(params), params)
  return np.asarray(updates['w'])


@pytest.mark.parametrize('name', sorted(optimizers.OPTIMIZERS))
def test_every_optimizer_descends(name):
  grads = {'w': jnp.array([1.0, -2.0])}
  update = first_update(cfg(name=name), grads)
  assert np.all(np.sign(update) == -np.sign(grads['w']))


def test_sgd_update_is_minus_lr_times_grad():
  np.testing.assert_allclose(first_update(cfg(), {'w': jnp.array([3.0, 4.0])}), [-0.3, -0.4], rtol=1e-6)


def test_clip_by_global_norm_rescales_to_the_threshold():
  # ‖(3, 4)‖ = 5 → clipped to norm 1 → (0.6, 0.8); SGD lr 0.1.
  np.testing.assert_allclose(first_update(cfg(clip_norm=1.0), {'w': jnp.array([3.0, 4.0])}),
                             [-0.06, -0.08], rtol=1e-6)


def test_clip_by_value_clips_each_entry():
  np.testing.assert_allclose(first_update(cfg(clip_value=0.5), {'w': jnp.array([3.0, -0.2])}),
                             [-0.05, 0.02], rtol=1e-6)


def test_warmup_cosine_schedule_values():
  schedule = optimizers.make_schedule(cfg(schedule='warmup_cosine', warmup_steps=10, learning_rate=1.0), 110)
  np.testing.assert_allclose([schedule(0), schedule(5), schedule(10), schedule(60), schedule(110)],
                             [0.0, 0.5, 1.0, 0.5, 0.0], atol=1e-6)


def test_warmup_linear_schedule_values():
  schedule = optimizers.make_schedule(
      cfg(schedule='warmup_linear', warmup_steps=10, learning_rate=1.0, end_learning_rate_factor=0.1), 110)
  np.testing.assert_allclose([schedule(0), schedule(10), schedule(60), schedule(110)],
                             [0.0, 1.0, 0.55, 0.1], atol=1e-6)


NAN, INF = float('nan'), float('inf')


@pytest.mark.parametrize('field,value,message', [
    ('name', 'adagrad', 'optim.name'),
    ('name', None, 'optim.name=None'),
    ('learning_rate', 0.0, 'optim.learning_rate'),
    ('learning_rate', -1e-3, 'optim.learning_rate must be a finite positive number, got -0.001'),
    ('learning_rate', NAN, 'optim.learning_rate must be a finite positive number, got nan'),
    ('learning_rate', INF, 'optim.learning_rate must be a finite positive number, got inf'),
    ('learning_rate', True, 'optim.learning_rate must be a finite positive number, got True'),
    ('learning_rate', '1e-3', "optim.learning_rate must be a finite positive number, got '1e-3'"),
    ('learning_rate', None, 'optim.learning_rate must be a finite positive number, got None'),
    ('schedule', 'step', 'optim.schedule'),
    ('warmup_steps', -1, 'optim.warmup_steps must be a non-negative integer, got -1'),
    ('warmup_steps', 2.5, 'optim.warmup_steps must be a non-negative integer, got 2.5'),
    ('warmup_steps', 10.0, 'optim.warmup_steps must be a non-negative integer, got 10.0'),
    ('warmup_steps', True, 'optim.warmup_steps must be a non-negative integer, got True'),
    ('warmup_steps', None, 'optim.warmup_steps must be a non-negative integer, got None'),
    ('end_learning_rate_factor', -0.1, 'optim.end_learning_rate_factor must be a finite non-negative'),
    ('end_learning_rate_factor', NAN, 'optim.end_learning_rate_factor'),
    ('end_learning_rate_factor', INF, 'optim.end_learning_rate_factor'),
    ('momentum', -0.1, 'optim.momentum must be a finite number in [0, 1), got -0.1'),
    ('momentum', 1.0, 'optim.momentum must be a finite number in [0, 1), got 1.0'),
    ('momentum', NAN, 'optim.momentum'),
    ('momentum', True, 'optim.momentum'),
    ('b1', 1.0, 'optim.b1 must be a finite number in [0, 1), got 1.0'),
    ('b1', -0.5, 'optim.b1'),
    ('b2', 1.5, 'optim.b2 must be a finite number in [0, 1), got 1.5'),
    ('b2', NAN, 'optim.b2'),
    ('eps', 0.0, 'optim.eps must be a finite positive number, got 0.0'),
    ('eps', -1e-8, 'optim.eps'),
    ('eps', INF, 'optim.eps'),
    ('decay', 0.0, 'optim.decay must be a finite number in (0, 1), got 0.0'),
    ('decay', 1.0, 'optim.decay must be a finite number in (0, 1), got 1.0'),
    ('clip_norm', -1.0, 'optim.clip_norm'),
    ('clip_norm', NAN, 'optim.clip_norm must be a finite non-negative number (0 or None: off), got nan'),
    ('clip_norm', INF, 'optim.clip_norm'),
    ('clip_value', -0.5, 'optim.clip_value'),
    ('clip_value', NAN, 'optim.clip_value'),
    ('clip_value', INF, 'optim.clip_value'),
    ('freeze', 'conv*', "optim.freeze must be a list or tuple of non-empty glob patterns (strings), "
                        "got 'conv*'"),
    ('freeze', ('conv*', 3), 'optim.freeze'),
    ('freeze', [''], 'optim.freeze'),
])
def test_bad_values_name_the_field(field, value, message):
  with pytest.raises(ValueError, match=f'^{re.escape(message)}'):
    optimizers.validate(cfg(**{field: value}))


@pytest.mark.parametrize('name', sorted(optimizers.OPTIMIZERS))
@pytest.mark.parametrize('field,value', [('momentum', 1.0), ('b2', 1.0), ('decay', 1.0), ('eps', 0.0)])
def test_optimizer_options_are_checked_whichever_optimizer_is_named(name, field, value):
  with pytest.raises(ValueError, match=f'^optim.{field} '):
    optimizers.validate(cfg(name=name, **{field: value}))


@pytest.mark.parametrize('overrides', [
    dict(learning_rate=1),                                     # ints where floats are expected
    dict(name='adam', b1=0, b2=0.99, eps=1),
    dict(name='rmsprop', decay=0.5, eps=1e-6, momentum=0),
    dict(name='momentum', momentum=None),
    dict(momentum=0.0, end_learning_rate_factor=2),
    dict(clip_norm=None, clip_value=None),
    dict(clip_norm=0, clip_value=5),
    dict(freeze=['conv*', '*/kernel'], warmup_steps=np.int64(3)),
    dict(freeze=None),
])
def test_good_values_pass_validation_and_build(overrides):
  config = cfg(**overrides)
  optimizers.validate(config)
  grads = {'w': jnp.array([1.0, -2.0])}
  assert np.all(np.isfinite(first_update(config, grads)))


@pytest.mark.parametrize('schedule', ['warmup_cosine', 'warmup_linear'])
@pytest.mark.parametrize('warmup_steps', [100, 150])
def test_warmup_as_long_as_training_still_works(schedule, warmup_steps):
  config = cfg(schedule=schedule, warmup_steps=warmup_steps, learning_rate=1.0)
  optimizers.validate(config)
  schedule_fn = optimizers.make_schedule(config, 100)
  values = np.array([schedule_fn(step) for step in (0, 50, 99, 100, 150, 200)])
  assert np.all(np.isfinite(values)) and np.all(values >= 0) and np.all(values <= 1.0)
  np.testing.assert_allclose(values[:2], [0.0, 50 / warmup_steps], atol=1e-6)


PARAMS = {'embed': {'embedding': jnp.ones((2, 2))}, 'layer0_cell': {'kernel': jnp.ones(3)},
          'output': {'kernel': jnp.ones(2)}}
GRADS = {'embed': {'embedding': jnp.full((2, 2), 2.0)}, 'layer0_cell': {'kernel': jnp.arange(3.0)},
         'output': {'kernel': jnp.array([3.0, 4.0])}}


def updates_over(config, steps):
  tx = optimizers.from_config(config, total_steps=100)
  state = tx.init(PARAMS)
  out = []
  for _ in range(steps):
    updates, state = tx.update(GRADS, state, PARAMS)
    out.append({k: np.asarray(v) for k, v in
                {'embed': updates['embed']['embedding'], 'layer0': updates['layer0_cell']['kernel'],
                 'output': updates['output']['kernel']}.items()})
  return out


@pytest.mark.parametrize('name', ['sgd', 'adam'])
def test_learning_rate_factors_scale_each_groups_update(name):
  plain = updates_over(cfg(name=name), 3)
  scaled = updates_over(cfg(name=name, learning_rate_factors=(('embed/*', 0.1), ('*', 0.5))), 3)
  for a, b in zip(plain, scaled):
    np.testing.assert_allclose(b['embed'], 0.1 * a['embed'], rtol=1e-6)    # first match wins
    np.testing.assert_allclose(b['layer0'], 0.5 * a['layer0'], rtol=1e-6)
    np.testing.assert_allclose(b['output'], 0.5 * a['output'], rtol=1e-6)


def test_unfreeze_steps_hold_a_group_until_its_step():
  plain = updates_over(cfg(name='sgd', momentum=None), 4)
  held = updates_over(cfg(name='sgd', momentum=None, unfreeze_steps=(('embed/*', 2),
                                                                     ('layer0_*', 1))), 4)
  for step, (a, b) in enumerate(zip(plain, held)):
    np.testing.assert_array_equal(b['output'], a['output'])
    np.testing.assert_array_equal(b['embed'], a['embed'] if step >= 2 else 0)
    np.testing.assert_array_equal(b['layer0'], a['layer0'] if step >= 1 else 0)


def test_frozen_gradients_count_in_no_clipping_norm():
  # Only output's gradient (3, 4), norm 5, is clipped to norm 1: lr 0.1 -> (-0.06, -0.08).
  (first,) = updates_over(cfg(name='sgd', momentum=None, clip_norm=1.0,
                              freeze=('embed/*', 'layer0_*')), 1)
  np.testing.assert_allclose(first['output'], [-0.06, -0.08], rtol=1e-6)
  assert np.all(first['embed'] == 0) and np.all(first['layer0'] == 0)


@pytest.mark.parametrize('field,value', [
    ('learning_rate_factors', (('embed/*', -1.0),)), ('learning_rate_factors', ('embed/*',)),
    ('unfreeze_steps', (('embed/*', 1.5),)), ('unfreeze_steps', (('', 3),))])
def test_group_fields_are_checked(field, value):
  with pytest.raises(ValueError, match=f'optim.{field} must be pairs'):
    optimizers.validate(cfg(**{field: value}))
