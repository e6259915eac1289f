"""Tokens, vocabularies, truncated-BPTT streams and evaluation rows for language models."""

import numpy as np
import pytest

from seqnets.data import lm_text


def test_tokenize_and_detokenize():
  text = 'To be, or not\n\nthat is it.\n'
  assert lm_text.tokenize(text, 'char') == list(text)
  words = lm_text.tokenize(text, 'word')
  assert words == ['To', 'be', ',', 'or', 'not', '</s>', 'that', 'is', 'it', '.', '</s>']
  assert lm_text.tokenize('A b', 'word', lowercase=True) == ['a', 'b', '</s>']
  assert lm_text.detokenize(words, 'word') == 'To be , or not\nthat is it .\n'
  assert lm_text.detokenize(['<s>', *text], 'char') == text
  with pytest.raises(ValueError, match="level='byte'"):
    lm_text.tokenize(text, 'byte')


def test_vocabulary_specials_first():
  vocab = lm_text.build_vocabulary([list('abbccc')], min_count=2)
  assert vocab.tokens == ('<pad>', '<unk>', '<s>', '</s>', 'c', 'b')
  assert vocab.id('</s>') == 3 and vocab.id('z') == vocab.unk_id
  assert len(lm_text.build_vocabulary([list('abbccc')], max_size=5)) == 5


def passes(ids, batch_size, k1, k2, steps):
  return [lm_text.stream_batch(ids, batch_size, k1, k2, s) for s in range(steps)]


@pytest.mark.parametrize('k1,k2', [(5, 5), (3, 7), (1, 4)])
def test_streams_score_every_position_once_and_continue(k1, k2):
  ids = np.arange(1000, dtype=np.int32)                   # token value = its position
  batch_size = 4
  windows = lm_text.num_windows(len(ids), batch_size, k1, k2)
  batches = passes(ids, batch_size, k1, k2, windows)
  for b in batches:
    np.testing.assert_array_equal(b['targets'], b['inputs'] + 1)
    np.testing.assert_array_equal(b['lengths'], k2)
  assert [int(b['reset'][0]) for b in batches] == [1] + [0] * (windows - 1)
  for row in range(batch_size):
    # Each window starts k1 after the previous one: the carried state is that after k1 steps.
    starts = [b['inputs'][row, 0] for b in batches]
    np.testing.assert_array_equal(np.diff(starts), k1)
    scored = np.concatenate([b['targets'][row][b['weights'][row] > 0] for b in batches])
    np.testing.assert_array_equal(scored, np.arange(scored[0], scored[0] + len(scored)))
    assert scored[0] == starts[0] + 1                        # from the stream's first target on
  # Streams do not overlap: no position is scored twice in a pass.
  everything = np.concatenate([b['targets'][b['weights'] > 0] for b in batches])
  assert len(np.unique(everything)) == len(everything)


def test_passes_shift_the_stream_boundaries():
  ids = np.arange(500, dtype=np.int32)
  windows = lm_text.num_windows(len(ids), 4, 8, 8)
  offsets = {int(lm_text.stream_batch(ids, 4, 8, 8, p * windows)['inputs'][0, 0])
             for p in range(6)}
  assert len(offsets) > 1 and all(0 <= o < 8 for o in offsets)


def test_stream_size_errors():
  with pytest.raises(ValueError, match='has 30 tokens: too few for 4 streams of 8 tokens'):
    lm_text.check_stream_size(30, 4, 8, 8)
  with pytest.raises(ValueError, match='backprop_steps=4 must be >= update_steps=8'):
    lm_text.check_stream_size(1000, 4, 8, 4)


@pytest.mark.parametrize('length,context', [(7, 0), (7, 3), (50, 10), (4, 20)])
def test_evaluation_rows_predict_every_token_once_with_its_context(length, context):
  ids = np.arange(1, 40, dtype=np.int32)
  rows = lm_text.evaluation_rows(ids, length, context)
  assert rows['inputs'].shape[1] == length + context
  scored = []
  for inputs, targets, weights, n in zip(rows['inputs'], rows['targets'], rows['weights'],
                                         rows['lengths']):
    np.testing.assert_array_equal(weights[n:], 0)
    np.testing.assert_array_equal(targets[:n], inputs[:n] + 1)       # the next token
    first = int(np.argmax(weights > 0))
    # The row starts at the text's start or `context` tokens before its first scored token.
    assert inputs[0] == 1 or first == context
    scored.extend(targets[weights > 0].tolist())
  assert scored == ids[1:].tolist()
