"""Parallel text: pairs from plain or gzip files, word and SentencePiece tokenizers that travel
with a run, and length buckets that keep padding small."""

import gzip

import numpy as np
import pytest

from seqnets.data import parallel_text

SENTENCES = ['a dog runs on the grass .', 'two men play football in a park .',
             'a woman reads a book .', 'the child eats an apple .'] * 30


def test_read_pairs_plain_and_gzip(tmp_path):
  (tmp_path / 'src.txt').write_text('eins\nzwei\n\ndrei\n', encoding='utf-8')
  with gzip.open(tmp_path / 'tgt.gz', 'wt', encoding='utf-8') as f:
    f.write('one\ntwo\n\nthree\n')
  assert parallel_text.read_pairs(tmp_path / 'src.txt', tmp_path / 'tgt.gz') == [
      ('eins', 'one'), ('zwei', 'two'), ('', ''), ('drei', 'three')]
  (tmp_path / 'short.txt').write_text('one\n', encoding='utf-8')
  with pytest.raises(ValueError, match='src.txt has 4 lines but .*short.txt has 1'):
    parallel_text.read_pairs(tmp_path / 'src.txt', tmp_path / 'short.txt')
  with gzip.open(tmp_path / 'bad.gz', 'wb') as f:
    f.write(b'ok\n\xff\n')
  with pytest.raises(ValueError, match=r'bad.gz:2: invalid UTF-8 at byte 3 of the decompressed text'):
    parallel_text.read_pairs(tmp_path / 'bad.gz', tmp_path / 'bad.gz')


def test_word_tokenizer():
  tok = parallel_text.Tokenizer.train('word', SENTENCES, vocab_size=0, lowercase=True)
  assert tok.vocabulary[:4] == ('<pad>', '<unk>', '<s>', '</s>')
  ids = tok.encode('A Dog eats zebras .')
  assert tok.decode(ids) == 'a dog eats <unk> .' and ids.dtype == np.int32
  small = parallel_text.Tokenizer.train('word', SENTENCES, vocab_size=10)
  assert len(small) == 10


def test_sentencepiece_tokenizer_is_lossless_and_saved_whole():
  tok = parallel_text.Tokenizer.train('sentencepiece', SENTENCES, vocab_size=40)
  assert tok.vocabulary[:4] == ('<pad>', '<unk>', '<s>', '</s>') and len(tok) <= 40
  for sentence in SENTENCES[:4]:
    ids = tok.encode(sentence)
    assert ids.min() >= 4 and tok.decode(ids) == sentence
  again = parallel_text.Tokenizer.from_json(tok.to_json())
  np.testing.assert_array_equal(again.encode('a dog reads .'), tok.encode('a dog reads .'))
  assert again.decode([2, *tok.encode('a book'), 3, 0]) == 'a book'
  with pytest.raises(ValueError, match="tokenizer='bpe'"):
    parallel_text.Tokenizer.train('bpe', SENTENCES, 40)
