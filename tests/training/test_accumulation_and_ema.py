"""Gradient accumulation (`optim.accumulate_steps`) and the moving average of the parameters
(`optim.ema_decay`) in the train step: vmapped seeds, several devices, failed seeds,
checkpoints."""

import json
import os
import re
import signal
import types

import flax
import jax
import ml_collections
import numpy as np
import pytest
from flax import linen as nn

from configs import anbn
from seqnets.tasks import classification
from seqnets.training import checkpoints, loop, optimizers, parallel, saved_run, validation
from seqnets.training import state as state_lib

SEEDS = [0, 1, 2]
# A per-example mean loss (softmax cross-entropy over the rows with `valid` 1).
TASK = types.SimpleNamespace(model_inputs=lambda batch: ((batch['x'],), {}),
                             loss=classification.loss)


class Mlp(nn.Module):

  @nn.compact
  def __call__(self, x, *, deterministic):
    del deterministic
    return nn.Dense(3, name='output')(nn.tanh(nn.Dense(6, name='hidden')(x)))


def batches(size, count, seed=0):
  """`count` batches `[S, size, ...]`, different for every seed."""
  rng = np.random.default_rng(seed)
  return [{'x': rng.normal(size=(len(SEEDS), size, 5)).astype(np.float32),
           'labels': rng.integers(0, 3, (len(SEEDS), size)).astype(np.int32),
           'valid': np.ones((len(SEEDS), size), np.float32)} for _ in range(count)]


EXAMPLE = {k: v[0] for k, v in batches(4, 1)[0].items()}    # the shapes of one seed's batch


def split(batch, k):
  """A batch `[S, B, ...]` as k micro-batches `[S, B / k, ...]`, in order."""
  return [{key: np.split(value, k, axis=1)[i] for key, value in batch.items()} for i in range(k)]


def optim(**kwargs):
  return ml_collections.ConfigDict({
      **dict(name='adamw', learning_rate=0.05, weight_decay=0.1, clip_norm=0.5,
             schedule='exponential', decay_rate=0.5), **kwargs})


def states(config, stream, num_devices, total_steps, ema_decay=None):
  """The states (on the host) before and after each step of `jit(vmap(train_step))` over
  `stream` on `num_devices` devices."""
  optimizers.validate(config)
  tx = optimizers.from_config(config, total_steps)
  state = state_lib.create_seeds(Mlp(), tx, TASK, SEEDS, EXAMPLE, ema=ema_decay is not None)
  mesh = parallel.create_mesh(num_devices)
  state = parallel.place_state(state, mesh)
  step = parallel.make_train_step(Mlp(), tx, TASK, mesh, state, ema_decay)
  out = [jax.device_get(state)]
  for batch in stream:
    state, _ = step(state, parallel.shard_batch(batch, mesh))
    out.append(jax.device_get(state))
  return out


def train(config, stream, num_devices, total_steps, ema_decay=None):
  """The last of `states`."""
  return states(config, stream, num_devices, total_steps, ema_decay)[-1]


def assert_close(a, b, **tol):
  jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, **tol), a, b)


def test_k_micro_batches_end_where_one_step_on_their_concatenation_ends():
  """Batches of 16, split into 4 micro-batches of 4 (each padded to the 8 devices with empty
  rows): two updates either way, with clipping, decay, a schedule and a moving average."""
  assert jax.local_device_count() == 8
  whole = batches(16, 2)
  micro = [piece for batch in whole for piece in split(batch, 4)]
  one = train(optim(), whole, num_devices=1, total_steps=2, ema_decay=0.5)
  accumulated = train(optim(accumulate_steps=4), micro, num_devices=8, total_steps=8,
                      ema_decay=0.5)
  assert_close(accumulated.params, one.params, rtol=1e-5, atol=1e-6)
  assert_close(accumulated.ema_params, one.ema_params, rtol=1e-5, atol=1e-6)
  assert np.asarray(accumulated.step).tolist() == [8] * 3
  # The seeds saw different data, and the test is not vacuous: one micro-batch alone differs.
  kernel = accumulated.params['output']['kernel']
  assert not np.allclose(kernel[0], kernel[1])
  alone = train(optim(), [split(batch, 4)[0] for batch in whole], num_devices=1, total_steps=2)
  assert not np.allclose(alone.params['output']['kernel'], one.params['output']['kernel'], atol=1e-4)


def test_a_seed_that_fails_mid_accumulation_keeps_its_last_good_values():
  stream = batches(4, 4, seed=1)
  poisoned = [dict(batch) for batch in stream]
  poisoned[1] = {**stream[1], 'x': stream[1]['x'].copy()}
  poisoned[1]['x'][1, 0, 0] = np.nan                 # seed index 1, micro-step 2 of the first update
  clean = train(optim(accumulate_steps=2), stream, num_devices=1, total_steps=4, ema_decay=0.9)
  hurt = train(optim(accumulate_steps=2), poisoned, num_devices=1, total_steps=4, ema_decay=0.9)
  assert np.asarray(hurt.failed_step).tolist() == [-1, 2, -1]
  initial = train(optim(accumulate_steps=2), [], num_devices=1, total_steps=4, ema_decay=0.9)
  pick = lambda tree, i: jax.tree_util.tree_map(lambda a: a[i], tree)
  for tree in ('params', 'ema_params'):
    assert_close(pick(getattr(hurt, tree), 1), pick(getattr(initial, tree), 1), rtol=0, atol=0)
    for index in (0, 2):
      assert_close(pick(getattr(hurt, tree), index), pick(getattr(clean, tree), index),
                   rtol=1e-6, atol=1e-7)
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(hurt))


@pytest.mark.parametrize('accumulate_steps', [1, 3])
def test_the_moving_average_follows_the_parameters_of_every_update(accumulate_steps):
  """ema ← d · ema + (1 − d) · params after every update, from the initial params (NumPy)."""
  config = optim(name='momentum', momentum=0.5, learning_rate=0.3, weight_decay=0.0,
                 clip_norm=0.0, schedule='constant', accumulate_steps=accumulate_steps)
  stream = batches(4, 4 * accumulate_steps, seed=2)
  decay = 0.7
  trajectory = states(config, stream, 1, len(stream), ema_decay=decay)
  sequence = [state.params for state in trajectory[::accumulate_steps]]   # after each update
  want = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), sequence[0])
  for params in sequence[1:]:
    want = jax.tree_util.tree_map(lambda e, p: decay * e + (1 - decay) * p, want, params)
  got = trajectory[-1]
  assert_close(got.ema_params, want, rtol=1e-5, atol=1e-6)
  assert_close(got.params, sequence[-1], rtol=0, atol=0)
  assert not np.allclose(got.ema_params['output']['kernel'], got.params['output']['kernel'])


def test_a_state_without_a_moving_average_has_the_checkpoint_layout_of_earlier_versions(tmp_path):
  config = optim(accumulate_steps=2)
  without = train(config, batches(4, 1), 1, 4)
  assert set(flax.serialization.to_state_dict(without)) == {
      'step', 'params', 'opt_state', 'rng', 'model_state', 'failed_step'}
  with_ema = train(config, batches(4, 3), 1, 4, ema_decay=0.9)
  ckpt = checkpoints.Checkpointer(tmp_path / 'checkpoints')
  ckpt.save(3, with_ema, {})
  template = train(config, [], 1, 4, ema_decay=0.9)
  restored = ckpt.restore_latest(template)
  ckpt.close()
  assert_close(restored, with_ema, rtol=0, atol=0)
  state_dict, _ = checkpoints.Checkpointer(tmp_path / 'checkpoints').restore_state_dict()
  assert_close(state_dict['ema_params'], with_ema.ema_params, rtol=0, atol=0)


def test_the_train_step_refuses_a_decay_without_a_moving_average_and_the_reverse():
  config = optim()
  tx = optimizers.from_config(config, 2)
  stream = batches(4, 1)
  for ema, decay in ((False, 0.9), (True, None)):
    state = state_lib.create_seeds(Mlp(), tx, TASK, SEEDS, EXAMPLE, ema=ema)
    mesh = parallel.create_mesh(1)
    step = parallel.make_train_step(Mlp(), tx, TASK, mesh, state, decay)
    with pytest.raises(ValueError, match='ema_decay'):
      step(parallel.place_state(state, mesh), parallel.shard_batch(stream[0], mesh))


def run_config(**optim_keys):
  config = anbn.get_config('smoke')
  config.train.update(num_train_steps=12, log_every_steps=4, checkpoint_every_steps=6)
  config.evals.train_range.every_steps = 6
  config.data.test_n = (1, 12)
  config.optim.update(optim_keys)
  return config


def test_a_run_with_accumulation_and_a_moving_average_resumes_exactly_and_evaluates_the_average(
    tmp_path):
  config = run_config(accumulate_steps=2, ema_decay=0.8)
  straight = loop.train_and_evaluate(config, tmp_path / 'straight')

  def sigterm_at_step_7(step, state):       # between the two micro-batches of an update
    if step == 7:
      os.kill(os.getpid(), signal.SIGTERM)

  assert loop.train_and_evaluate(config, tmp_path / 'resumed', hooks=[sigterm_at_step_7]).step == 7
  resumed = loop.train_and_evaluate(config, tmp_path / 'resumed')
  assert resumed.step == 12
  assert_close(resumed.state.params, straight.state.params, rtol=0, atol=0)
  assert_close(resumed.state.ema_params, straight.state.ema_params, rtol=0, atol=0)
  assert not np.allclose(straight.state.ema_params['output']['kernel'],
                         straight.state.params['output']['kernel'])
  assert json.loads((tmp_path / 'straight' / 'results.json').read_text())[
      'evaluated_params'] == 'ema_params'
  run = saved_run.load_run(tmp_path / 'straight')
  assert run.evaluated_params == 'ema_params'
  assert_close(run.params, straight.state.ema_params, rtol=0, atol=0)
  evaluated = run.evaluate()
  for key, value in straight.final[0].items():
    if key.startswith('eval/test_range/') and isinstance(value, float):
      assert evaluated[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize('optim_keys,message', [
    (dict(accumulate_steps=5), 'config.train.num_train_steps=12 must be a multiple of '
                               'config.optim.accumulate_steps=5'),
    (dict(ema_decay=1.0), 'config.optim.ema_decay must be a finite number in [0, 1)'),
    (dict(weight_decay=0.1), "config.optim.weight_decay=0.1 is not applied by optim.name='adam'"),
])
def test_bad_accumulation_and_decay_settings_fail_before_anything_runs(tmp_path, optim_keys, message):
  with pytest.raises(validation.ConfigError, match=f'^{re.escape(message)}'):
    loop.train_and_evaluate(run_config(**optim_keys), tmp_path / 'run')
  assert not (tmp_path / 'run').exists()
