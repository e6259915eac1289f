"""Sweeps: every sweep config's variants apply and validate; done and changed variants."""

import importlib.util
import json
import pathlib

import pytest

from configs import ablate_formal
from seqnets.ablation import sweeps
from seqnets.training import validation

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_sweep_config_gives_valid_configs():
  """Each ablation config's variants apply to its base config and validate (no training)."""
  paths = [p for p in sorted((ROOT / 'configs').glob('*.py')) if 'def sweep(' in p.read_text()]
  assert {p.stem for p in paths} >= {'ablate_formal', 'ablate_digits_lr', 'bottleneck'}
  for path in paths:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for mode in (None, 'smoke') if "'smoke'" in path.read_text() else (None,):
      variants = module.sweep(mode)
      assert len({v['name'] for v in variants}) == len(variants), path
      for overrides in variants:
        validation.validate(sweeps.apply_overrides(module.get_config(mode), overrides))


def test_load_sweep_calls_the_config_files_sweep_with_its_mode():
  path = ROOT / 'configs' / 'ablate_formal.py'
  assert sweeps.load_sweep(f'{path}:smoke') == ablate_formal.sweep('smoke')
  assert sweeps.load_sweep(str(path)) == ablate_formal.sweep(None)
  with pytest.raises(ValueError, match='has no sweep'):
    sweeps.load_sweep(str(ROOT / 'configs' / 'anbn.py'))


def test_apply_overrides_copies_and_refuses_an_unknown_field():
  config = ablate_formal.get_config('smoke')
  variant = sweeps.apply_overrides(config, {'name': 'x', 'model.cell.hidden_size': 7})
  assert variant.model.cell.hidden_size == 7 and config.model.cell.hidden_size != 7
  variant = sweeps.apply_overrides(config, {'model.cell': dict(name='gru', hidden_size=5)})
  assert variant.model.cell.to_dict() == dict(name='gru', hidden_size=5)
  with pytest.raises(KeyError, match='model.cell.hiden_size'):
    sweeps.apply_overrides(config, {'model.cell.hiden_size': 7})


def test_pending_variants_skip_done_ones_and_refuse_a_changed_resume(tmp_path, capsys):
  config = ablate_formal.get_config('smoke')
  first, second = sweep = ablate_formal.sweep('smoke')
  done = sweeps.apply_overrides(config, first)
  (tmp_path / first['name']).mkdir()
  (tmp_path / first['name'] / 'config.json').write_text(done.to_json())
  (tmp_path / first['name'] / 'results.json').write_text(
      json.dumps({'step': done.train.num_train_steps}))
  pending = sweeps.pending_variants(config, sweep, tmp_path)
  assert [(name, workdir) for name, _, workdir in pending] == [
      (second['name'], str(tmp_path / second['name']))]
  assert f'{first["name"]}: done before, skipped' in capsys.readouterr().err
  changed = json.loads(done.to_json())
  changed['model']['cell']['hidden_size'] += 1
  (tmp_path / first['name'] / 'config.json').write_text(json.dumps(changed))
  with pytest.raises(validation.ConfigError, match='model.cell.hidden_size'):
    sweeps.pending_variants(config, sweep, tmp_path)
