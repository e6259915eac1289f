"""WorkdirLock: one holder at a time, across processes; a killed holder never blocks."""

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from seqnets.training import workdir_lock
from seqnets.training.workdir_lock import WorkdirBusyError, WorkdirLock

# Loads the module by path: the child needs no jax import and starts fast.
HOLDER = textwrap.dedent('''
    import importlib.util, sys, time
    spec = importlib.util.spec_from_file_location('workdir_lock', sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.WorkdirLock(sys.argv[2]).acquire()
    print('locked', flush=True)
    time.sleep(120)
''')


@pytest.fixture
def holder_process(tmp_path):
  """Starts a child process that takes the lock of `tmp_path / 'run'` and sleeps."""
  processes = []

  def start():
    command = [sys.executable, '-c', HOLDER, workdir_lock.__file__, str(tmp_path / 'run')]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    processes.append(process)
    line = process.stdout.readline()
    assert line == 'locked\n', process.stderr.read()
    return process

  yield start
  for process in processes:
    if process.poll() is None:
      process.kill()
    process.wait(timeout=30)
    process.stdout.close()
    process.stderr.close()


def test_context_manager_writes_holder_and_releases(tmp_path):
  workdir = tmp_path / 'run'
  with WorkdirLock(workdir) as lock:  # creates the workdir
    assert lock.held
    assert json.loads(lock.path.read_text()) == {'pid': os.getpid(), 'host': socket.gethostname()}
  assert not lock.held and (workdir / '.lock').exists()  # the file stays
  with WorkdirLock(workdir):  # free again
    pass


def test_second_lock_fails_at_once_even_in_the_same_process(tmp_path):
  with WorkdirLock(tmp_path):
    with pytest.raises(WorkdirBusyError) as info:
      WorkdirLock(tmp_path).acquire()
  message = str(info.value)
  assert str(tmp_path) in message and f'pid {os.getpid()} on host {socket.gethostname()}' in message
  assert info.value.holder == {'pid': os.getpid(), 'host': socket.gethostname()}
  assert isinstance(info.value, RuntimeError)


def test_acquire_release_api(tmp_path):
  lock = WorkdirLock(tmp_path)
  lock.acquire()
  with pytest.raises(RuntimeError, match='already held'):
    lock.acquire()
  lock.release()
  lock.release()  # no-op
  assert not lock.held and lock.path.read_text() == ''
  lock.acquire()  # reusable
  lock.release()


def test_lock_is_released_when_the_body_raises(tmp_path):
  with pytest.raises(KeyError):
    with WorkdirLock(tmp_path):
      raise KeyError('boom')
  with WorkdirLock(tmp_path):
    pass


def test_another_process_holding_the_lock_is_named(tmp_path, holder_process):
  process = holder_process()
  with pytest.raises(WorkdirBusyError) as info:
    WorkdirLock(tmp_path / 'run').acquire()
  assert f'pid {process.pid} on host {socket.gethostname()}' in str(info.value)
  assert str(tmp_path / 'run') in str(info.value)
  assert info.value.holder['pid'] == process.pid


def test_a_holder_killed_by_sigkill_leaves_a_stale_file_that_does_not_block(tmp_path, holder_process):
  process = holder_process()
  process.send_signal(signal.SIGKILL)
  assert process.wait(timeout=30) == -signal.SIGKILL
  path = tmp_path / 'run' / '.lock'
  assert json.loads(path.read_text())['pid'] == process.pid  # stale: never cleaned up
  with WorkdirLock(tmp_path / 'run'):
    assert json.loads(path.read_text())['pid'] == os.getpid()


def test_a_holder_that_has_not_written_its_pid_yet_is_unknown(tmp_path):
  fd = os.open(tmp_path / '.lock', os.O_RDWR | os.O_CREAT)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with pytest.raises(WorkdirBusyError, match='unknown process') as info:
      WorkdirLock(tmp_path).acquire()
    assert info.value.holder is None
  finally:
    os.close(fd)
