"""A key that nothing reads is an error naming it, in config files and on the command line."""

import os
import pathlib
import subprocess
import sys

import pytest

from configs import anbn
from seqnets.training import loop
from seqnets.training import validation

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_main(*args):
  env = dict(os.environ, XLA_FLAGS=os.environ['SEQNETS_TEST_XLA_FLAGS'], JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', 'experiments.main', *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


def assert_refused(done, workdir, *fragments):
  assert done.returncode == 2, done.stderr[-2000:]
  lines = [l for l in done.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith('error: '), done.stderr
  for fragment in fragments:
    assert fragment in lines[0], lines[0]
  assert not workdir.exists()                   # refused before anything is written


CONFIG_FILE = '''
from configs import anbn

def get_config(arg=None):
  config = anbn.get_config('smoke')
  {edit}
  return config
'''


def test_a_config_file_with_a_key_nothing_reads_is_one_error_line(tmp_path):
  path = tmp_path / 'config.py'
  path.write_text(CONFIG_FILE.format(edit='config.model.dropout = 0.5'))
  done = run_main(f'--config={path}', f'--workdir={tmp_path / "run"}')
  assert_refused(done, tmp_path / 'run',
                 "config.model.dropout is not a setting of model 'recurrent_tagger'",
                 "'dropout_rate'")


@pytest.mark.parametrize('edit, fragments', [
    ("config.model.dropout = 0.5",
     ["config.model.dropout is not a setting of model 'recurrent_tagger'", "'dropout_rate'"]),
    ("config.model.cell.zoneout = 0.1",
     ["config.model.cell.zoneout is not a setting of the 'lstm' cell", "'zoneout_rate'"]),
    ("config.data.batchsize = 4", ['config.data.batchsize is not a setting', "'batch_size'"]),
    ("config.optim.l2_penalty = 0.1", ['config.optim.l2_penalty is not a setting']),
    ("config.train.eval_every_steps = 5", ['config.train.eval_every_steps is not a setting']),
    ("config.evals.test_range.beam_size = 4",
     ['config.evals.test_range.beam_size is not a setting']),
    ("config.sed = 1", ['config.sed is not a setting']),
    ("config.report = dict(alpha=0.05, confidense=0.9)",
     ['config.report.confidense is not a setting of the ablation report', "'confidence'"]),
    ("config.report = dict(compare=(('a',),))", ['config.report.compare[0] must be a pair']),
    ("config.model.cell = dict(name='lstm', hidden_size=4, forget_bias='chrono')",
     ["config.model.cell: forget_bias='chrono' needs chrono_max_length"]),
])
def test_a_key_nothing_reads_is_refused_in_every_section(tmp_path, edit, fragments):
  config = anbn.get_config('smoke')
  exec(edit, {'config': config})
  with pytest.raises(validation.ConfigError) as error:
    loop.train_and_evaluate(config, tmp_path / 'run')
  for fragment in fragments:
    assert fragment in str(error.value)
  assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('override, fragments', [
    ('--config.model.dropout=0.5', ["no field 'dropout'", "'dropout_rate'"]),
    ('--config.model.cell.forget_bias=2.0', ["no field 'forget_bias'", '--config.model.cell="{']),
    ('--config.model.cell=gru', ['--config.model.cell.name=gru']),
    ("--config.model.cell={'name': 'gru', 'hidden_size': 4, 'forget_bias': 2.0}",
     ["config.model.cell.forget_bias is not a setting of the 'gru' cell"]),
])
def test_a_command_line_key_nothing_reads_is_refused(tmp_path, override, fragments):
  done = run_main('--config=configs/anbn.py:smoke', f'--workdir={tmp_path / "run"}', override)
  assert_refused(done, tmp_path / 'run', *fragments)
