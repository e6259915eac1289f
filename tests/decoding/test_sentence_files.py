"""Sentence files: every source line read back, one hypothesis line written per sentence."""

import pytest

from seqnets.decoding import sentence_files


def test_lines_round_trip_with_blank_lines_and_inner_newlines(tmp_path):
  path = tmp_path / 'hyp.txt'
  sentence_files.write_lines(path, ['ein hund', '', 'zwei\nzeilen'])
  assert path.read_bytes() == 'ein hund\n\nzwei zeilen\n'.encode('utf-8')
  assert sentence_files.read_lines(path) == ['ein hund', '', 'zwei zeilen']
  sentence_files.write_lines(path, [])
  assert path.read_bytes() == b'' and [p.name for p in tmp_path.iterdir()] == ['hyp.txt']


def test_bad_utf8_names_the_file_and_line(tmp_path):
  bad = tmp_path / 'bad.txt'
  bad.write_bytes(b'abcd\n\xff\n')
  with pytest.raises(ValueError, match='bad.txt:2'):
    sentence_files.read_lines(bad)
