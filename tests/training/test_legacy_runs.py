"""Runs written before `model.cell` became a nested entry still load, evaluate and resume.

The fixtures in tests/fixtures/runs_before_nested_cells are workdirs that the earlier code
wrote (flat cell keys in config.json, other cells' settings beside them), with what
`experiments.evaluate` printed for them then.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import ml_collections
import pytest

from configs import anbn
from seqnets.training import legacy_config
from seqnets.training import loop
from seqnets.training import saved_run
from seqnets.training import validation

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / 'tests' / 'fixtures' / 'runs_before_nested_cells'


def copied(name, tmp_path) -> pathlib.Path:
  return pathlib.Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def test_a_saved_flat_config_is_rewritten_and_what_never_reached_the_model_is_dropped():
  saved = json.loads((FIXTURES / 'copy_leaky' / 'config.json').read_text())
  assert saved['model']['cell'] == 'leaky' and 'spectral_radius' in saved['model']
  model = legacy_config.upgrade(saved, saved=True)['model']
  assert model == {'name': 'sequence_readout', 'num_layers': 1, 'readout': 'every_step',
                   'dropout_rate': 0.0, 'unroll': 1,
                   'cell': {'name': 'leaky', 'hidden_size': 6, 'leak': 0.5, 'learn_leak': True}}
  assert saved['model']['cell'] == 'leaky'                      # the input is not changed


def test_a_flat_config_a_person_writes_is_read_strictly():
  config = anbn.get_config('smoke')
  with config.unlocked():
    config.model = dict(name='recurrent_tagger', cell='gru', hidden_size=4, reset_after=True)
  assert validation.upgraded(config).model.cell.to_dict() == dict(name='gru', hidden_size=4,
                                                                  reset_after=True)
  config.model.forget_bias = 1.0
  with pytest.raises(validation.ConfigError, match="model.forget_bias is not a setting of the 'gru'"):
    validation.validate(config)


@pytest.mark.parametrize('name', ['anbn_lstm', 'copy_leaky', 'anbn_bigru', 'reverse_bilstm'])
def test_an_old_run_evaluates_to_the_figures_it_gave_then(name, tmp_path):
  run = saved_run.load_run(copied(name, tmp_path))
  expected = json.loads((FIXTURES / name / 'expected_evaluate.json').read_text())
  scores = run.evaluate()
  for key, value in expected.items():
    evaluator = 'test' if name == 'copy_leaky' else key.split('/')[0]
    metric = key.split('/')[-1]
    assert scores[f'eval/{evaluator}/{metric}'] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def run_command(*args):
  env = dict(os.environ, XLA_FLAGS=os.environ['SEQNETS_TEST_XLA_FLAGS'], JAX_PLATFORMS='cpu')
  done = subprocess.run([sys.executable, '-m', *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  return done.stdout


def test_the_evaluate_command_reads_an_old_run(tmp_path):
  printed = run_command('experiments.evaluate', f'--workdir={copied("copy_leaky", tmp_path)}')
  expected = json.loads((FIXTURES / 'copy_leaky' / 'expected_evaluate.json').read_text())
  assert json.loads(printed.strip().splitlines()[-1]) == pytest.approx(expected, rel=1e-5)


def test_the_generate_and_decode_commands_read_old_runs(tmp_path):
  printed = run_command('experiments.generate', f'--workdir={copied("char_lm", tmp_path)}',
                        '--prime=the ', '--length=20', '--temperature=0')
  assert printed == (FIXTURES / 'char_lm' / 'expected_generate.txt').read_text()
  workdir = copied('reverse_bilstm', tmp_path)
  run_command('experiments.decode', f'--workdir={workdir}', f'--input={workdir / "sources.txt"}',
              f'--output={tmp_path / "out.txt"}')
  assert (tmp_path / 'out.txt').read_text() == (workdir / 'expected_decode.txt').read_text()


def test_an_old_run_resumes_under_todays_config_of_the_same_experiment(tmp_path):
  workdir = copied('anbn_lstm', tmp_path)
  config = anbn.get_config('smoke')
  config.model.cell = ml_collections.ConfigDict(dict(name='lstm', hidden_size=4,
                                                     use_peepholes=True))
  config.train.num_train_steps = 22
  result = loop.train_and_evaluate(config, str(workdir))
  assert result.step == 22 and not result.interrupted
  metrics = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert min(m['step'] for m in metrics if 'step' in m) > 20        # resumed, not restarted
  saved = json.loads((workdir / 'config.json').read_text())
  assert saved['model']['cell'] == {'name': 'lstm', 'hidden_size': 4, 'use_peepholes': True}
  config.model.cell.use_peepholes = False                          # a different experiment
  config.train.num_train_steps = 24
  with pytest.raises(validation.ConfigError, match='use_peepholes'):
    loop.train_and_evaluate(config, str(workdir))


def test_an_old_run_with_renamed_parameters_resumes(tmp_path):
  """The bidirectional tagger's forward cells were `layer{i}_forward_cell`; today `layer{i}_cell`."""
  workdir = copied('anbn_bigru', tmp_path)
  config = anbn.get_config('smoke')
  config.model.cell = ml_collections.ConfigDict(dict(name='gru', hidden_size=4))
  config.model.bidirectional = True
  config.train.num_train_steps = 6
  config.train.checkpoint_every_steps = 6
  result = loop.train_and_evaluate(config, str(workdir))
  assert result.step == 6
  params = result.state.params
  assert 'layer0_cell' in params and 'layer0_forward_cell' not in params
  metrics = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  assert min(m['step'] for m in metrics if 'step' in m) > 4        # resumed from step 4
