"""What the command-line programs share that reads no flag: one-line messages for a bad
command line (with the valid keys of the config entry it names), and process settings
(malloc, JAX's persistent compilation cache, starting `jax.distributed` for a run over
several processes).

The programs in `experiments/` parse their flags with absl and call these; the rest of
the library never does.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.util
import os
import sys
from collections.abc import Mapping, MutableMapping

USAGE_ERROR = 2

# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def flag_error_line(error: BaseException) -> str:
  """One line for absl's flag error `error`: its first and last lines, and for an override
  that gives a config entry a plain value (`--config.model.cell=gru`) how to set it."""
  lines = [l.strip() for l in str(error).splitlines() if l.strip()]
  message = lines[0] + (f' {lines[-1]}' if len(lines) > 1 else '') if lines else type(error).__name__
  if 'as a ConfigDict' in message:
    name = message.split('--', 1)[-1].split('=', 1)[0]
    message = (f'--{name} is an entry of several keys: set one of them (--{name}.name=gru) '
               f'or give the whole entry, --{name}="{{\'name\': \'gru\', \'hidden_size\': 64}}"')
  return message


def unknown_field(error: BaseException, argv: list[str]) -> str:
  """`--config.a.b=v: the config has no field 'b'` (with ml_collections' did-you-mean hint)."""
  message = error
  while isinstance(message, BaseException) and message.args:
    message = message.args[0]
  name, _, hint = str(message).partition('\n')
  name = name.strip('\'"')
  override = next((a for a in argv[1:] if a.startswith('--config.')
                   and name in a.partition('=')[0].split('.')), None)
  if override is None:
    return f'{type(error).__name__} while parsing the command line: {message}'
  parent = override.partition('=')[0][len('--config.'):].rpartition('.')[0]
  valid = keys_at(argv, parent)
  if valid is not None:
    hint = (f'{hint.strip()}; ' if hint.strip() else '') + f'valid: {valid}'
  if '.' in parent:   # An entry (e.g. model.cell) without this key: give the entry whole.
    hint = (f'{hint.strip()}; ' if hint.strip() else '') + (
        f'the config file\'s {parent} has no such key: give the whole entry, '
        f'--config.{parent}="{{...}}" (a Python dict)')
  return f'{override}: the config has no field {name!r}' + (f'; {hint.strip()}' if hint.strip() else '')


def keys_at(argv: list[str], path: str) -> list[str] | None:
  """The keys of `path` (e.g. 'model') in the config that `--config=FILE[:MODE]` names, or
  None when it cannot be loaded here."""
  spec = next((a.partition('=')[2] for a in argv[1:] if a.startswith('--config=')), None)
  if spec is None:
    return None
  file, _, mode = spec.partition(':')
  try:
    loader = importlib.util.spec_from_file_location('_config_for_error', file)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    node = module.get_config(mode or None)
    for key in filter(None, path.split('.')):
      node = node[key]
    return list(node.keys())
  except Exception:  # The error at hand is the one to report; this only adds a hint.
    return None


def start_processes(coordinator_address: str | None, num_processes: int | None,
                    process_id: int | None, environ: Mapping[str, str] = os.environ) -> None:
  """`jax.distributed.initialize` for a run over several processes, or nothing for one.

  With any of the three given (the --coordinator_address/--num_processes/--process_id
  flags), all three (ValueError otherwise), unless one process without a coordinator;
  with none, JAX's own cluster detection when `environ` declares several processes
  (`cluster_processes`).
  """
  import jax
  given = (coordinator_address, num_processes, process_id)
  if any(v is not None for v in given):
    if num_processes == 1 and not coordinator_address:
      return
    if None in given:
      raise ValueError('--coordinator_address, --num_processes and --process_id go together')
    jax.distributed.initialize(coordinator_address, num_processes=num_processes,
                               process_id=process_id)
  elif cluster_processes(environ) > 1:
    jax.distributed.initialize()


def cluster_processes(environ: Mapping[str, str]) -> int:
  """How many processes the cluster job in `environ` has, as JAX's cluster detection reads
  it, in its order: an Open MPI world (OMPI_COMM_WORLD_SIZE), a SLURM job's tasks
  (SLURM_NTASKS), or a Cloud TPU slice's hosts (TPU_PROCESS_ADDRESSES, else
  TPU_WORKER_HOSTNAMES, comma-separated, as GKE sets them) times its slices
  (MEGASCALE_NUM_SLICES); 1 outside a cluster job."""
  if 'OMPI_COMM_WORLD_SIZE' in environ:
    return _count(environ, 'OMPI_COMM_WORLD_SIZE')
  if 'SLURM_JOB_ID' in environ:
    return _count(environ, 'SLURM_NTASKS')
  hosts = environ.get('TPU_PROCESS_ADDRESSES', environ.get('TPU_WORKER_HOSTNAMES', ''))
  return len([h for h in hosts.split(',') if h.strip()] or [None]) * _count(
      environ, 'MEGASCALE_NUM_SLICES')


def _count(environ: Mapping[str, str], name: str) -> int:
  """The positive integer in `environ[name]` (1 when unset or empty)."""
  value = environ.get(name, '').strip() or '1'
  if not value.isdigit() or int(value) < 1:
    raise ValueError(f'environment variable {name}={environ[name]!r} is not a positive integer')
  return int(value)


COMPILATION_CACHE_VARIABLE = 'SEQNETS_COMPILATION_CACHE'
DEFAULT_COMPILATION_CACHE = '~/.cache/seqnets/jax'


def compilation_cache_dir(flag: str | None, environ: Mapping[str, str] = os.environ) -> str | None:
  """The directory of JAX's persistent compilation cache for a program, or None for none.

  In order: `flag` (the --compilation_cache flag), JAX's own JAX_COMPILATION_CACHE_DIR
  (kept as it is), $SEQNETS_COMPILATION_CACHE, `DEFAULT_COMPILATION_CACHE`. 'off' (in
  the flag or SEQNETS_COMPILATION_CACHE) is None; other paths come back absolute, `~`
  expanded.
  """
  if flag:
    chosen = flag
  elif environ.get('JAX_COMPILATION_CACHE_DIR'):
    return environ['JAX_COMPILATION_CACHE_DIR']
  else:
    chosen = environ.get(COMPILATION_CACHE_VARIABLE) or DEFAULT_COMPILATION_CACHE
  if chosen.strip().lower() == 'off':
    return None
  return os.path.abspath(os.path.expanduser(chosen))


def use_compilation_cache(flag: str | None,
                          environ: MutableMapping[str, str] = os.environ) -> str | None:
  """Turns JAX's persistent compilation cache on in `compilation_cache_dir(flag, environ)`, or
  off for None; returns the directory. Programs whose compilation JAX finds too quick to be
  worth keeping (jax_persistent_cache_min_compile_time_secs, 1 s by default) are not
  kept. Also sets `environ` (JAX_COMPILATION_CACHE_DIR, or JAX_ENABLE_COMPILATION_CACHE
  false) so that processes started from this one, such as an ablation's jobs, do the same.
  Call it before anything compiles. Without `flag`, a JAX_COMPILATION_CACHE_DIR in
  `environ` is left to JAX, which read it on import.
  """
  directory = compilation_cache_dir(flag, environ)
  if not flag and environ.get('JAX_COMPILATION_CACHE_DIR'):
    return directory
  import jax
  if directory is None:
    jax.config.update('jax_enable_compilation_cache', False)
    environ['JAX_ENABLE_COMPILATION_CACHE'] = 'false'
  else:
    jax.config.update('jax_enable_compilation_cache', True)
    jax.config.update('jax_compilation_cache_dir', directory)
    environ['JAX_COMPILATION_CACHE_DIR'] = directory
    environ.pop('JAX_ENABLE_COMPILATION_CACHE', None)
  return directory


def keep_freed_memory() -> None:
  """Keeps freed memory in glibc malloc instead of returning it to the OS.

  Same effect as MALLOC_MMAP_THRESHOLD_=32 MiB / MALLOC_TRIM_THRESHOLD_=4 GiB:
  XLA's per-step temporaries are then reused instead of being mmap'ed and
  page-faulted on every step (benchmarks/README.md measures the difference).
  Skipped when the user set either variable, or off glibc.
  """
  if 'MALLOC_MMAP_THRESHOLD_' in os.environ or 'MALLOC_TRIM_THRESHOLD_' in os.environ:
    return
  name = ctypes.util.find_library('c')
  if not name:
    return
  try:
    libc = ctypes.CDLL(name)
    libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
  except (OSError, AttributeError):
    pass


def app_usage_error(message: str):
  """Prints `error: message` and leaves with status 2."""
  print(f'error: {message}', file=sys.stderr)
  sys.exit(USAGE_ERROR)


@contextlib.contextmanager
def one_line_errors():
  """A user's mistake (a config field, a busy workdir, a bad or missing file) ends the
  program with one line naming it and status 2, not a traceback. Set
  SEQNETS_TRACEBACK=1 to see the traceback too."""
  from seqnets.training import checkpoints, validation, workdir_lock
  try:
    yield
  except (validation.ConfigError, workdir_lock.WorkdirBusyError, checkpoints.NoRestorableCheckpointError,
          FileNotFoundError, ValueError) as e:
    if os.environ.get('SEQNETS_TRACEBACK'):
      raise
    app_usage_error(str(e).splitlines()[0] if str(e) else type(e).__name__)
