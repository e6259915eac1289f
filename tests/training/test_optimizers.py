import re

import jax
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
    ('schedule', 'cosine_restarts', 'optim.schedule'),
    ('decay_rate', 0.0, 'optim.decay_rate must be a finite number in (0, 1), got 0.0'),
    ('decay_rate', 1.5, 'optim.decay_rate must be a finite number in (0, 1), got 1.5'),
    ('decay_rate', NAN, 'optim.decay_rate'),
    ('transition_steps', 0, 'optim.transition_steps must be a positive integer or None, got 0'),
    ('transition_steps', 2.5, 'optim.transition_steps must be a positive integer or None, got 2.5'),
    ('transition_steps', True, 'optim.transition_steps must be a positive integer or None, got True'),
    ('staircase', 1, 'optim.staircase must be True or False, got 1'),
    ('staircase', 'yes', "optim.staircase must be True or False, got 'yes'"),
    ('weight_decay', -1, 'optim.weight_decay must be a finite non-negative number, got -1'),
    ('weight_decay', NAN, 'optim.weight_decay must be a finite non-negative number, got nan'),
    ('weight_decay', INF, 'optim.weight_decay'),
    ('weight_decay', True, 'optim.weight_decay must be a finite non-negative number, got True'),
    ('weight_decay', None, 'optim.weight_decay must be a finite non-negative number, got None'),
    ('weight_decay_exclude', '*bias', "optim.weight_decay_exclude must be a list or tuple of "
                                      "non-empty glob patterns (strings), got '*bias'"),
    ('weight_decay_exclude', ('*bias', ''), 'optim.weight_decay_exclude'),
    ('weight_decay_exclude', [3], 'optim.weight_decay_exclude'),
    ('accumulate_steps', 0, 'optim.accumulate_steps must be a positive integer, got 0'),
    ('accumulate_steps', 2.0, 'optim.accumulate_steps must be a positive integer, got 2.0'),
    ('accumulate_steps', None, 'optim.accumulate_steps must be a positive integer, got None'),
    ('accumulate_steps', True, 'optim.accumulate_steps must be a positive integer, got True'),
    ('ema_decay', 1.0, 'optim.ema_decay must be a finite number in [0, 1) (None: off), got 1.0'),
    ('ema_decay', -0.5, 'optim.ema_decay'),
    ('ema_decay', NAN, 'optim.ema_decay'),
    ('ema_decay', '0.99', 'optim.ema_decay'),
])
def test_bad_values_name_the_field(field, value, message):
  with pytest.raises(ValueError, match=f'^{re.escape(message)}'):
    optimizers.validate(cfg(**{field: value}))


@pytest.mark.parametrize('name', sorted(optimizers.OPTIMIZERS))
@pytest.mark.parametrize('field,value', [('momentum', 1.0), ('b2', 1.0), ('decay', 1.0), ('eps', 0.0),
                                         ('weight_decay', -0.1), ('accumulate_steps', 0),
                                         ('ema_decay', 1.0), ('decay_rate', 0.0)])
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
    dict(name='adamw', weight_decay=0.01, weight_decay_exclude=['*bias']),
    dict(name='adamw', weight_decay=0, weight_decay_exclude=()),
    dict(name='lamb', weight_decay=0.1, eps=1e-6),
    dict(name='adafactor', weight_decay=1e-3, weight_decay_exclude=None),
    dict(name='momentum', weight_decay=0.1),
    dict(name='adam', weight_decay=0.0),
    dict(schedule='inverse_sqrt', warmup_steps=0),
    dict(schedule='exponential', decay_rate=0.5, transition_steps=None, staircase=True),
    dict(accumulate_steps=2, ema_decay=0.99),
    dict(ema_decay=None, accumulate_steps=np.int64(1)),
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


@pytest.mark.parametrize('name', ['adam', 'rmsprop'])
def test_weight_decay_is_refused_where_it_would_do_nothing(name):
  with pytest.raises(ValueError, match=re.escape(
      f"optim.weight_decay=0.01 is not applied by optim.name='{name}'; use one of")):
    optimizers.validate(cfg(name=name, weight_decay=0.01))
  optimizers.validate(cfg(name=name, weight_decay=0.0))


# Parameters named as the library's modules name them: a kernel, a bias, an embedding, a scale.
DECAY_PARAMS = {'dense': {'kernel': jnp.array([[0.5, -1.0], [2.0, 0.25]]), 'bias': jnp.array([1.0, -2.0])},
                'embed': {'embedding': jnp.array([[1.0, 3.0]])}, 'norm': {'scale': jnp.array([1.5, 0.5])}}
DECAYED = {'dense': {'kernel': True, 'bias': False}, 'embed': {'embedding': False},
           'norm': {'scale': False}}


def grads_at(step):
  return jax.tree_util.tree_map(lambda p: jnp.sin(jnp.arange(p.size, dtype=jnp.float32) + 3.0 * step
                                                   ).reshape(p.shape), DECAY_PARAMS)


def trained(config, steps, params=DECAY_PARAMS):
  tx = optimizers.from_config(config, total_steps=100)
  state = tx.init(params)
  for step in range(steps):
    updates, state = tx.update(grads_at(step), state, params)
    params = optax.apply_updates(params, updates)
  return jax.tree_util.tree_map(np.asarray, params)


def test_adamw_matches_a_hand_computed_step_and_decays_only_what_the_mask_allows():
  lr, wd, b1, b2, eps = 0.1, 0.5, 0.8, 0.9, 1e-8
  config = cfg(name='adamw', learning_rate=lr, weight_decay=wd, b1=b1, b2=b2, eps=eps)
  got = trained(config, 3)
  params = jax.tree_util.tree_map(lambda p: np.asarray(p, np.float64), DECAY_PARAMS)
  m = jax.tree_util.tree_map(np.zeros_like, params)
  v = jax.tree_util.tree_map(np.zeros_like, params)
  for step in range(3):
    g = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), grads_at(step))
    m = jax.tree_util.tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
    v = jax.tree_util.tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
    t = step + 1
    params = jax.tree_util.tree_map(
        lambda p, m, v, decayed: p - lr * ((m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
                                           + (wd * p if decayed else 0.0)),
        params, m, v, DECAYED)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, params)
  # Without decay, only the kernel moves differently.
  plain = trained(cfg(name='adamw', learning_rate=lr, weight_decay=0.0, b1=b1, b2=b2, eps=eps), 3)
  for module, name in [('dense', 'bias'), ('embed', 'embedding'), ('norm', 'scale')]:
    np.testing.assert_array_equal(got[module][name], plain[module][name])
  assert np.all(np.abs(got['dense']['kernel'] - plain['dense']['kernel']) > 1e-4)


def test_weight_decay_exclude_replaces_the_default():
  everything = trained(cfg(name='adamw', weight_decay=0.5, weight_decay_exclude=()), 1)
  plain = trained(cfg(name='adamw', weight_decay=0.0), 1)
  lr = 0.1        # the first Adam step is -lr · sign(g) (|g| ≫ eps); the decay adds -lr · wd · p
  jax.tree_util.tree_map(
      lambda e, a, p: np.testing.assert_allclose(e - a, -lr * 0.5 * np.asarray(p), rtol=1e-5),
      everything, plain, DECAY_PARAMS)
  only_bias = trained(cfg(name='adamw', weight_decay=0.5, weight_decay_exclude=('dense/*',)), 1)
  np.testing.assert_array_equal(only_bias['dense']['kernel'], plain['dense']['kernel'])
  assert not np.allclose(only_bias['norm']['scale'], plain['norm']['scale'])


@pytest.mark.parametrize('momentum', [None, 0.9])
def test_sgd_weight_decay_adds_decay_to_the_gradient_of_decayed_parameters(momentum):
  lr, wd = 0.1, 0.5
  name = 'sgd' if momentum is None else 'momentum'
  got = trained(cfg(name=name, learning_rate=lr, momentum=momentum, weight_decay=wd), 2)
  params = jax.tree_util.tree_map(lambda p: np.asarray(p, np.float64), DECAY_PARAMS)
  trace = jax.tree_util.tree_map(np.zeros_like, params)
  for step in range(2):
    g = jax.tree_util.tree_map(
        lambda g, p, decayed: np.asarray(g, np.float64) + (wd * p if decayed else 0.0),
        grads_at(step), params, DECAYED)
    trace = jax.tree_util.tree_map(lambda t, g: (momentum or 0.0) * t + g, trace, g)
    params = jax.tree_util.tree_map(lambda p, t: p - lr * t, params, trace)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, params)


@pytest.mark.parametrize('name', ['sgd', 'momentum', 'adam', 'rmsprop'])
def test_the_new_keys_at_their_defaults_keep_the_optimizer_state_of_earlier_versions(name):
  """So checkpoints written before these keys existed still restore."""
  params = {'w': jnp.ones(2)}
  earlier = optimizers.from_config(cfg(name=name), 10).init(params)
  now = optimizers.from_config(cfg(name=name, weight_decay=0.0, weight_decay_exclude=('*',),
                                   accumulate_steps=1, ema_decay=None), 10).init(params)
  assert jax.tree_util.tree_structure(now) == jax.tree_util.tree_structure(earlier)


def test_lamb_matches_a_hand_computed_first_step():
  lr, wd, eps = 0.1, 0.5, 1e-6
  got = trained(cfg(name='lamb', learning_rate=lr, weight_decay=wd, eps=eps), 1)

  def step(p, g, decayed):
    p, g = np.asarray(p, np.float64), np.asarray(g, np.float64)
    u = g / (np.abs(g) + eps) + (wd * p if decayed else 0.0)     # first Adam step: m̂ = g, v̂ = g²
    return p - lr * np.linalg.norm(p) / np.linalg.norm(u) * u    # layer-wise trust ratio
  want = jax.tree_util.tree_map(step, DECAY_PARAMS, grads_at(0), DECAYED)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), got, want)


def test_adafactor_decay_is_scaled_by_the_scheduled_learning_rate():
  """Same params at every update: the decayed run's updates differ by −lr_t · wd · p exactly."""
  def updates(weight_decay):
    config = cfg(name='adafactor', learning_rate=1.0, schedule='inverse_sqrt', warmup_steps=2,
                 weight_decay=weight_decay)
    tx = optimizers.from_config(config, total_steps=100)
    state, out = tx.init(DECAY_PARAMS), []
    for step in range(4):
      update, state = tx.update(grads_at(step), state, DECAY_PARAMS)
      out.append(jax.tree_util.tree_map(np.asarray, update))
    return out
  lrs = [0.0, 0.5, 1.0, np.sqrt(2 / 3)]
  for lr, decayed, plain in zip(lrs, updates(0.25), updates(0.0)):
    jax.tree_util.tree_map(
        lambda d, p, param, mask: np.testing.assert_allclose(
            d - p, -lr * 0.25 * np.asarray(param) if mask else 0.0, rtol=1e-5, atol=1e-7),
        decayed, plain, DECAY_PARAMS, DECAYED)


def abstract_params(model, *inputs):
  return jax.eval_shape(lambda: model.init(jax.random.key(0), *inputs, deterministic=True))['params']


def decayed_paths(params, config=None):
  mask = optimizers.decay_mask(config or cfg())(params)
  return {path for path, decayed in zip(optimizers.param_paths(params), jax.tree_util.tree_leaves(mask))
          if decayed}


def test_the_default_exclusions_leave_biases_norm_scales_and_embeddings_undecayed():
  from seqnets.models import factory
  from seqnets.tasks import DataInfo
  info = DataInfo(vocab_size=9, num_outputs=9)
  tokens, lengths = np.ones((2, 4), np.int32), np.array([4, 2], np.int32)
  lm = factory.from_config(ml_collections.ConfigDict(dict(
      name='recurrent_lm', embedding_size=4, tie_embeddings=True,
      cell=dict(name='lstm', hidden_size=4, layer_norm=True, use_peepholes=True))), info)
  params = abstract_params(lm, tokens, lengths)
  assert set(optimizers.param_paths(params)) - decayed_paths(params) == {
      'embed/embedding', 'layer0_cell/bias', 'layer0_cell/cell_norm_bias', 'layer0_cell/cell_norm_scale',
      'layer0_cell/input_norm_scale', 'layer0_cell/recurrent_norm_scale', 'output_bias'}
  assert decayed_paths(params) == {'layer0_cell/input_kernel', 'layer0_cell/recurrent_kernel',
                                   'layer0_cell/peephole_f', 'layer0_cell/peephole_i', 'layer0_cell/peephole_o'}
  transformer = factory.from_config(ml_collections.ConfigDict(dict(
      name='transformer_seq2seq', model_size=8, num_heads=2, num_layers=1, ff_size=16,
      positions='learned', max_positions=8)), info)
  params = abstract_params(transformer, tokens, lengths, tokens, lengths)
  paths = optimizers.param_paths(params)
  # Of a Transformer, the dense kernels alone are decayed (its LayerNorms, biases, token and
  # position embeddings are not).
  assert decayed_paths(params) == {p for p in paths if p.rsplit('/', 1)[1] == 'kernel'}
  assert {'encoder_norm/scale', 'decoder_layers_0/ff_norm/bias', 'source_positions/embedding',
          'target_embed/embedding'} <= set(paths) - decayed_paths(params)
  assert decayed_paths(params, cfg(weight_decay_exclude=())) == set(paths)


def test_decay_is_masked_inside_parameter_groups():
  """With freeze / learning_rate_factors each group's optimizer sees part of the tree; the
  mask still finds every parameter by its full path."""
  config = cfg(name='adamw', weight_decay=0.5, freeze=('embed/*',),
               learning_rate_factors=(('norm/*', 0.5),))
  got = trained(config, 1)
  plain = trained(cfg(name='adamw', weight_decay=0.0, freeze=('embed/*',),
                      learning_rate_factors=(('norm/*', 0.5),)), 1)
  np.testing.assert_array_equal(got['embed']['embedding'], DECAY_PARAMS['embed']['embedding'])
  np.testing.assert_array_equal(got['norm']['scale'], plain['norm']['scale'])
  np.testing.assert_array_equal(got['dense']['bias'], plain['dense']['bias'])
  np.testing.assert_allclose(got['dense']['kernel'] - plain['dense']['kernel'],
                             -0.1 * 0.5 * np.asarray(DECAY_PARAMS['dense']['kernel']), rtol=1e-5)


def schedule_values(steps, total=100, **kwargs):
  schedule = optimizers.make_schedule(cfg(**kwargs), total)
  return [float(schedule(step)) for step in steps]


def test_inverse_sqrt_schedule_values():
  # lr · min(1, t / w) · sqrt(w / max(t, w)): lr = 2, w = 4.
  np.testing.assert_allclose(
      schedule_values([0, 1, 2, 4, 9, 16, 100], schedule='inverse_sqrt', learning_rate=2.0, warmup_steps=4),
      [0.0, 0.5, 1.0, 2.0, 2 * np.sqrt(4 / 9), 1.0, 0.4], rtol=1e-6)
  # Without warm-up: lr / sqrt(max(t, 1)).
  np.testing.assert_allclose(
      schedule_values([0, 1, 4, 25], schedule='inverse_sqrt', learning_rate=2.0, warmup_steps=0),
      [2.0, 2.0, 1.0, 0.4], rtol=1e-6)


def test_exponential_schedule_values():
  kwargs = dict(schedule='exponential', learning_rate=1.0, decay_rate=0.5, transition_steps=10)
  np.testing.assert_allclose(schedule_values([0, 5, 10, 20, 25], **kwargs),
                             [1.0, 0.5 ** 0.5, 0.5, 0.25, 0.5 ** 2.5], rtol=1e-6)
  np.testing.assert_allclose(schedule_values([0, 5, 10, 19, 20], staircase=True, **kwargs),
                             [1.0, 1.0, 0.5, 0.5, 0.25], rtol=1e-6)
  np.testing.assert_allclose(schedule_values([0, 2, 4, 14], warmup_steps=4, **kwargs),
                             [0.0, 0.5, 1.0, 0.5], rtol=1e-6)
  np.testing.assert_allclose(schedule_values([0, 10, 30], end_learning_rate_factor=0.3, **kwargs),
                             [1.0, 0.5, 0.3], rtol=1e-6)
  # Default: decay_rate 0.1 over the updates after warm-up.
  np.testing.assert_allclose(schedule_values([4, 54, 104], total=104, schedule='exponential',
                                             learning_rate=1.0, warmup_steps=4),
                             [1.0, 0.1 ** 0.5, 0.1], rtol=1e-6)


def test_with_accumulation_the_schedule_counts_updates():
  """`total_steps` counts micro-batches: k = 4 over 40 of them is a cosine over 10 updates."""
  config = cfg(name='sgd', momentum=None, learning_rate=1.0, schedule='warmup_cosine', warmup_steps=0,
               accumulate_steps=4)
  tx = optimizers.from_config(config, total_steps=40)
  params = {'w': jnp.zeros(1)}
  state, moves = tx.init(params), []
  for _ in range(40):
    update, state = tx.update({'w': jnp.ones(1)}, state, params)
    moves.append(float(update['w'][0]))
  updates = [-m for m in moves if m != 0]
  assert moves[:3] == [0.0] * 3 and len(updates) == 10 and moves[3] != 0     # every 4th moves
  np.testing.assert_allclose(updates, [0.5 * (1 + np.cos(np.pi * t / 10)) for t in range(10)], rtol=1e-5)
