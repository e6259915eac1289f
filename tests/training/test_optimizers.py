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


@pytest.mark.parametrize('field,value,message', [
    ('name', 'adagrad', 'optim.name'),
    ('learning_rate', 0.0, 'optim.learning_rate'),
    ('schedule', 'step', 'optim.schedule'),
    ('clip_norm', -1.0, 'optim.clip_norm'),
])
def test_bad_values_name_the_field(field, value, message):
  with pytest.raises(ValueError, match=message):
    optimizers.validate(cfg(**{field: value}))
