"""Every config file, every mode and every sweep variant passes validation: each key it
sets is one that some code reads (a key nothing reads is an error)."""

import importlib
import pathlib

import pytest

from seqnets.ablation import sweeps
from seqnets.training import validation

CONFIGS = pathlib.Path(__file__).resolve().parents[2] / 'configs'
# Config files of the studies with their own entry points (not `experiments.main`).
STUDIES = ('gradient_flow', 'echo_state')
MODES = {
    'anbn': [None, 'smoke'], 'ablate_formal': [None, 'demo', 'smoke'], 'tune_formal': [None],
    'long_memory': [None, 'copy', 'adding', 'digits', 'smoke', 'copy_T500-orthogonal',
                    'adding_T400-leaky', 'digits-echo_state'],
    'char_lm': [None, 'smoke', 'word'], 'multi30k': [None, 'transformer', 'smoke'],
    'reverse': [None, 'smoke'], 'bottleneck': [None, 'smoke'], 'digit_strings': [None, 'smoke'],
    'digits_cnn': [None, 'smoke'], 'sst2_rnn': [None, 'smoke'],
    'text_cnn': [None, 'smoke', 'rand', 'static', 'non-static', 'multichannel', 'static-smoke',
                 'multichannel-smoke'],
    'udpos': [None, 'words', 'smoke'], 'wnut17': [None, 'smoke'], 'task_lm': ['sst2', 'wnut17'],
    'finetune_digits': [None, 'smoke'], 'ablate_digits_lr': [None, 'smoke'],
}


def _names():
  return sorted(p.stem for p in CONFIGS.glob('*.py')
                if p.stem not in ('__init__', *STUDIES))


def test_every_config_file_is_listed():
  assert set(_names()) == set(MODES)


@pytest.mark.parametrize('name', sorted(MODES))
def test_every_mode_and_sweep_variant_validates(name):
  module = importlib.import_module(f'configs.{name}')
  for mode in MODES[name]:
    config = module.get_config(mode)
    validation.validate(config)
    if hasattr(module, 'sweep') and (mode is None or mode in ('smoke', 'demo', 'copy')):
      for variant in module.sweep(mode):
        try:
          validation.validate(sweeps.apply_overrides(config, variant))
        except validation.ConfigError as e:
          raise AssertionError(f'{name}:{mode} variant {variant["name"]}: {e}') from None
