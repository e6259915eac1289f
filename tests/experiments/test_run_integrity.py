"""Run integrity from the command line: stops, resumes, refused resumes, locks, kills, bad input.

Every command runs as a user runs it (a subprocess on one CPU device). Exit
status: 0 done, 2 a usage error (one line on stderr), 130 stopped with a
checkpoint saved. To save time, the commands share a JAX compilation cache (the
same programs, compiled once).
"""

import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import struct
import subprocess
import sys
import time

import pytest

from configs import anbn
from seqnets.ablation import report
from seqnets.training import loop, validation
from seqnets.training import writers

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMOKE = f'--config={ROOT}/configs/anbn.py:smoke'
ABLATE = f'--config={ROOT}/configs/ablate_formal.py:smoke'
VARIANTS = ('anbn-elman_relu-h3', 'anbncn-lstm_peephole-h3')   # the smoke sweep, in order
# Lines other libraries may print on stderr: absl/glog log lines and Python warnings (with their source line).
LIBRARY_NOISE = re.compile(r'^([IWEF]\d{4} \d\d:\d\d|\S+:\d+: \w*Warning: |\s)')
_COMPILATION_CACHE = {}


@pytest.fixture(scope='module', autouse=True)
def compilation_cache(tmp_path_factory):
  """One persistent JAX compilation cache for every command of this module."""
  _COMPILATION_CACHE.update(JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp('jax_cache')),
                            JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')
  yield
  _COMPILATION_CACHE.clear()


def env():
  return dict(os.environ, XLA_FLAGS=os.environ['SEQNETS_TEST_XLA_FLAGS'], JAX_PLATFORMS='cpu', PYTHONPATH=str(ROOT), **_COMPILATION_CACHE)


def run(*args, cwd=ROOT, timeout=300):
  return subprocess.run([sys.executable, '-m', *args], cwd=cwd, env=env(), capture_output=True,
                        text=True, timeout=timeout)


def start(*args, log: pathlib.Path):
  """Starts a command in the background, its stdout and stderr going to `log`."""
  with log.open('w') as out:
    return subprocess.Popen([sys.executable, '-m', *args], cwd=ROOT, env=env(), stdout=out,
                            stderr=subprocess.STDOUT)


def wait_until(condition, proc, log: pathlib.Path, timeout=120):
  """Polls `condition()` until true; fails when `proc` ends first or time runs out."""
  deadline = time.monotonic() + timeout
  while not condition():
    if proc.poll() is not None:
      pytest.fail(f'the run ended (status {proc.returncode}) before the awaited moment:\n'
                  f'{log.read_text()[-3000:]}')
    if time.monotonic() > deadline:
      proc.kill()
      pytest.fail(f'timed out:\n{log.read_text()[-3000:]}')
    time.sleep(0.02)


def train_steps(workdir: pathlib.Path) -> list[int]:
  """Steps of the training records in `workdir/metrics.jsonl` (none while it does not exist)."""
  path = workdir / 'metrics.jsonl'
  if not path.exists():
    return []
  lines = path.read_bytes().split(b'\n')[:-1]  # Only whole lines: the run may be writing.
  return [r['step'] for r in map(json.loads, lines) if 'train/loss' in r]


def checkpoint_steps(workdir: pathlib.Path) -> list[int]:
  directory = workdir / 'checkpoints'
  return sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit()) if directory.exists() else []


def finals(workdir: pathlib.Path) -> list[dict]:
  return [r for r in writers.read_metrics(workdir) if r.get('final')]


def error_lines(stderr: str) -> list[str]:
  """stderr without blank lines and other libraries' log and warning lines."""
  return [l for l in stderr.splitlines() if l.strip() and not LIBRARY_NOISE.match(l)]


def assert_one_line_error(done, *fragments) -> str:
  assert done.returncode == 2, done.stderr[-3000:]
  assert 'Traceback' not in done.stderr, done.stderr[-3000:]
  lines = error_lines(done.stderr)
  assert len(lines) == 1, done.stderr
  for fragment in fragments:
    assert fragment in lines[0], lines[0]
  return lines[0]


def digest(directory: pathlib.Path) -> dict[str, str]:
  """`relative path -> sha256` of every file under `directory`."""
  return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(directory.rglob('*')) if p.is_file()}


# Ctrl-C / SIGTERM in an ablation, resume, a damaged results.json, a changed config.

def assert_stopped_cleanly(log: pathlib.Path):
  text = log.read_text()
  assert 'Traceback' not in text and 'rerun the same command to go on' in text, text[-3000:]


def test_ablation_stops_on_sigint_and_sigterm_and_resumes(tmp_path):
  root = tmp_path / 'ablate'
  first, second = (root / name for name in VARIANTS)
  command = ('experiments.ablate', ABLATE, f'--workdir={root}', '--config.train.num_train_steps=2000',
             '--config.train.checkpoint_every_steps=1000')

  # Ctrl-C while the first variant trains: its checkpoint is saved, nothing else runs, no report.
  proc = start(*command, log=tmp_path / 'a.log')
  wait_until(lambda: train_steps(first), proc, tmp_path / 'a.log')
  proc.send_signal(signal.SIGINT)
  assert proc.wait(timeout=120) == 130, (tmp_path / 'a.log').read_text()[-3000:]
  assert_stopped_cleanly(tmp_path / 'a.log')
  [stopped_at] = checkpoint_steps(first)
  assert 0 < stopped_at < 1000
  assert max(train_steps(first)) <= stopped_at
  assert not (first / 'results.json').exists() and not second.exists()
  assert not (root / 'report.md').exists() and not (root / 'results.json').exists()

  # Rerun, SIGTERM once the first variant trains past where it stopped: resumed, stopped again.
  proc = start(*command, log=tmp_path / 'b.log')
  wait_until(lambda: max(train_steps(first), default=0) > stopped_at, proc, tmp_path / 'b.log')
  proc.send_signal(signal.SIGTERM)
  assert proc.wait(timeout=120) == 130, (tmp_path / 'b.log').read_text()[-3000:]
  assert_stopped_cleanly(tmp_path / 'b.log')
  stopped_again = max(checkpoint_steps(first))
  assert stopped_at in checkpoint_steps(first) and stopped_again > stopped_at
  assert not (first / 'results.json').exists() and not (root / 'report.md').exists()

  # Rerun (shortened, a change a resume accepts): resumes the first variant, runs the second.
  total = stopped_again + 20
  command = (*command, f'--config.train.num_train_steps={total}')
  done = run(*command)
  assert done.returncode == 0, done.stderr[-3000:]
  changes = [json.loads(l) for l in (first / 'config_changes.jsonl').read_text().splitlines()]
  assert changes == [{'step': stopped_again, 'changes': {'train.num_train_steps': [2000, total]}}]
  for workdir in (first, second):
    assert json.loads((workdir / 'results.json').read_text())['step'] == total
  results = json.loads((root / 'results.json').read_text())
  assert sorted((r['run'], r['seed']) for r in results['runs']) == [(v, s) for v in VARIANTS for s in (0, 1)]
  assert all(f'| {v} |' in (root / 'report.md').read_text() for v in VARIANTS)

  # A results.json cut in half is not a finished variant: that variant runs again, the other is skipped.
  path = first / 'results.json'
  path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
  again = run(*command)
  assert again.returncode == 0, again.stderr[-3000:]
  assert f'{VARIANTS[1]}: done before, skipped' in again.stderr
  assert f'{VARIANTS[0]}: done before' not in again.stderr and f'[1/1] {VARIANTS[0]}: done' in again.stderr
  assert json.loads(path.read_text())['step'] == total
  results = json.loads((root / 'results.json').read_text())
  assert len(results['runs']) == 4  # each seed once, though the rerun variant has two final records each

  # A finished ablation rerun with a changed config is refused, not reported as done.
  before = digest(root)
  refused = run(*command, '--config.optim.learning_rate=0.5')
  assert_one_line_error(refused, str(first), 'config.optim.learning_rate: 0.01 -> 0.5')
  assert digest(root) == before


# Commands on a finished run: rerun, extend, a changed config, evaluate.

@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
  """`(workdir, args)`: a finished smoke run trained on n = 1..12 (checkpoints 50, 100), and its command."""
  workdir = tmp_path_factory.mktemp('finished') / 'run'
  args = ('experiments.main', SMOKE, '--config.data.train_n=(1, 12)', '--config.optim.learning_rate=0.05',
          '--config.train.num_train_steps=100', '--config.train.log_every_steps=25',
          '--config.train.checkpoint_every_steps=50', '--config.evals.train_range.every_steps=50')
  done = run(*args, f'--workdir={workdir}')
  assert done.returncode == 0, done.stderr[-3000:]
  return workdir, args


# Each refused field is named (an accepted one, num_train_steps, is not).
REFUSED = {
    'learning_rate': (['--config.optim.learning_rate=0.02'], ['config.optim.learning_rate: 0.05 -> 0.02']),
    'seed, hidden_size, learning_rate and a longer run': (
        ['--config.optim.learning_rate=0.02', '--config.seed=5', '--config.model.cell.hidden_size=6',
         '--config.train.num_train_steps=200'],
        ['config.optim.learning_rate: 0.05 -> 0.02', 'config.seed: 0 -> 5',
         'config.model.cell.hidden_size: 4 -> 6']),
}


@pytest.fixture
def finished(finished_run, tmp_path):
  """`(workdir, args)`: a private copy of the finished run, and its command."""
  source, args = finished_run
  shutil.copytree(source, tmp_path / 'run')
  return tmp_path / 'run', args


@pytest.mark.parametrize('extra', [[], ['--config.train.num_train_steps=30']], ids=['same', 'fewer steps'])
def test_rerunning_a_finished_run_ends_at_once(finished, extra):
  """Also with a num_train_steps the checkpoint is already past: no second final record, nothing rewritten."""
  workdir, args = finished
  before = digest(workdir)
  done = run(*args, f'--workdir={workdir}', *extra)
  assert done.returncode == 0, done.stderr[-3000:]
  assert digest(workdir) == before
  assert len(finals(workdir)) == 1


def test_extending_a_finished_run_counts_each_seed_once(finished):
  workdir, args = finished
  done = run(*args, f'--workdir={workdir}', '--config.train.num_train_steps=130',
             '--config.train.log_every_steps=10')
  assert done.returncode == 0, done.stderr[-3000:]
  assert checkpoint_steps(workdir) == [100, 130]
  changes = [json.loads(l) for l in (workdir / 'config_changes.jsonl').read_text().splitlines()]
  assert changes == [{'step': 100, 'changes': {'train.log_every_steps': [25, 10],
                                               'train.num_train_steps': [100, 130]}}]
  assert [r['step'] for r in finals(workdir)] == [100, 130]  # the old final record, then the new one
  assert train_steps(workdir) == [25, 50, 75, 100, 110, 120, 130]
  results = json.loads((workdir / 'results.json').read_text())
  assert results['step'] == 130 and [r['seed'] for r in results['runs']] == [0]
  [loaded] = report.load_runs(workdir.parent)
  assert [(f['seed'], f['step']) for f in loaded['finals']] == [(0, 130)]


def test_a_damaged_newest_checkpoint_and_a_cut_metrics_line_do_not_block_resume(finished):
  """Extending a run whose newest checkpoint is damaged and whose metrics.jsonl ends in half a
  line: a warning for each, resumed from the older checkpoint, finished."""
  workdir, args = finished
  newest = workdir / 'checkpoints' / '100'
  for path in newest.rglob('*'):
    if path.is_file():
      path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
  metrics = workdir / 'metrics.jsonl'
  line = json.dumps({'step': 101, 'seed': 0, 'train/loss': 0.5}).encode()
  metrics.write_bytes(metrics.read_bytes() + line[:len(line) // 2])
  done = run(*args, f'--workdir={workdir}', '--config.train.num_train_steps=130')
  assert done.returncode == 0, done.stderr[-3000:]
  assert re.search(f'{re.escape(str(newest))}.*falling back to step 50', done.stderr), done.stderr[-3000:]
  assert f'{metrics}: dropping damaged last line' in done.stderr, done.stderr[-3000:]
  assert train_steps(workdir) == [25, 50, 75, 100, 125, 130]  # 75 and 100 trained again
  assert [r['step'] for r in finals(workdir)] == [130]
  assert json.loads((workdir / 'results.json').read_text())['step'] == 130
  assert checkpoint_steps(workdir) == [100, 130]
  assert (workdir / 'checkpoints' / '100.unrestorable').is_dir()  # the damaged one, set aside


@pytest.mark.parametrize('name', list(REFUSED))
def test_resuming_with_a_changed_config_is_refused(finished, name):
  workdir, args = finished
  overrides, named = REFUSED[name]
  before = digest(workdir)
  done = run(*args, f'--workdir={workdir}', *overrides)
  line = assert_one_line_error(done, str(workdir), *named)
  assert 'num_train_steps: 100' not in line  # an accepted change is not named
  assert digest(workdir) == before  # config.json byte-identical, checkpoints untouched


def evaluate(workdir, *args) -> dict:
  done = run('experiments.evaluate', f'--workdir={workdir}', *args)
  assert done.returncode == 0, done.stderr[-3000:]
  return json.loads(done.stdout.strip().splitlines()[-1])


def test_evaluate_prints_the_metrics_of_each_evaluator(finished_run):
  workdir, _ = finished_run
  metrics = evaluate(workdir)
  [final] = finals(workdir)
  expected = {k.removeprefix('eval/'): v for k, v in final.items()
              if k.startswith('eval/') and isinstance(v, (int, float))}
  assert set(metrics) == set(expected)
  assert {k.split('/')[0] for k in metrics} == {'train_range', 'test_range'}
  for key, value in expected.items():
    assert metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key


def test_evaluate_on_a_file_agrees_with_training(finished_run, tmp_path):
  """The file holds n = 1..12 (shuffled), the run's training range: the same numbers as its final record."""
  workdir, _ = finished_run
  strings = tmp_path / 'strings.txt'
  strings.write_text(''.join('a' * n + 'b' * n + '\n' for n in (7, 1, 12, 3, 2, 9, 4, 11, 5, 6, 10, 8)))
  metrics = evaluate(workdir, f'--eval_file={strings}')
  [final] = finals(workdir)
  assert set(metrics) == {'accuracy', 'loss', 'max_correct_n', 'token_accuracy'}
  for name, value in metrics.items():
    assert value == pytest.approx(final[f'eval/train_range/{name}'], rel=1e-5, abs=1e-7), name


def test_evaluate_names_a_line_outside_the_language(finished_run, tmp_path):
  workdir, _ = finished_run
  strings = tmp_path / 'strings.txt'
  strings.write_text('ab\naabb\naabbb\n')
  done = run('experiments.evaluate', f'--workdir={workdir}', f'--eval_file={strings}')
  assert_one_line_error(done, f'{strings}:3:')


# Two processes, SIGKILL, stale lock, TensorBoard events.

@pytest.fixture(scope='module')
def killed_run(tmp_path_factory):
  """A run that a second process tried to join, then SIGKILLed right after a checkpoint."""
  tmp = tmp_path_factory.mktemp('killed')
  workdir, log = tmp / 'run', tmp / 'first.log'
  args = ('experiments.main', SMOKE, '--config.model.cell.name=elman', '--config.train.num_train_steps=100000',
          '--config.train.log_every_steps=5', '--config.train.checkpoint_every_steps=200')
  proc = start(*args, f'--workdir={workdir}', log=log)
  wait_until(lambda: train_steps(workdir), proc, log)
  second = run(*args, f'--workdir={workdir}')
  seen = checkpoint_steps(workdir)
  wait_until(lambda: checkpoint_steps(workdir)[-1:] != seen[-1:], proc, log)
  proc.send_signal(signal.SIGKILL)
  assert proc.wait(timeout=60) == -signal.SIGKILL
  return dict(workdir=workdir, args=args, pid=proc.pid, second=second)


def test_a_second_process_on_a_workdir_fails_at_once(killed_run):
  assert_one_line_error(killed_run['second'], str(killed_run['workdir']), f'pid {killed_run["pid"]}')


def test_resuming_a_killed_run_with_a_changed_config_is_refused(killed_run, tmp_path):
  workdir = tmp_path / 'run'
  shutil.copytree(killed_run['workdir'], workdir)
  before = digest(workdir)
  done = run(*killed_run['args'], f'--workdir={workdir}', '--config.model.cell.hidden_size=6')
  assert_one_line_error(done, str(workdir), 'config.model.cell.hidden_size: 4 -> 6')
  assert {k: v for k, v in digest(workdir).items() if k != '.lock'} == {
      k: v for k, v in before.items() if k != '.lock'}  # the lock file is emptied on release


def test_tensorboard_events_before_a_checkpoint_survive_sigkill(killed_run):
  workdir = killed_run['workdir']
  saved = checkpoint_steps(workdir)[-1]
  [events] = (workdir / 'tensorboard').iterdir()
  assert b'train/loss' in events.read_bytes()
  steps = {step for step, tag in read_scalar_events(events) if tag == 'train/loss/seed_0'}
  assert set(range(5, saved + 1, 5)) <= steps


def test_a_killed_run_leaves_no_stale_lock(killed_run, tmp_path):
  """The rerun asks for as many steps as the checkpoint has: it only evaluates, and ends with 0."""
  workdir = tmp_path / 'run'
  shutil.copytree(killed_run['workdir'], workdir)
  assert json.loads((workdir / '.lock').read_text())['pid'] == killed_run['pid']  # left by the dead run
  saved = checkpoint_steps(workdir)[-1]
  done = run(*killed_run['args'], f'--workdir={workdir}', f'--config.train.num_train_steps={saved}')
  assert done.returncode == 0, done.stderr[-3000:]
  assert json.loads((workdir / 'results.json').read_text())['step'] == saved
  assert checkpoint_steps(workdir)[-1] == saved
  assert [r['step'] for r in finals(workdir)] == [saved]
  assert max(r['step'] for r in writers.read_metrics(workdir)) == saved  # the killed run's later records dropped


def read_scalar_events(path: pathlib.Path) -> list[tuple[int, str]]:
  """`(step, tag)` of every scalar in a TensorBoard event file (TFRecord framing)."""
  from tensorboardX.proto import event_pb2
  data, offset, found = path.read_bytes(), 0, []
  while offset + 12 <= len(data):
    (length,) = struct.unpack('<Q', data[offset:offset + 8])
    if offset + 12 + length + 4 > len(data):
      break  # a record cut short by the kill
    event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
    offset += 12 + length + 4
    found += [(event.step, value.tag) for value in event.summary.value]
  return found


# Bad command lines: an empty workdir, bad config values, bad flags.

EMPTY_WORKDIR = {'experiments.main': [SMOKE], 'experiments.ablate': [ABLATE], 'experiments.evaluate': []}
BAD_VALUES = {
    'optim.learning_rate=nan': 'config.optim.learning_rate',
    'optim.learning_rate=-1': 'config.optim.learning_rate',
    'model.embedding_size=-2': 'config.model.embedding_size',
    'optim.momentum=-0.5': 'config.optim.momentum',
    'optim.end_learning_rate_factor=-1': 'config.optim.end_learning_rate_factor',
}
BAD_FLAGS = {
    '--config.model.cell.hiden_size=3': ["--config.model.cell.hiden_size=3: the config has no field 'hiden_size'",
                                         'hidden_size'],
    '--config.model.cell.hidden_size=2.5': ['--config.model.cell.hidden_size=2.5', 'int()'],
    f'--config={ROOT}/configs/nosuch.py': [f'{ROOT}/configs/nosuch.py', 'No such file'],
}


@pytest.mark.parametrize('module', list(EMPTY_WORKDIR))
def test_an_empty_workdir_is_refused(tmp_path, module):
  done = run(module, *EMPTY_WORKDIR[module], '--workdir=', cwd=tmp_path)
  assert_one_line_error(done, '--workdir is empty')
  assert list(tmp_path.iterdir()) == []


def test_a_bad_config_value_is_one_line_naming_the_field(tmp_path):
  override = 'optim.learning_rate=nan'
  done = run('experiments.main', SMOKE, '--workdir=run', f'--config.{override}', cwd=tmp_path)
  assert_one_line_error(done, BAD_VALUES[override])
  assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('override', list(BAD_VALUES))
def test_each_bad_config_value_is_refused_naming_the_field(tmp_path, override):
  """The check the command runs before writing anything (in process: one command above
  shows the same error reaches the command line as one line)."""
  key, value = override.split('=')
  section, field = key.split('.')
  config = anbn.get_config('smoke')
  config[section][field] = type(config[section][field])(float(value))
  with pytest.raises(validation.ConfigError, match=re.escape(BAD_VALUES[override])):
    loop.train_and_evaluate(config, tmp_path / 'run')
  assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize('flag', list(BAD_FLAGS))
def test_a_bad_flag_is_one_line_naming_it(tmp_path, flag):
  done = run('experiments.main', SMOKE, '--workdir=run', flag, cwd=tmp_path)
  assert_one_line_error(done, *BAD_FLAGS[flag])
  assert list(tmp_path.iterdir()) == []
