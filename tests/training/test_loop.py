"""train_and_evaluate end to end: files, resume, devices, seeds, NaN, config errors."""

import json
import os
import signal
import threading

import jax
import numpy as np
import pytest

from configs import anbn
from seqnets.models import factory as model_factory
from seqnets.tasks import factory as task_factory
from seqnets.training import checkpoints, loop, metrics, optimizers, parallel, validation, writers
from seqnets.training import state as state_lib


def small_config(**train):
  config = anbn.get_config('smoke')
  config.train.update({**dict(num_train_steps=12, log_every_steps=4, checkpoint_every_steps=6), **train})
  config.evals.train_range.every_steps = 6
  config.data.test_n = (1, 12)
  return config


def params_of(result, seed_index=0):
  return jax.tree_util.tree_map(lambda a: np.asarray(a[seed_index]), result.state.params)


def assert_trees_equal(a, b, **tol):
  jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, **tol), a, b)


def test_smoke_run_writes_config_metrics_checkpoint_results(tmp_path):
  result = loop.train_and_evaluate(small_config(), tmp_path)
  assert result.step == 12 and not result.interrupted
  assert json.loads((tmp_path / 'config.json').read_text())['model']['cell'] == dict(name='lstm',
                                                                               hidden_size=4)
  records = writers.read_metrics(tmp_path)
  train_steps = [r['step'] for r in records if 'train/loss' in r]
  assert train_steps == [4, 8, 12]
  assert any('eval/train_range/accuracy' in r and r['step'] == 6 for r in records)
  final = [r for r in records if r.get('final')]
  assert len(final) == 1 and set(final[0]['eval/test_range/accuracy_by_n']) == {str(n) for n in range(1, 13)}
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['12', '6']
  results = json.loads((tmp_path / 'results.json').read_text())
  assert results['runs'][0]['seed'] == 0
  assert results['runs'][0]['eval/test_range/max_correct_n'] == final[0]['eval/test_range/max_correct_n']
  assert (tmp_path / 'tensorboard').is_dir()
  config = checkpoints.Checkpointer(tmp_path / 'checkpoints').restore_config()
  assert config['model']['cell']['hidden_size'] == 4


def test_logged_train_metrics_equal_the_per_step_sums_merged_on_the_host(tmp_path):
  """The loop adds each step's Sums into its window on the devices; the lines it logs equal
  those of the plain step's Sums merged on the host (as the loop once did), to the bit."""
  config = small_config(num_train_steps=9, log_every_steps=4, checkpoint_every_steps=None)
  config.data.update(full_batch=False, batch_size=6)
  config.num_seeds = 2
  config.evals.train_range.every_steps = 0
  loop.train_and_evaluate(config, tmp_path)
  logged = [r for r in writers.read_metrics(tmp_path) if 'train/loss' in r]

  task = task_factory.get(config.task)
  data = task.build_data(config.data)
  model = model_factory.from_config(config.model, data.info)
  tx = optimizers.from_config(config.optim, 9)
  mesh = parallel.create_mesh()
  state = parallel.place_state(
      state_lib.create_seeds(model, tx, task, [0, 1], next(data.train_batches(0, 0))), mesh)
  step = parallel.make_train_step(model, tx, task, mesh, state)
  expected, window = [], None
  batches = loop._host_batches([data.train_batches(seed, 0) for seed in (0, 1)], 9)
  for done, batch in enumerate(batches, 1):
    state, sums = step(state, parallel.shard_batch(batch, mesh))
    sums = jax.device_get(sums)
    window = sums if window is None else {k: window[k] + sums[k] for k in window}
    if done % 4 == 0 or done == 9:
      means = metrics.compute(window)
      expected += [{'step': done, 'seed': seed, **writers.to_json_value(
          {f'train/{k}': v[seed] for k, v in means.items()})} for seed in (0, 1)]
      window = None
  assert [r['step'] for r in logged] == [4, 4, 8, 8, 9, 9]
  assert logged == json.loads(json.dumps(expected))


def test_training_fits_the_training_range(tmp_path):
  """Overfitting the fixed full batch of n = 1..4 drives every string to exactly right."""
  config = small_config(num_train_steps=400, log_every_steps=400, checkpoint_every_steps=400)
  config.data.train_n = (1, 4)
  config.model.cell.hidden_size = 8
  result = loop.train_and_evaluate(config, tmp_path)
  assert result.final[0]['eval/train_range/accuracy'] == 1.0
  assert result.final[0]['eval/train_range/loss'] < 0.05


def test_one_step_changes_every_parameter(tmp_path):
  config = small_config(num_train_steps=1)
  config.model.cell.use_peepholes = True
  result = loop.train_and_evaluate(config, tmp_path / 'one')
  task = task_factory.get(config.task)
  data = task.build_data(config.data)
  model = model_factory.from_config(config.model, data.info)
  tx = optimizers.from_config(config.optim, 1)
  initial = state_lib.create_seeds(model, tx, task, [config.seed], next(data.train_batches(0, 0)))
  initial_params = jax.tree_util.tree_map(lambda a: np.asarray(a[0]), initial.params)
  after = params_of(result)
  cell = 'layer0_cell'
  # One-hot inputs: the kernel rows of PAD (id 0) and T (id 4, never an input) get no gradient.
  np.testing.assert_array_equal(after[cell]['input_kernel'][[0, 4]], initial_params[cell]['input_kernel'][[0, 4]])
  changed = jax.tree_util.tree_map(lambda a, b: np.any(a != b), after, initial_params)
  assert all(jax.tree_util.tree_leaves(changed)), changed


def test_resumed_run_equals_uninterrupted_run(tmp_path):
  straight = loop.train_and_evaluate(small_config(), tmp_path / 'straight')

  def sigterm_at_step_7(step, state):
    if step == 7:
      os.kill(os.getpid(), signal.SIGTERM)

  stopped = loop.train_and_evaluate(small_config(), tmp_path / 'resumed', hooks=[sigterm_at_step_7])
  assert stopped.interrupted and stopped.step == 7
  assert not [t for t in threading.enumerate() if t.name == 'seqnets-prefetch']
  assert '7' in os.listdir(tmp_path / 'resumed' / 'checkpoints')
  resumed = loop.train_and_evaluate(small_config(), tmp_path / 'resumed')
  assert resumed.step == 12 and not resumed.interrupted
  assert_trees_equal(params_of(resumed), params_of(straight), rtol=0, atol=0)
  # Same logged records, except the window that spans the stop (step 8 averages step 8 only).
  strip = lambda recs: [r for r in recs if 'train/loss' in r and r['step'] != 8]
  assert strip(writers.read_metrics(tmp_path / 'resumed')) == strip(writers.read_metrics(tmp_path / 'straight'))
  assert [r['step'] for r in writers.read_metrics(tmp_path / 'resumed')] == [
      r['step'] for r in writers.read_metrics(tmp_path / 'straight')]


def test_eight_devices_give_what_one_gives(tmp_path):
  assert jax.local_device_count() == 8
  config = small_config()
  config.data.update(full_batch=False, batch_size=16)
  one = loop.train_and_evaluate(config, tmp_path / 'one', num_devices=1)
  eight = loop.train_and_evaluate(config, tmp_path / 'eight', num_devices=8)
  assert_trees_equal(params_of(eight), params_of(one), rtol=1e-5, atol=1e-6)
  # A batch of 10 (not a multiple of 8) is padded with empty rows that change nothing.
  full = small_config()
  one = loop.train_and_evaluate(full, tmp_path / 'full1', num_devices=1)
  eight = loop.train_and_evaluate(full, tmp_path / 'full8', num_devices=8)
  assert_trees_equal(params_of(eight), params_of(one), rtol=1e-5, atol=1e-6)
  assert one.final[0]['eval/test_range/loss'] == pytest.approx(eight.final[0]['eval/test_range/loss'], rel=1e-5)


def test_vmapped_seeds_equal_separate_runs(tmp_path):
  config = small_config()
  config.data.update(full_batch=False, batch_size=6)  # seeds see different data
  config.num_seeds = 2
  both = loop.train_and_evaluate(config, tmp_path / 'both')
  for index in range(2):
    single = small_config()
    single.data.update(full_batch=False, batch_size=6)
    single.seed = index
    alone = loop.train_and_evaluate(single, tmp_path / f'seed{index}')
    assert_trees_equal(params_of(both, index), params_of(alone), rtol=1e-5, atol=1e-6)
  assert not np.allclose(params_of(both, 0)['output']['kernel'], params_of(both, 1)['output']['kernel'])


def test_nan_loss_stops_with_its_step_and_keeps_last_good_checkpoint(tmp_path):
  config = small_config(num_train_steps=30, checkpoint_every_steps=2, log_every_steps=1)
  config.model.cell = dict(name='elman', hidden_size=4, activation='relu')
  config.optim.update(name='sgd', learning_rate=1e5, warmup_steps=30, clip_norm=0.0)  # NaN at step 3
  with pytest.raises(FloatingPointError, match=r'step (\d+)') as error:
    loop.train_and_evaluate(config, tmp_path)
  bad_step = int(error.value.args[0].split('step ')[1].split(' ')[0])
  ckpt = checkpoints.Checkpointer(tmp_path / 'checkpoints')
  last = ckpt.latest_step()
  assert last is not None and last < bad_step
  restored = ckpt.manager.restore(last)
  leaves = jax.tree_util.tree_leaves(restored['state']['params'])
  assert leaves and all(np.all(np.isfinite(l)) for l in leaves)


@pytest.mark.parametrize('path,value,message', [
    ('model.cell.name', 'transformer', 'model.cell.name'),
    ('model.cell.hidden_size', 0, 'model.cell.hidden_size'),
    ('model.cell.hidden_size', -3, 'model.cell.hidden_size'),
    # A key that nothing reads, in every section: a misspelling never trains in silence.
    ('model.dropout', 0.5, 'model.dropout is not a setting'),
    ('model.cell.reset_after', True, "model.cell.reset_after is not a setting of the 'lstm' cell"),
    ('data.batch_sise', 4, 'data.batch_sise is not a setting'),
    ('optim.learning_rat', 0.1, 'optim.learning_rat is not a setting'),
    ('train.num_steps', 10, 'train.num_steps is not a setting'),
    ('evals.test_range.every_step', 1, 'evals.test_range.every_step is not a setting'),
    ('seeds', 3, 'config.seeds is not a setting'),
    ('data.test_n', (5, 100), 'data.test_n'),
    ('data.train_n', (0, 10), 'data.train_n'),
    ('data.language', 'dyck', 'data.language'),
    ('optim.name', 'adamw2', 'optim.name'),
    ('optim.learning_rate', -1.0, 'optim.learning_rate'),
    ('train.num_train_steps', 0, 'train.num_train_steps'),
    ('num_seeds', 0, 'num_seeds'),
])
def test_bad_config_fails_before_anything_runs(tmp_path, path, value, message):
  config = small_config()
  *sections, leaf = path.split('.')
  node = config
  for section in sections:
    node = node[section]
  node[leaf] = value
  with pytest.raises(validation.ConfigError, match=message.replace('.', r'\.')):
    loop.train_and_evaluate(config, tmp_path / 'run')
  assert not (tmp_path / 'run').exists()
