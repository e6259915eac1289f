"""Model state (variables other than 'params') through training, checkpoints, resume and devices.

Two kinds: batch statistics (`ImageCNN(batch_norm=True)`, collection
'batch_stats', replicated) and a per-example carry (collection 'carry',
`[S, B, ...]` sharded along B like the batch).
"""

import os
import signal

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import linen as nn
from jax.sharding import PartitionSpec as P

from configs import digits_cnn
from seqnets.data import digits
from seqnets.layers.conv import Conv
from seqnets.models import ImageCNN
from seqnets.models import factory as model_factory
from seqnets.tasks import DataInfo
from seqnets.tasks import base
from seqnets.training import checkpoints, loop, parallel, saved_run, validation
from seqnets.training import state as state_lib


def bn_config():
  config = digits_cnn.get_config('smoke')
  config.model.batch_norm = True
  return config


def seed0(tree):
  return jax.tree_util.tree_map(lambda a: np.asarray(a[0]), tree)


def assert_trees_equal(a, b, **tol):
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, **tol), a, b)


@pytest.fixture(scope='module')
def bn_run(tmp_path_factory):
  """A finished `digits_cnn.py:smoke` run with batch normalisation, on all 8 devices."""
  workdir = tmp_path_factory.mktemp('bn') / 'run'
  return workdir, loop.train_and_evaluate(bn_config(), workdir)


# ImageCNN and its config.

IMAGES = jnp.asarray(np.random.default_rng(0).normal(size=(6, 8, 8, 1)), jnp.float32)


def test_batch_norm_off_by_default_leaves_the_variables_unchanged():
  plain = ImageCNN(features=(4, 8), num_classes=3)
  variables = plain.init(jax.random.key(0), IMAGES)
  assert set(variables) == {'params'} and sorted(variables['params']) == ['conv0', 'conv1', 'head']
  cfg = ml_collections.ConfigDict(dict(name='image_cnn', features=(4, 8)))
  built = model_factory.from_config(cfg, DataInfo(vocab_size=0, num_outputs=3))
  assert built.batch_norm is False
  bn = ImageCNN(features=(4, 8), num_classes=3, batch_norm=True).init(jax.random.key(0), IMAGES)
  assert sorted(bn['params']) == ['bn0', 'bn1', 'conv0', 'conv1', 'head']
  assert sorted(bn['params']['conv0']) == ['kernel'] and sorted(variables['params']['conv0']) == [
      'bias', 'kernel']
  assert jax.tree_util.tree_map(np.shape, bn['batch_stats']) == {
      'bn0': {'mean': (4,), 'var': (4,)}, 'bn1': {'mean': (8,), 'var': (8,)}}


def test_batch_norm_normalises_with_batch_statistics_in_training_only():
  """Training: BN(x) = γ (x − μ_batch) / √(σ²_batch + 1e−5) + β and m ← 0.9 m + 0.1 μ,
  v ← 0.9 v + 0.1 σ² (μ, σ² over B·H·W per channel); evaluation uses m, v."""
  model = ImageCNN(features=(4,), num_classes=3, batch_norm=True, pool_kind=None)
  variables = model.init(jax.random.key(0), IMAGES)
  rng = np.random.default_rng(1)
  params = jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(size=a.shape), jnp.float32),
                                  variables['params'])
  conv = Conv(4, (3, 3), padding='SAME', use_bias=False).apply({'params': params['conv0']}, IMAGES)
  conv = np.asarray(conv)                                                          # [B, 8, 8, 4]
  mean, var = conv.mean((0, 1, 2)), conv.var((0, 1, 2))
  bn = params['bn0']
  head = lambda h: np.asarray(nn.Dense(3).apply({'params': params['head']['Dense_0']},
                                                h.reshape(len(h), -1)))

  logits, updates = model.apply({'params': params, 'batch_stats': variables['batch_stats']}, IMAGES,
                                deterministic=False, mutable=['batch_stats'])
  expected = head(np.maximum((conv - mean) / np.sqrt(var + 1e-5) * bn['scale'] + bn['bias'], 0))
  np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(updates['batch_stats']['bn0']['mean'], 0.1 * mean, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(updates['batch_stats']['bn0']['var'], 0.9 + 0.1 * var, rtol=1e-5, atol=1e-6)

  stats = updates['batch_stats']['bn0']
  evaluation = model.apply({'params': params, **updates}, IMAGES)
  running = (conv - np.asarray(stats['mean'])) / np.sqrt(np.asarray(stats['var']) + 1e-5)
  np.testing.assert_allclose(evaluation, head(np.maximum(running * bn['scale'] + bn['bias'], 0)),
                             rtol=1e-4, atol=1e-4)


def test_padding_rows_marked_invalid_leave_the_batch_statistics_alone():
  model = ImageCNN(features=(4,), num_classes=3, batch_norm=True)
  variables = model.init(jax.random.key(0), IMAGES)
  padded = jnp.concatenate([IMAGES, jnp.zeros((2, *IMAGES.shape[1:]))])           # [8, 8, 8, 1]
  valid = np.array([1] * len(IMAGES) + [0, 0], np.float32)
  train = lambda images, **kw: model.apply(variables, images, deterministic=False,
                                           mutable=['batch_stats'], **kw)
  logits, stats = train(IMAGES)
  padded_logits, padded_stats = train(padded, valid=valid)
  np.testing.assert_allclose(padded_logits[:len(IMAGES)], logits, rtol=1e-5, atol=1e-5)
  assert_trees_equal(padded_stats, stats, rtol=1e-5, atol=1e-6)
  _, unmasked_stats = train(padded)
  unmasked, masked = unmasked_stats['batch_stats']['bn0'], stats['batch_stats']['bn0']
  assert not np.allclose(unmasked['mean'], masked['mean'])


@pytest.mark.parametrize('value', [1, 'yes', None])
def test_batch_norm_config_must_be_a_bool(tmp_path, value):
  config = digits_cnn.get_config('smoke')
  config.model.batch_norm = value
  with pytest.raises(validation.ConfigError, match='model.batch_norm must be True or False'):
    loop.train_and_evaluate(config, tmp_path / 'run')
  assert not (tmp_path / 'run').exists()


# Batch statistics through the training harness.

def test_batch_stats_are_trained_model_state_with_a_seed_axis(bn_run):
  _, result = bn_run
  stats = result.state.model_state['batch_stats']
  assert jax.tree_util.tree_map(np.shape, stats) == {'bn0': {'mean': (1, 4), 'var': (1, 4)}}
  mean, var = np.asarray(stats['bn0']['mean']), np.asarray(stats['bn0']['var'])
  assert np.all(mean != 0) and np.all(var != 1)
  assert stats['bn0']['mean'].sharding.spec == P()              # replicated, like the params
  assert 'bn0' in result.state.params


def test_checkpoint_holds_the_batch_stats(bn_run):
  workdir, result = bn_run
  ckpt = checkpoints.Checkpointer(workdir / 'checkpoints')
  try:
    saved, step = ckpt.restore_state_dict()
  finally:
    ckpt.close()
  assert step == 6
  assert_trees_equal(jax.tree_util.tree_map(np.asarray, saved['model_state']),
                     jax.tree_util.tree_map(np.asarray, result.state.model_state), rtol=0, atol=0)


def test_resumed_run_has_the_params_and_batch_stats_of_an_uninterrupted_one(bn_run, tmp_path):
  _, straight = bn_run

  def sigterm_at_step_4(step, state):
    if step == 4:
      os.kill(os.getpid(), signal.SIGTERM)

  stopped = loop.train_and_evaluate(bn_config(), tmp_path / 'resumed', hooks=[sigterm_at_step_4])
  assert stopped.interrupted and stopped.step == 4
  resumed = loop.train_and_evaluate(bn_config(), tmp_path / 'resumed')
  assert resumed.step == 6 and not resumed.interrupted
  assert_trees_equal(seed0(resumed.state.params), seed0(straight.state.params), rtol=0, atol=0)
  assert_trees_equal(seed0(resumed.state.model_state), seed0(straight.state.model_state),
                     rtol=0, atol=0)


def test_eight_devices_give_the_params_and_batch_stats_of_one(bn_run, tmp_path):
  _, eight = bn_run
  assert jax.local_device_count() == 8 and bn_config().data.batch_size % 8 == 0
  one = loop.train_and_evaluate(bn_config(), tmp_path / 'one', num_devices=1)
  assert_trees_equal(seed0(eight.state.params), seed0(one.state.params), rtol=1e-5, atol=1e-5)
  assert_trees_equal(seed0(eight.state.model_state), seed0(one.state.model_state),
                     rtol=1e-5, atol=1e-5)


def test_batch_stats_ignore_the_rows_that_fill_the_devices(tmp_path):
  config = bn_config()
  config.data.batch_size = 60
  config.train.update(num_train_steps=2, log_every_steps=1, checkpoint_every_steps=2)
  config.evals.test.every_steps = 0
  one = loop.train_and_evaluate(config, tmp_path / 'one', num_devices=1)
  eight = loop.train_and_evaluate(config, tmp_path / 'eight', num_devices=8)
  assert_trees_equal(seed0(eight.state.model_state), seed0(one.state.model_state),
                     rtol=1e-5, atol=1e-5)


def test_evaluation_uses_the_running_averages(bn_run):
  workdir, result = bn_run
  run = saved_run.load_run(workdir)
  _, test = digits.load_split(0.2, 0)
  batch = run.encode({'inputs': test['images'][:8], 'labels': test['labels'][:8]})
  alone = {k: v[:1] for k, v in batch.items()}
  logits = np.asarray(run.apply(batch))
  np.testing.assert_allclose(np.asarray(run.apply(batch)), logits, rtol=0, atol=0)
  np.testing.assert_allclose(np.asarray(run.apply(alone))[0], logits[0], rtol=1e-5, atol=1e-6)

  params, stats = seed0(result.state.params), seed0(result.state.model_state)
  variables = {'params': params, **stats}
  np.testing.assert_allclose(logits, run.model.apply(variables, batch['inputs']),
                             rtol=1e-5, atol=1e-6)
  # Batch statistics would make example 0 depend on its batch; the initial (0, 1) stats differ.
  no_dropout = run.model.clone(dropout_rate=0.0, spatial_dropout_rate=0.0)
  train_alone, _ = no_dropout.apply(variables, alone['inputs'], deterministic=False,
                                    mutable=['batch_stats'])
  train_batch, _ = no_dropout.apply(variables, batch['inputs'], deterministic=False,
                                    mutable=['batch_stats'])
  assert not np.allclose(train_alone[0], train_batch[0], atol=1e-3)
  initial = {'params': params,
             'batch_stats': {'bn0': {'mean': np.zeros(4, np.float32), 'var': np.ones(4, np.float32)}}}
  assert not np.allclose(run.model.apply(initial, batch['inputs']), logits, atol=1e-3)
  evaluated = run.evaluate()
  for metric in ('accuracy', 'loss'):
    assert evaluated[f'eval/test/{metric}'] == pytest.approx(result.final[0][f'eval/test/{metric}'],
                                                              rel=1e-6, abs=1e-6)


# A per-example carry, sharded along the batch.

B, F, H, O = 16, 5, 3, 2


class CarryModel(nn.Module):
  """`h ← ½ h + tanh(x[:, :H])` kept across calls in 'carry' `[B, H]`; outputs `Dense(h)` `[B, O]`."""
  batch_size: int

  @nn.compact
  def __call__(self, x, *, deterministic=True):
    del deterministic
    h = self.variable('carry', 'h', jnp.zeros, (self.batch_size, H))
    new = 0.5 * h.value + jnp.tanh(x[:, :H])
    if not self.is_initializing() and self.is_mutable_collection('carry'):
      h.value = new
    return nn.Dense(O)(new)


def _carry_loss(outputs, batch):
  valid = batch['valid']
  loss_sum = jnp.sum(((outputs - batch['targets']) ** 2).sum(-1) * valid)
  return loss_sum / jnp.maximum(valid.sum(), 1), {'loss_sum': loss_sum, 'example_count': valid.sum()}


CARRY_TASK = base.Task(
    name='carry_test', data_keys=(), validate=lambda cfg: None, build_data=None, loss=_carry_loss,
    example_correct=lambda outputs, batch: jnp.ones(len(outputs), bool), read_file=None,
    encode=None, evaluator_types=('metrics',), reported_metrics=lambda config: (),
    model_inputs=lambda batch: ((batch['inputs'],), {}))


def carry_batches(num_seeds, steps, batch_size=B):
  """`[S, B, ...]` host batches, different for every seed and step."""
  rng = np.random.default_rng(0)
  shape = (num_seeds, batch_size)
  return [{'inputs': rng.normal(size=(*shape, F)).astype(np.float32),
           'targets': rng.normal(size=(*shape, O)).astype(np.float32),
           'valid': np.ones(shape, np.float32)} for _ in range(steps)]


def train_carry(num_devices, batches):
  num_seeds, batch_size = batches[0]['valid'].shape
  model, tx = CarryModel(batch_size), optax.sgd(0.1)
  mesh = parallel.create_mesh(num_devices)
  first = {k: v[0] for k, v in batches[0].items()}
  state = state_lib.create_seeds(model, tx, CARRY_TASK, range(num_seeds), first)
  state = parallel.place_state(state, mesh)
  step = parallel.make_train_step(model, tx, CARRY_TASK, mesh, state)
  for batch in batches:
    state, _ = step(state, parallel.shard_batch(batch, mesh))
  return state


def test_per_example_carry_moves_on_is_sharded_and_device_count_free():
  batches = carry_batches(num_seeds=2, steps=3)
  eight = train_carry(8, batches)
  h = eight.model_state['carry']['h']
  assert h.shape == (2, B, H)
  assert h.sharding.spec == P(None, 'data')
  assert {shard.data.shape for shard in h.addressable_shards} == {(2, B // 8, H)}
  expected = np.zeros((2, B, H))
  for batch in batches:
    expected = 0.5 * expected + np.tanh(batch['inputs'][..., :H])
  np.testing.assert_allclose(np.asarray(h), expected, rtol=1e-6, atol=1e-6)
  assert parallel.shared_model_state(eight.model_state) == {}      # evaluation sees no carry

  one = train_carry(1, batches)
  assert_trees_equal(jax.device_get(eight.model_state), jax.device_get(one.model_state),
                     rtol=1e-6, atol=1e-6)
  assert_trees_equal(jax.device_get(eight.params), jax.device_get(one.params), rtol=1e-5, atol=1e-6)
  trained = train_carry(1, batches[:1])
  assert not np.allclose(jax.device_get(trained.params)['Dense_0']['kernel'],
                         jax.device_get(one.params)['Dense_0']['kernel'])   # the params train too


def test_per_example_carry_with_a_batch_not_divisible_by_the_devices_is_refused():
  batches = carry_batches(num_seeds=1, steps=2, batch_size=10)
  with pytest.raises(ValueError, match="model state 'carry' holds 10 examples, which 8 devices"):
    train_carry(8, batches)
