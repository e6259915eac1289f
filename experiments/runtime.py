"""Process-level settings shared by the entry points (never done by the library on import):
logging and malloc, JAX's persistent compilation cache, several processes
(`jax.distributed`), the workdir flag, one-line errors (also for the command line itself:
`app.run(main, flags_parser=runtime.parse_flags)`)."""

import os
import sys

from absl import flags
from absl import logging

from seqnets import command_line

_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0, for a run over several processes.')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Number of processes in the run.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process\'s index, 0 .. num_processes - 1.')
_COMPILATION_CACHE = flags.DEFINE_string(
    'compilation_cache', None, "Directory of JAX's persistent compilation cache, 'off' for none "
    f'(default: ${command_line.COMPILATION_CACHE_VARIABLE}, else '
    f'{command_line.DEFAULT_COMPILATION_CACHE}; a JAX_COMPILATION_CACHE_DIR already set is kept).')

app_usage_error = command_line.app_usage_error
one_line_errors = command_line.one_line_errors


def configure() -> None:
  """Quiets library INFO logs (orbax logs every save), tunes malloc, keeps compiled programs
  (`command_line.use_compilation_cache`), joins the other processes."""
  logging.set_verbosity(logging.WARNING)
  command_line.keep_freed_memory()
  command_line.use_compilation_cache(_COMPILATION_CACHE.value)
  initialize_distributed()


def initialize_distributed() -> None:
  """`command_line.start_processes` from --coordinator_address/--num_processes/--process_id
  (given in part: one line naming them, status 2)."""
  try:
    command_line.start_processes(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  except ValueError as e:
    app_usage_error(str(e))


def checked_workdir(workdir: str | None) -> str:
  if workdir is None or not workdir.strip():
    app_usage_error('--workdir is empty; name a directory for checkpoints, metrics and results')
  return workdir


def define_checkpoint_flag():
  """The --checkpoint flag of the programs that read a trained run."""
  return flags.DEFINE_string(
      'checkpoint', None, "Which checkpoint to read: 'latest', 'best', 'average' or a step "
      "number (default: 'best' when the run has one, else 'latest').")


def load_run(workdir: str | None, checkpoint: str | None):
  """`saved_run.load_run` of a checked --workdir and --checkpoint (a bad --checkpoint is a
  ValueError naming it)."""
  from seqnets.training import run_checkpoints, saved_run
  workdir = checked_workdir(workdir)
  return saved_run.load_run(workdir, run_checkpoints.parse(checkpoint, '--checkpoint'))


def say_checkpoint(run, seed_index: int = 0) -> None:
  """One line on stderr saying which checkpoint of `run` was read (printed once the
  program has done its work, so that a usage error stays the only line)."""
  print(f'{run.workdir}: read the {run.describe(seed_index)}', file=sys.stderr)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, but a bad command line (an unknown flag or `--config.<field>`, a
  value of the wrong type, a missing required flag, a config file or mode that does not
  load) ends with one line naming it and status 2, not a traceback or the usage text."""
  try:
    try:
      argv = flags.FLAGS(argv)
    except (AttributeError, KeyError) as e:  # ml_collections: an override naming no config field
      raise flags.Error(command_line.unknown_field(e, argv)) from e
    _check_config_files_loaded()
  except flags.Error as e:
    if os.environ.get('SEQNETS_TRACEBACK'):
      raise
    app_usage_error(command_line.flag_error_line(e))
  return argv


def _check_config_files_loaded() -> None:
  """Raises flags.Error for a config file that did not load (ml_collections raises that
  error only when the config is first used)."""
  from ml_collections import config_flags
  for name in list(flags.FLAGS):
    flag = flags.FLAGS[name]
    try:
      path = config_flags.get_config_filename(flag)
    except TypeError:  # Not a config flag.
      continue
    try:
      getattr(flag.value, 'keys', None)  # A config that did not load raises its error on any use.
    except OSError as e:
      reason = [l.strip() for l in str(e).splitlines() if l.strip()][-1]
      raise flags.Error(f'flag --{name}={path}: cannot load the config file: {reason}') from None
