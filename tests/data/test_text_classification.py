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
