"""Atomic file writes: the content lands whole, no temporary file stays, an old file is replaced."""

import os
import stat

import pytest

from seqnets import files


def test_writes_text_and_bytes(tmp_path):
  files.write_atomically(tmp_path / 'a.txt', 'héllo\n')
  files.write_atomically(tmp_path / 'b.bin', b'\x00\xff')
  assert (tmp_path / 'a.txt').read_bytes() == 'héllo\n'.encode('utf-8')
  assert (tmp_path / 'b.bin').read_bytes() == b'\x00\xff'
  assert sorted(p.name for p in tmp_path.iterdir()) == ['a.txt', 'b.bin']    # no temporary file


def test_replaces_an_existing_file_whole_and_keeps_its_permissions(tmp_path):
  path = tmp_path / 'results.json'
  path.write_text('x' * 1000)
  path.chmod(0o640)
  files.write_atomically(str(path), '{}\n')
  assert path.read_text() == '{}\n'
  assert stat.S_IMODE(path.stat().st_mode) == 0o640
  assert os.listdir(tmp_path) == ['results.json']


def test_an_error_leaves_the_old_file_and_no_temporary_file(tmp_path):
  path = tmp_path / 'keep.txt'
  path.write_text('old')
  with pytest.raises(TypeError):
    files.write_atomically(path, 42)
  with pytest.raises(UnicodeEncodeError):
    files.write_atomically(path, 'é', encoding='ascii')
  assert path.read_text() == 'old' and os.listdir(tmp_path) == ['keep.txt']


def test_a_missing_directory_raises(tmp_path):
  with pytest.raises(FileNotFoundError):
    files.write_atomically(tmp_path / 'no' / 'file.txt', 'x')
