"""The word-vector reader: word2vec text and binary, GloVe, fastText .vec, plain or gzip,
streamed; duplicates, lookup with lowercasing, and errors naming file and line."""

import gzip

import numpy as np
import pytest

from seqnets.data import word_vectors

WORDS = ['the', 'Movie', 'movie', 'film', 'café', 'New_York']
VECTORS = (np.arange(len(WORDS) * 3, dtype=np.float32).reshape(-1, 3) - 4) / 8


def text_file(words=WORDS, vectors=VECTORS, header=True, trailing=' ') -> bytes:
  """word2vec's own text output ends every line with a space; GloVe's does not."""
  lines = [f'{len(words)} {vectors.shape[1]}'] if header else []
  lines += [w + ' ' + ' '.join(repr(float(x)) for x in v) + trailing for w, v in zip(words, vectors)]
  return ('\n'.join(lines) + '\n').encode()


def binary_file(words=WORDS, vectors=VECTORS, newline=True, count=None) -> bytes:
  out = f'{len(words) if count is None else count} {vectors.shape[1]}\n'.encode()
  for word, vector in zip(words, vectors):
    out += word.encode() + b' ' + vector.astype('<f4').tobytes() + (b'\n' if newline else b'')
  return out


FILES = {
    'word2vec': lambda: text_file(),
    'glove': lambda: text_file(header=False, trailing=''),
    'binary': lambda: binary_file(),
    'binary_without_newlines': lambda: binary_file(newline=False),
}


def write(tmp_path, data: bytes, name='vectors', compress=False):
  path = tmp_path / name
  path.write_bytes(gzip.compress(data) if compress else data)
  return path


@pytest.mark.parametrize('compress', [False, True], ids=['plain', 'gzip'])
@pytest.mark.parametrize('kind', sorted(FILES))
def test_every_format_reads_back_exactly_and_is_detected(tmp_path, kind, compress):
  path = write(tmp_path, FILES[kind](), 'vectors.txt', compress)    # the name says nothing
  found = word_vectors.read(path)
  assert found.header.format == kind.removesuffix('_without_newlines')
  assert found.dim == 3 and found.words == tuple(WORDS) and found.records == len(WORDS)
  np.testing.assert_array_equal(found.vectors, VECTORS)
  assert found.vectors.dtype == np.float32
  assert word_vectors.read_header(path).format == found.header.format
  assert list(word_vectors.read_words(path)) == WORDS
  assert list(word_vectors.read_words(path, max_words=2)) == WORDS[:2]


@pytest.mark.parametrize('kind', sorted(FILES))
def test_only_the_wanted_rows_are_kept(tmp_path, kind):
  path = write(tmp_path, FILES[kind]())
  found = word_vectors.read(path, wanted={'film', 'the', 'absent'})
  assert found.words == ('the', 'film')
  np.testing.assert_array_equal(found.vectors, VECTORS[[0, 3]])
  assert found.records == len(WORDS)
  folded = word_vectors.read(path, wanted={'movie'}, fold_case=True)
  assert folded.words == ('Movie', 'movie')


def test_max_words_stops_reading_there(tmp_path):
  data = text_file() + b'broken line\n'          # past the limit: never read
  path = write(tmp_path, data.replace(b'6 3', b'7 3', 1))
  found = word_vectors.read(path, max_words=2)
  assert found.words == ('the', 'Movie') and found.records == 2
  with pytest.raises(ValueError, match=r'vectors:8: expected 3 numbers, got 1'):
    word_vectors.read(path)


def test_the_first_of_duplicate_words_wins(tmp_path):
  words = ['cat', 'dog', 'cat']
  vectors = np.eye(3, dtype=np.float32)
  for data in (text_file(words, vectors), binary_file(words, vectors)):
    path = write(tmp_path, data)
    found = word_vectors.read(path)
    assert found.words == ('cat', 'dog')
    np.testing.assert_array_equal(found.vectors, vectors[:2])
    assert list(word_vectors.read_words(path)) == ['cat', 'dog']


def test_glove_words_may_hold_spaces(tmp_path):
  path = write(tmp_path, b'the 0 0\n. . . 1 2\nat home 3 4\n\xc2\xa0 5 6\n')   # U+00A0 is a word
  found = word_vectors.read(path)
  assert found.header.format == 'glove' and found.dim == 2
  assert found.words == ('the', '. . .', 'at home', '\xa0')
  np.testing.assert_array_equal(found.vectors, [[0, 0], [1, 2], [3, 4], [5, 6]])


def test_crlf_and_a_byte_order_mark_are_accepted(tmp_path):
  path = write(tmp_path, b'\xef\xbb\xbf' + text_file().replace(b'\n', b'\r\n'))
  assert word_vectors.read(path).words == tuple(WORDS)


def test_an_explicit_format_is_obeyed(tmp_path):
  path = write(tmp_path, b'7 1.5\n8 2.5\n')          # auto: a header line '7 1'? no: '1.5'
  assert word_vectors.read(path).header.format == 'glove'
  path = write(tmp_path, b'7 1\n8 2\n')              # auto reads '7 1' as a header
  with pytest.raises(ValueError, match='header says 7 words, the file has 1'):
    word_vectors.read(path)
  found = word_vectors.read(path, format='glove')
  assert found.words == ('7', '8') and found.vectors.ravel().tolist() == [1, 2]
  with pytest.raises(ValueError, match="format='x'; valid"):
    word_vectors.read(path, format='x')


def test_lookup_as_written_then_lowercase_then_any_case(tmp_path):
  path = write(tmp_path, text_file(['Paris', 'apple', 'Apple', 'NASA'], np.eye(4, dtype=np.float32)))
  vocabulary = ['<pad>', '<unk>', 'Apple', 'APPLE', 'paris', 'nasa', 'zzz']
  found = word_vectors.read(path, word_vectors.wanted_words(vocabulary, True), fold_case=True)
  rows = word_vectors.lookup(found, vocabulary, lowercase=True, skip=('<pad>', '<unk>'))
  words = [found.words[r] if r >= 0 else None for r in rows]
  assert words == [None, None, 'Apple', 'apple', 'Paris', 'NASA', None]
  exact = word_vectors.lookup(word_vectors.read(path), vocabulary)
  assert [found.words[r] if r >= 0 else None for r in exact] == [None, None, 'Apple', None, None,
                                                                 None, None]


@pytest.mark.parametrize('data,message', [
    (b'', r'vectors: empty file'),
    (b'\n', r'vectors:1: empty first line'),
    (b'3 3\nthe 1 2 3\ncat 1 2\n', r'vectors:3: expected 3 numbers, got 2'),
    (b'the 1 2 3\ncat 1 2 3 4\n', r'vectors:2: expected 3 numbers, got 4'),
    (b'2 3\nthe 1 2 3\ncat 1 x 3\n', r"vectors:3: number 2 is 'x', not a number"),
    (b'the 1 2 nan\n', r"the vector of 'the' is not finite"),
    (b'2 3\nthe 1 2 3\n\ncat 1 2 3\n', r'vectors:3: empty line'),
    (b'2 3\nthe 1 2 3\n 1 2 3\n', r'vectors:3: a record starts with a space'),
    (b'2 3\nthe 1 2 3\ncaf\xe9 1 2 3\n', r'vectors:3: invalid UTF-8'),
    (b'word\n', r"vectors:1: expected a header 'count dim' or a vector line"),
    (b'2 0\n', r"vectors:1: bad header '2 0': the dimension must be >= 1"),
    (b'3 3\nthe 1 2 3\n', r'vectors: the header says 3 words, the file has 1'),
])
def test_errors_name_the_file_and_line(tmp_path, data, message):
  path = write(tmp_path, data)
  with pytest.raises(ValueError, match=message):
    word_vectors.read(path)


def test_a_wrong_dimension_names_the_line_in_a_large_file(tmp_path):
  vectors = np.ones((20, 300), np.float32)
  data = text_file([f'w{i}' for i in range(20)], vectors).split(b'\n')
  data[16] = data[16].rsplit(b' ', 2)[0]           # line 17: 299 numbers
  path = write(tmp_path, b'\n'.join(data), 'vectors.txt')
  with pytest.raises(ValueError, match=r'^\S*vectors\.txt:17: expected 300 numbers, got 299$'):
    word_vectors.read(path)


def test_a_bad_header_for_an_explicit_format(tmp_path):
  path = write(tmp_path, b'the 1 2 3\n')
  for kind in ('word2vec', 'binary'):
    with pytest.raises(ValueError, match=rf"vectors:1: expected the header 'count dim' \(two "
                                         rf"integers\) of a {kind} file, got 'the 1 2 3'"):
      word_vectors.read(path, format=kind)


@pytest.mark.parametrize('compress', [False, True], ids=['plain', 'gzip'])
def test_binary_errors_name_the_record(tmp_path, compress):
  cut = binary_file()[:-7]                         # inside the last record's numbers
  path = write(tmp_path, cut, compress=compress)
  with pytest.raises(ValueError, match=r'vectors: record 6 \(byte \d+\): cut short: 6 of the '
                                       r'12 bytes of its 3 numbers'):
    word_vectors.read(path)
  path = write(tmp_path, binary_file()[:-14] + b'x' * 3, compress=compress)
  with pytest.raises(ValueError, match=r'record 6 \(byte \d+\): the file ends inside the word'):
    word_vectors.read(path)
  path = write(tmp_path, binary_file(count=7), compress=compress)
  with pytest.raises(ValueError, match='the header says 7 words, the file has 6'):
    word_vectors.read(path)
  path = write(tmp_path, b'1 3\ncaf\xe9 ' + VECTORS[0].tobytes(), compress=compress)
  with pytest.raises(ValueError, match=r'record 1 \(byte 4\): invalid UTF-8'):
    word_vectors.read(path)


def test_a_damaged_gzip_file(tmp_path):
  path = write(tmp_path, gzip.compress(text_file())[:-12])
  with pytest.raises(ValueError, match='vectors: a damaged gzip file'):
    word_vectors.read(path)


def test_a_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match='no such file'):
    word_vectors.read(tmp_path / 'absent.txt')
