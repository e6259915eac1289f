"""`command_line.compilation_cache_dir` / `use_compilation_cache`: where the entry points keep
compiled programs, and what an existing setting keeps."""

import os

import jax
import pytest

from seqnets import command_line

HOME = os.path.expanduser('~')


@pytest.mark.parametrize('flag,environ,expected', [
    (None, {}, f'{HOME}/.cache/seqnets/jax'),
    (None, {'SEQNETS_COMPILATION_CACHE': '~/jc'}, f'{HOME}/jc'),
    (None, {'SEQNETS_COMPILATION_CACHE': 'off'}, None),
    (None, {'JAX_COMPILATION_CACHE_DIR': '/tmp/jax', 'SEQNETS_COMPILATION_CACHE': 'off'},
     '/tmp/jax'),
    ('/tmp/mine', {'JAX_COMPILATION_CACHE_DIR': '/tmp/jax'}, '/tmp/mine'),
    ('OFF', {'JAX_COMPILATION_CACHE_DIR': '/tmp/jax'}, None),
])
def test_the_flag_then_jax_then_seqnets_variable_then_the_default(flag, environ, expected):
  assert command_line.compilation_cache_dir(flag, environ) == expected


def test_the_setting_reaches_jax_and_the_processes_started_after(monkeypatch):
  updates = {}
  monkeypatch.setattr(jax.config, 'update', lambda name, value: updates.update({name: value}))
  environ = {}
  assert command_line.use_compilation_cache('/tmp/cache', environ) == '/tmp/cache'
  assert updates == {'jax_enable_compilation_cache': True,
                     'jax_compilation_cache_dir': '/tmp/cache'}
  assert environ == {'JAX_COMPILATION_CACHE_DIR': '/tmp/cache'}
  updates.clear()
  assert command_line.use_compilation_cache('off', environ) is None
  assert updates == {'jax_enable_compilation_cache': False}
  assert environ['JAX_ENABLE_COMPILATION_CACHE'] == 'false'
  updates.clear()
  kept = {'JAX_COMPILATION_CACHE_DIR': '/tmp/jax'}
  assert command_line.use_compilation_cache(None, kept) == '/tmp/jax'
  assert updates == {} and kept == {'JAX_COMPILATION_CACHE_DIR': '/tmp/jax'}
