import numpy as np
import pytest

from seqnets.data import text_classification as tc
from seqnets.data.vocab import Vocabulary, tokenize


def test_tokenize_worked_example():
  assert tokenize("It's a GOOD film, isn't it?") == ["it's", 'a', 'good', 'film', ',', "isn't", 'it', '?']


def test_vocabulary_orders_by_count_and_maps_oov_to_unk(tmp_path):
  vocab = Vocabulary.build([['b', 'a', 'b'], ['c', 'b', 'a']], min_count=2)
  assert vocab.tokens == ('<pad>', '<unk>', 'b', 'a')
  np.testing.assert_array_equal(vocab.encode(['a', 'zzz', 'b']), [3, 1, 2])
  assert vocab.decode([3, 1, 0]) == ['a', '<unk>']
  vocab.save(tmp_path / 'v.txt')
  assert Vocabulary.load(tmp_path / 'v.txt') == vocab
  assert len(Vocabulary.build([['a', 'b', 'c']], max_size=3)) == 3


def test_reads_glue_tsv_with_header(tmp_path):
  path = tmp_path / 'train.tsv'
  path.write_text('sentence\tlabel\nhide new secretions \t0\nit \'s charming . \t1\n')
  assert tc.read_examples(path) == [('hide new secretions', 0), ("it 's charming .", 1)]


def test_reads_label_space_text(tmp_path):
  path = tmp_path / 'stsa.binary.dev'
  path.write_text('1 a stirring , funny film\n0 apparently reassembled\n')
  assert tc.read_examples(path) == [('a stirring , funny film', 1), ('apparently reassembled', 0)]


def test_reads_csv_with_other_column_names(tmp_path):
  path = tmp_path / 'x.csv'
  path.write_text('label,text\n2,"hello, world"\n')
  assert tc.read_examples(path, text_column='text') == [('hello, world', 2)]


@pytest.mark.parametrize('content,message', [
    ('sentence\tlabel\ngood\t1\nbad\n', r'train.tsv:3: 1 fields, the header has 2'),
    ('sentence\tlabel\ngood\tpositive\n', r"train.tsv:2: label 'positive' is not an integer"),
    ('sentence\tlabel\n \t1\n', r'train.tsv:2: empty text'),
    ('text\tlabel\ngood\t1\n', r"train.tsv:1: header .* has no column 'sentence'"),
    ('', r'train.tsv: empty file'),
])
def test_malformed_rows_name_file_and_line(tmp_path, content, message):
  path = tmp_path / 'train.tsv'
  path.write_text(content)
  with pytest.raises(ValueError, match=message):
    tc.read_examples(path)


def test_make_batch_pads_and_cuts():
  vocab = Vocabulary.build([['a', 'b']])
  batch = tc.make_batch([['a', 'b', 'a'], ['zzz']], [1, 0], vocab, pad_to=2)
  np.testing.assert_array_equal(batch['inputs'], [[vocab.encode(['a'])[0], vocab.encode(['b'])[0]], [1, 0]])
  np.testing.assert_array_equal(batch['lengths'], [2, 1])
  np.testing.assert_array_equal(batch['labels'], [1, 0])


@pytest.mark.parametrize('name,content,message', [
    ('train.tsv', b'sentence\tlabel\ngood\t1\nbad \xff\t0\n',
     'train.tsv:3: invalid UTF-8 at byte 26'),
    ('train.txt', b'1 caf\xc3\xa9\n0 na\xefve\n', 'train.txt:2: invalid UTF-8 at byte 12'),
    ('train.tsv', b'\xef\xbb\xbfsentence\tlabel\n\xc3\t1\n',   # the byte-order mark counts
     'train.tsv:2: invalid UTF-8 at byte 18'),
])
def test_invalid_utf8_names_file_and_byte(tmp_path, name, content, message):
  path = tmp_path / name
  path.write_bytes(content)
  with pytest.raises(ValueError) as error:
    tc.read_examples(path)
  assert str(error.value) == f'{tmp_path}/{message}'


@pytest.mark.parametrize('encoding,offset,why', [
    ('utf-16', 0, 'byte-order mark'),       # with a byte-order mark
    ('utf-16-le', 1, 'NUL byte'),
    ('utf-16-be', 0, 'NUL byte'),
])
def test_utf16_file_is_named_as_such(tmp_path, encoding, offset, why):
  path = tmp_path / 'train.tsv'
  path.write_bytes('sentence\tlabel\ngood\t1\n'.encode(encoding))
  with pytest.raises(ValueError) as error:
    tc.read_examples(path)
  assert str(error.value) == (f'{path}: looks like UTF-16 ({why} at byte {offset}); '
                              'convert it to UTF-8')


@pytest.mark.parametrize('name,content', [
    ('train.tsv', 'sentence\tlabel\ngood\t1\n'),
    ('train.csv', 'sentence,label\ngood,1\n'),
    ('train.txt', '1 good\n'),
])
def test_utf8_byte_order_mark_is_skipped(tmp_path, name, content):
  path = tmp_path / name
  path.write_bytes(content.encode('utf-8-sig'))
  assert tc.read_examples(path) == [('good', 1)]


@pytest.mark.parametrize('name', ['train.tsv', 'train.csv'])
def test_oversized_field_names_file_and_line(tmp_path, name):
  sep = '\t' if name.endswith('.tsv') else ','
  path = tmp_path / name
  path.write_text(f'sentence{sep}label\ngood{sep}1\n{"x" * 200_000}{sep}0\n')
  with pytest.raises(ValueError) as error:
    tc.read_examples(path)
  assert str(error.value).startswith(f'{path}:3: field larger than field limit')


def test_multiline_csv_record_is_named_by_its_first_line(tmp_path):
  path = tmp_path / 'train.csv'
  path.write_text('sentence,label\n"two\nlines",1\n"three\nmore\nlines",x\n')
  with pytest.raises(ValueError) as error:
    tc.read_examples(path)
  assert str(error.value) == f"{path}:4: label 'x' is not an integer"
  path.write_text('sentence,label\n"two\nlines",1\n"one line",0\n"two\nlines",1\n')
  assert [line for _, _, line in tc.read_examples_with_lines(path)] == [2, 4, 5]


@pytest.mark.parametrize('name', ['train.tsv', 'train.csv', 'train.txt'])
@pytest.mark.parametrize('content,problem', [
    ('', 'empty file'), (' \n\n', 'empty file'), ('\ufeff', 'empty file')])
def test_empty_file_is_an_error_in_every_format(tmp_path, name, content, problem):
  path = tmp_path / name
  path.write_bytes(content.encode('utf-8'))
  with pytest.raises(ValueError) as error:
    tc.read_examples(path)
  assert str(error.value) == f'{path}: {problem}'


@pytest.mark.parametrize('name,content', [
    ('train.tsv', 'sentence\tlabel\n'), ('train.csv', 'sentence,label\n\n'),
])
def test_file_without_examples_is_an_error(tmp_path, name, content):
  path = tmp_path / name
  path.write_text(content)
  with pytest.raises(ValueError) as error:
    tc.read_examples(path)
  assert str(error.value) == f'{path}: no examples'


def test_read_examples_with_lines_gives_the_record_lines(tmp_path):
  path = tmp_path / 'dev.txt'
  path.write_text('1 good\n\n0 bad\n')
  assert tc.read_examples_with_lines(path) == [('good', 1, 1), ('bad', 0, 3)]
  assert tc.read_examples(path) == [('good', 1), ('bad', 0)]


def test_check_labels_known_names_the_first_unknown_label(tmp_path):
  train, dev = tmp_path / 'train.tsv', tmp_path / 'dev.tsv'
  train.write_text('sentence\tlabel\ngood\t1\nbad\t0\n')
  dev.write_text('sentence\tlabel\nfine\t1\nodd\t2\nodder\t3\n')
  train_labels = {label for _, label in tc.read_examples(train)}
  dev_examples = tc.read_examples_with_lines(dev)
  with pytest.raises(ValueError) as error:
    tc.check_labels_known(dev, dev_examples, train_labels, train)
  assert str(error.value) == f'{dev}:3: label 2 never appears in the training data ({train})'
  tc.check_labels_known(dev, dev_examples, {0, 1, 2, 3}, train)
