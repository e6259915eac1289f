"""Test-wide set-up: 8 fake CPU devices, set before JAX is imported anywhere, and one
compilation cache for the whole session.

Many tests train the same small models (often in subprocesses); JAX's persistent
compilation cache lets every process after the first load the compiled programs
instead of compiling them again. The cache lives in a fresh directory per session
(created by the first process, inherited by pytest-xdist workers and subprocesses),
so no result depends on an earlier session.
"""

import os
import tempfile

os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', tempfile.mkdtemp(prefix='seqnets-jax-cache-'))
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0.2')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
