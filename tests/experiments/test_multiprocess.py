"""One run over two processes (two CPU devices each) equals one process with four devices."""

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from seqnets.training import checkpoints
from seqnets.training import writers

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONFIG = ['--config=configs/anbn.py:smoke', '--config.data.full_batch=False',
          '--config.data.batch_size=10', '--config.num_seeds=2']


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def start(args, devices: int) -> subprocess.Popen:
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             XLA_FLAGS=f"{os.environ['SEQNETS_TEST_XLA_FLAGS']} "
                       f'--xla_force_host_platform_device_count={devices}')
  return subprocess.Popen([sys.executable, '-m', 'experiments.main', *CONFIG, *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def start_pair(workdir, *extra):
  address = f'localhost:{free_port()}'
  return [start([f'--workdir={workdir}', f'--coordinator_address={address}', '--num_processes=2',
                 f'--process_id={i}', *extra], devices=2) for i in range(2)]


def finish(processes, timeout=300):
  outputs = [p.communicate(timeout=timeout) for p in processes]
  return [(p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]


def final_params(workdir):
  ckpt = checkpoints.Checkpointer(pathlib.Path(workdir) / 'checkpoints')
  try:
    state, step = ckpt.restore_state_dict()
  finally:
    ckpt.close()
  return state['params'], step


def assert_close(a, b):
  if isinstance(a, dict):
    assert set(a) == set(b)
    for k in a:
      assert_close(a[k], b[k])
  else:
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_two_processes_with_two_devices_equal_one_process_with_four(tmp_path):
  one = finish([start([f'--workdir={tmp_path / "one"}'], devices=4)])
  two = finish(start_pair(tmp_path / 'two'))
  for code, out, err in one + two:
    assert code == 0, err[-3000:]
  params_one, step_one = final_params(tmp_path / 'one')
  params_two, step_two = final_params(tmp_path / 'two')
  assert step_one == step_two == 20
  assert_close(params_two, params_one)
  # Only process 0 writes: one set of records, the same as the single process's.
  strip = lambda records: [{k: v for k, v in r.items() if 'norm' not in k} for r in records]
  records_one, records_two = writers.read_metrics(tmp_path / 'one'), writers.read_metrics(tmp_path / 'two')
  assert [(r['step'], r['seed']) for r in records_two] == [(r['step'], r['seed']) for r in records_one]
  final_one = [r for r in records_one if r.get('final')]
  final_two = [r for r in records_two if r.get('final')]
  for a, b in zip(final_one, final_two):
    assert a['eval/test_range/loss'] == pytest.approx(b['eval/test_range/loss'], rel=1e-5)
  assert (tmp_path / 'two' / 'results.json').exists()


def test_sigterm_to_one_process_stops_both_at_the_same_step(tmp_path):
  processes = start_pair(tmp_path, '--config.train.num_train_steps=100000',
                         '--config.train.checkpoint_every_steps=100000')
  metrics = tmp_path / 'metrics.jsonl'
  deadline = time.time() + 240
  while time.time() < deadline and not (metrics.exists() and 'train/loss' in metrics.read_text()):
    time.sleep(0.5)
  processes[1].send_signal(signal.SIGTERM)
  results = finish(processes)
  assert [code for code, _, _ in results] == [130, 130], [err[-2000:] for _, _, err in results]
  ckpt = checkpoints.Checkpointer(tmp_path / 'checkpoints')
  steps = ckpt.manager.all_steps()
  ckpt.close()
  assert len(steps) == 1 and 0 < steps[0] < 100000
  stopped = [int(err.split('Stopped at step ')[1].split(';')[0]) for _, _, err in results]
  assert stopped == [steps[0], steps[0]]
