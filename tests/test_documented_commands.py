"""Every `python -m experiments.<command> ...` that README.md and docs/*.md show names a
command that exists, flags it defines, and (for the commands that take `--config`) a config
file, mode and overrides that load and validate as the command would validate them.
Optional flags shown in brackets (`[--beam_size=5]`) count too. Nothing is trained here:
the commands' runs are tested in tests/experiments."""

import pathlib
import re
import shlex

import pytest
from absl import flags
from ml_collections import config_flags

from seqnets.ablation import sweeps
from seqnets.analysis import echo_state_study
from seqnets.analysis import gradient_flow_study
from seqnets.training import validation

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / 'README.md', *sorted((ROOT / 'docs').glob('*.md'))]
# absl's own flags, accepted by every command.
ABSL_FLAGS = {'verbosity', 'v', 'logtostderr', 'alsologtostderr', 'log_dir', 'help'}
CONFIG_CHECKS = {
    'main': validation.validate,
    'echo_state': echo_state_study.check_config,
    'gradient_flow': gradient_flow_study.check_config,
}


def documented_commands():
  """(page, command, argv) for every command shown, `\\`-continued lines joined."""
  found = []
  for page in PAGES:
    text = re.sub(r'\\\n\s*', ' ', page.read_text())
    for match in re.finditer(r'python -m experiments\.(\w+)([^`\n|]*)', text):
      args = match.group(2).split('  #')[0].replace('[', '').replace(']', '')
      found.append((page.name, match.group(1), shlex.split(args)))
  return found


COMMANDS = documented_commands()


def defined_flags(command: str) -> set[str]:
  source = ''.join((ROOT / 'experiments' / f'{name}.py').read_text()
                   for name in (command, 'runtime'))
  return set(re.findall(r"DEFINE_\w+\(\s*'(\w+)'", source)) | ABSL_FLAGS


def test_the_pages_show_commands():
  assert len(COMMANDS) > 40
  assert {command for _, command, _ in COMMANDS} >= {
      'main', 'ablate', 'evaluate', 'generate', 'decode', 'echo_state', 'gradient_flow'}


@pytest.mark.parametrize('page,command,argv', COMMANDS,
                         ids=[f'{page}:{command}:{i}' for i, (page, command, _) in enumerate(COMMANDS)])
def test_documented_command_parses_and_validates(page, command, argv):
  assert (ROOT / 'experiments' / f'{command}.py').exists(), f'{page}: no experiments.{command}'
  names = {arg[2:].split('=')[0] for arg in argv if arg.startswith('--')}
  unknown = {name for name in names if name.split('.')[0] not in defined_flags(command)}
  assert not unknown, f'{page}: experiments.{command} defines no flag {sorted(unknown)}'
  config_args = [arg for arg in argv if arg.startswith('--config')]
  if not config_args:
    return
  config_args = ['prog', *(arg.replace('=configs/', f'={ROOT}/configs/', 1) for arg in config_args)]
  values = flags.FlagValues()
  config_flags.DEFINE_config_file('config', None, '', flag_values=values, lock_config=True,
                                  sys_argv=config_args)
  values(config_args)
  config = values.config
  if command == 'ablate':
    path = config_flags.get_config_filename(values['config'])
    for overrides in sweeps.load_sweep(path):
      validation.validate(sweeps.apply_overrides(config, overrides))
  else:
    CONFIG_CHECKS[command](config)
