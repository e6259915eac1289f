import pytest

from seqnets.data.vocab import Vocabulary


def test_save_load_round_trip(tmp_path):
  vocab = Vocabulary.build([['b', 'a', 'b'], ['café', 'b', '!']])
  path = tmp_path / 'vocab.txt'
  vocab.save(path)
  assert path.read_text(encoding='utf-8') == '<pad>\n<unk>\nb\n!\na\ncafé\n'
  assert Vocabulary.load(path) == vocab


def test_load_keeps_a_last_token_without_newline(tmp_path):
  path = tmp_path / 'vocab.txt'
  path.write_text('<pad>\n<unk>\na\nb')
  assert Vocabulary.load(path).tokens == ('<pad>', '<unk>', 'a', 'b')


@pytest.mark.parametrize('content,message', [
    (b'', 'empty file'),
    (b'<pad>\n<unk>\ncaf\xe9\n', ':3: invalid UTF-8 at byte 15'),
    (b'\xff\xfe<\x00', 'looks like UTF-16 (byte-order mark at byte 0); convert it to UTF-8'),
    (b'<pad>\n<unk>\n\nb\n', ':3: empty token'),
    (b'a\nb\n', ": a Vocabulary starts with '<pad>', '<unk>'; got ('a', 'b')"),
])
def test_load_errors_name_the_file(tmp_path, content, message):
  path = tmp_path / 'vocab.txt'
  path.write_bytes(content)
  with pytest.raises(ValueError) as error:
    Vocabulary.load(path)
  separator = '' if message.startswith(':') else ': '
  assert str(error.value) == f'{path}{separator}{message}'
