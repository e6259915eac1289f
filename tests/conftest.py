"""Test-wide set-up: 8 fake CPU devices and fast compilation, set before JAX is imported
anywhere, and one compilation cache for the whole session.

Many tests train the same small models (often in subprocesses); JAX's persistent
compilation cache lets every process after the first load the compiled programs
instead of compiling them again. The cache lives in a fresh directory per session
(created by the first process, inherited by pytest-xdist workers and subprocesses),
so no result depends on an earlier session.
"""

import os
import tempfile

import numpy as np
import pytest

# The tests compile many small programs and run each for a few steps: LLVM's optimisation
# passes cost more time than they save (a compile-bound test runs about a quarter faster
# without them), and so do XLA:CPU's newer fusion emitters (turning them off, XLA's
# classic elemental emitters, took another third off the suite's CPU time; jaxlib 0.10.2).
# Splitting each program into several LLVM modules to compile them in parallel only adds
# work when every core already runs a test worker (about 8 % of a compile-bound test file's
# CPU time, measured back to back). Commands the tests start as subprocesses take the same
# flags from SEQNETS_TEST_XLA_FLAGS (without the 8 devices, unless they ask for devices).
os.environ.setdefault('SEQNETS_TEST_XLA_FLAGS',
                      '--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false '
                      '--xla_cpu_parallel_codegen_split_count=1')
os.environ['XLA_FLAGS'] = ' '.join([
    os.environ.get('XLA_FLAGS', ''), os.environ['SEQNETS_TEST_XLA_FLAGS'],
    '--xla_force_host_platform_device_count=8']).strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
if 'JAX_COMPILATION_CACHE_DIR' not in os.environ:   # (not setdefault: mkdtemp would run in every worker)
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='seqnets-jax-cache-')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.2')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')


PEOPLE, PLACES, OTHER = ['Ann', 'Bob', 'Éva'], ['Rome', 'Oslo'], ['saw', 'the', 'met', 'in', 'a']


def _write_tagged_corpus(path, count, seed, separator='\n'):
  """A CoNLL file (token<TAB>BIO tag) of `count` made-up sentences; `separator` ends each."""
  rng = np.random.default_rng(seed)
  lines = []
  for _ in range(count):
    for _ in range(rng.integers(1, 10)):
      kind = rng.integers(3)
      if kind == 0:
        lines += [f'{rng.choice(PEOPLE)}\tB-PER']
        if rng.random() < 0.5:
          lines += ['Smith\tI-PER']
      elif kind == 1:
        lines += [f'{rng.choice(PLACES)}\tB-LOC']
      else:
        lines += [f'{rng.choice(OTHER)}\tO']
    lines.append(separator.rstrip('\n'))
  path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
  return path


@pytest.fixture
def tagged_files(tmp_path):
  """(train, dev) CoNLL files of made-up BIO-tagged sentences (60 and 12; the training
  file's sentences end with tab-only lines, as some corpora's do)."""
  return (_write_tagged_corpus(tmp_path / 'train.conll', 60, 0, '\t\n'),
          _write_tagged_corpus(tmp_path / 'dev.conll', 12, 1))
