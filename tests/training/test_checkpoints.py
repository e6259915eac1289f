"""Checkpointer: damaged newest step → fallback with a warning, unfinished saves, re-saving."""

import logging
import os
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn

from seqnets.training import checkpoints
from seqnets.training import state as state_lib

SEEDS = [0, 1]


def fresh_state():
  """A TrainState as training builds it (params, Adam state, key data), for 2 seeds."""
  model, tx = nn.Dense(3), optax.adam(1e-3)

  def create(key):
    init_key, key = jax.random.split(key)
    params = model.init(init_key, jnp.zeros((2, 4)))['params']
    return state_lib.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                                opt_state=tx.init(params), rng=jax.random.key_data(key))

  return jax.vmap(create)(jax.vmap(jax.random.key)(jnp.asarray(SEEDS)))


def state_at(step):
  """A state that differs per step: step counter and params shifted by `step`."""
  state = fresh_state()
  return state.replace(step=jnp.full((len(SEEDS),), step, jnp.int32),
                       params=jax.tree_util.tree_map(lambda a: a + step, state.params))


def assert_trees_equal(a, b):
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  jax.tree_util.tree_map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def write_steps(directory, steps):
  ckpt = checkpoints.Checkpointer(directory, max_to_keep=5)
  for step in steps:
    ckpt.save(step, state_at(step), {'step_of_config': step})
  ckpt.close()


def files_under(path):
  return sorted(str(p.relative_to(path)) for p in pathlib.Path(path).rglob('*') if p.is_file())


def remove_array_data(step_dir):
  for f in (step_dir / 'state' / 'd').iterdir():
    f.unlink()


def truncate(path):
  path.write_bytes(b'')


DAMAGES = {
    'array data deleted': remove_array_data,
    'ocdbt manifest truncated': lambda d: truncate(d / 'state' / 'manifest.ocdbt'),
    'state metadata truncated': lambda d: truncate(d / 'state' / '_METADATA'),
    'state item deleted': lambda d: shutil.rmtree(d / 'state'),
    'step directory emptied': lambda d: [shutil.rmtree(d), d.mkdir()],
}


def absl_warnings(caplog):
  """Warnings logged by `checkpoints` (orbax logs its own through absl too)."""
  return [r.getMessage() for r in caplog.records
          if r.levelno == logging.WARNING and r.pathname == checkpoints.__file__]


@pytest.mark.parametrize('damage', list(DAMAGES))
def test_damaged_newest_step_falls_back_to_older_with_warning(tmp_path, caplog, damage):
  directory = tmp_path / 'checkpoints'
  write_steps(directory, [3, 6])
  DAMAGES[damage](directory / '6')
  damaged_files = files_under(directory / '6')
  ckpt = checkpoints.Checkpointer(directory)
  with caplog.at_level(logging.WARNING):
    state, step = ckpt.restore_latest_with_step(fresh_state())
  assert step == 3 and ckpt.latest_step() == 6 and ckpt.unrestorable_steps == [6]
  assert_trees_equal(state, state_at(3))
  [message] = absl_warnings(caplog)
  assert str(directory / '6') in message and 'falling back to step 3' in message
  assert 'Error' in message  # the error's type, e.g. ValueError (tensorstore) or KeyError
  assert files_under(directory / '6') == damaged_files  # left in place, untouched
  ckpt.close()


def test_restore_latest_keeps_returning_the_state_or_none(tmp_path):
  directory = tmp_path / 'checkpoints'
  ckpt = checkpoints.Checkpointer(directory)
  assert ckpt.restore_latest(fresh_state()) is None
  assert ckpt.restore_latest_with_step(fresh_state()) is None
  ckpt.close()
  write_steps(directory, [3, 6])
  remove_array_data(directory / '6')
  ckpt = checkpoints.Checkpointer(directory)
  assert_trees_equal(ckpt.restore_latest(fresh_state()), state_at(3))
  ckpt.close()


def test_no_restorable_step_raises_runtime_error_listing_steps(tmp_path, caplog):
  directory = tmp_path / 'checkpoints'
  write_steps(directory, [3, 6])
  remove_array_data(directory / '6')
  shutil.rmtree(directory / '3' / 'state')
  ckpt = checkpoints.Checkpointer(directory)
  with caplog.at_level(logging.WARNING), pytest.raises(RuntimeError) as info:
    ckpt.restore_latest(fresh_state())
  message = str(info.value)
  assert str(directory) in message and 'could be restored' in message and '[6, 3]' in message
  assert 'tensorstore_spec' not in message  # the summary, not the raw spec dump
  assert info.value.__cause__ is not None  # the newest step's original error
  assert len(absl_warnings(caplog)) == 2
  with pytest.raises(RuntimeError, match='could be restored'):
    ckpt.restore_state_dict()
  assert (directory / '6').is_dir() and (directory / '3').is_dir()
  ckpt.close()


def test_unfinished_save_directory_is_ignored(tmp_path, caplog):
  directory = tmp_path / 'checkpoints'
  write_steps(directory, [3, 6])
  unfinished = directory / '9.orbax-checkpoint-tmp'  # what a kill during a save leaves
  shutil.copytree(directory / '6', unfinished)
  remove_array_data(unfinished)
  ckpt = checkpoints.Checkpointer(directory)
  with caplog.at_level(logging.WARNING):
    state, step = ckpt.restore_latest_with_step(fresh_state())
  assert step == 6 and ckpt.latest_step() == 6 and not absl_warnings(caplog)
  assert_trees_equal(state, state_at(6))
  ckpt.save(9, state_at(9), {'step_of_config': 9})  # orbax replaces its unfinished directory
  assert ckpt.restore_latest_with_step(fresh_state())[1] == 9
  ckpt.close()


def test_restore_state_dict_falls_back_and_returns_the_step(tmp_path):
  directory = tmp_path / 'checkpoints'
  ckpt = checkpoints.Checkpointer(directory)
  assert ckpt.restore_state_dict() is None
  ckpt.close()
  write_steps(directory, [3, 6])
  remove_array_data(directory / '6')
  ckpt = checkpoints.Checkpointer(directory)
  state, step = ckpt.restore_state_dict()
  assert step == 3
  assert_trees_equal(state['params'], state_at(3).params)
  ckpt.close()


def test_restore_config_falls_back_and_names_an_explicit_damaged_step(tmp_path, caplog):
  directory = tmp_path / 'checkpoints'
  write_steps(directory, [3, 6])
  truncate(directory / '6' / 'config' / 'metadata')
  ckpt = checkpoints.Checkpointer(directory)
  with caplog.at_level(logging.WARNING):
    assert ckpt.restore_config() == {'step_of_config': 3}
  assert any(str(directory / '6') in m and 'config' in m for m in absl_warnings(caplog))
  assert ckpt.restore_config(3) == {'step_of_config': 3}
  with pytest.raises(RuntimeError, match=str(directory / '6')):
    ckpt.restore_config(6)
  # The state of step 6 is intact: resuming still uses it.
  assert ckpt.restore_latest_with_step(fresh_state())[1] == 6
  ckpt.close()


def test_saving_a_step_that_failed_to_restore_moves_it_aside(tmp_path, caplog):
  directory = tmp_path / 'checkpoints'
  write_steps(directory, [3, 6])
  remove_array_data(directory / '6')
  damaged_files = files_under(directory / '6')
  ckpt = checkpoints.Checkpointer(directory, max_to_keep=5)
  assert ckpt.restore_latest_with_step(fresh_state())[1] == 3
  ckpt.save(6, state_at(60), {'step_of_config': 60})  # the resumed run reaches step 6 again
  assert files_under(directory / '6.unrestorable') == damaged_files
  assert ckpt.latest_step() == 6 and ckpt.manager.all_steps() == [3, 6]
  state, step = ckpt.restore_latest_with_step(fresh_state())
  assert step == 6
  assert_trees_equal(state, state_at(60))
  ckpt.close()
  # A later Checkpointer ignores the moved directory.
  ckpt = checkpoints.Checkpointer(directory)
  assert ckpt.manager.all_steps() == [3, 6] and ckpt.restore_config() == {'step_of_config': 60}
  ckpt.close()


def test_saving_an_existing_good_step_is_a_no_op(tmp_path):
  directory = tmp_path / 'checkpoints'
  write_steps(directory, [3])
  ckpt = checkpoints.Checkpointer(directory)
  ckpt.save(3, state_at(30), {'step_of_config': 30})
  assert_trees_equal(ckpt.restore_latest(fresh_state()), state_at(3))
  assert sorted(os.listdir(directory)) == ['3']
  ckpt.close()


def test_saving_a_state_replicated_on_eight_devices_compiles_nothing(tmp_path):
  """Each array is written whole by one replica: no per-replica slice programs."""
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ('data',))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  state = {'kernel': jnp.arange(16 * 40, dtype=jnp.float32).reshape(16, 40), 'bias': jnp.ones(24)}
  state = jax.device_put(state, replicated)   # (replica-parallel saving would cut both in 8)
  assert len(jax.devices()) == 8 and len(state['kernel'].sharding.device_set) == 8
  compiled = []
  listener = lambda event, duration, **kwargs: compiled.append(event)
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    ckpt = checkpoints.Checkpointer(tmp_path / 'ckpt')
    ckpt.save(3, state, {'a': 1})
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert '/jax/core/compile/backend_compile_duration' not in compiled
  restored = ckpt.restore_latest(jax.tree_util.tree_map(jnp.zeros_like, state))
  jax.tree_util.tree_map(np.testing.assert_array_equal, restored, state)
  ckpt.close()


def test_an_asynchronous_save_keeps_its_steps_values_while_training_goes_on(tmp_path):
  """`save` returns before the write ends; the state may then be donated to the next steps,
  and the step on disk still holds the values it was saved with."""
  ckpt = checkpoints.Checkpointer(tmp_path / 'ckpt', max_to_keep=1, asynchronous=True)
  step = jax.jit(lambda state: state.replace(params=jax.tree_util.tree_map(
      lambda a: a + 1, state.params)), donate_argnums=0)
  state = jax.device_put(state_at(1))
  ckpt.save(1, state, {'step_of_config': 1})
  state = step(step(state))
  ckpt.save(3, state, {'step_of_config': 3})   # waits for step 1, then pushes it out
  state = step(state)
  assert ckpt.all_steps() == [3]
  ckpt.wait()
  assert sorted(os.listdir(tmp_path / 'ckpt')) == ['3']
  expected = step(step(jax.device_put(state_at(1))))
  assert_trees_equal(ckpt.restore_latest(fresh_state()).params, expected.params)
  ckpt.close()
