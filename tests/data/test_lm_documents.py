"""Documents for language models: a window never holds two documents, every token is scored
once per pass, the state is reset exactly at a document's start, and evaluation reads each
document alone."""

import numpy as np
import pytest

from seqnets.data import lm_documents
from seqnets.data import lm_text

BOS = 2


def documents(lengths):
  """Document d holds BOS then tokens 1000 (d + 1) + position: every token names its document."""
  return [np.concatenate([[BOS], 1000 * (d + 1) + np.arange(1, n)]).astype(np.int32)
          for d, n in enumerate(lengths)]


def test_split_documents_drops_blank_ones():
  assert lm_documents.split_documents('a b\n\n\nc\n\n\n \n\n\nd', '\n\n\n') == ['a b', 'c', 'd']
  assert lm_documents.split_documents('a\n\n\nb', '') == ['a\n\n\nb']
  vocab = lm_text.build_vocabulary([list('ab')])
  np.testing.assert_array_equal(lm_documents.encode_document(vocab, list('ba')),
                                [vocab.id('<s>'), vocab.id('b'), vocab.id('a')])


@pytest.mark.parametrize('window', [1, 4, 7])
def test_every_token_scored_once_per_pass_and_windows_never_mix_documents(window):
  docs = documents([3, 9, 2, 15, 6, 4, 11])
  streams = lm_documents.DocumentStreams(docs, batch_size=3, window=window)
  for pass_index in range(2):
    start = sum(streams.steps_in_pass(p) for p in range(pass_index))
    scored = []
    previous_end = [None] * 3
    for step in range(start, start + streams.steps_in_pass(pass_index)):
      batch = streams.batch(step)
      for row in range(3):
        n = batch['lengths'][row]
        assert batch['weights'][row].sum() == n and not batch['weights'][row, n:].any()
        if n == 0:
          assert batch['reset'][row] == 1
          previous_end[row] = None
          continue
        inputs, targets = batch['inputs'][row, :n], batch['targets'][row, :n]
        owners = set((targets // 1000).tolist()) | set((inputs[inputs != BOS] // 1000).tolist())
        assert len(owners) == 1                                    # one document per window
        starts_document = inputs[0] == BOS
        assert batch['reset'][row] == starts_document
        if not starts_document:                                    # the stream goes on
          assert previous_end[row] is not None and inputs[0] == previous_end[row]
        previous_end[row] = targets[-1]
        scored.extend(targets.tolist())
    expected = sorted(t for d in docs for t in d[1:].tolist())
    assert sorted(scored) == expected


def test_batches_are_deterministic_in_the_step_and_passes_differ():
  docs = documents([5, 8, 3, 12, 6, 9])
  first = lm_documents.DocumentStreams(docs, 2, 4)
  second = lm_documents.DocumentStreams(docs, 2, 4)
  steps = first.steps_in_pass(0) + first.steps_in_pass(1) + 2
  late = second.batch(steps - 1)                    # a resumed run asks for a late step first
  for step in range(steps):
    batch = first.batch(step)
  for key in late:
    np.testing.assert_array_equal(batch[key], late[key])
  orders = [[first.batch(s)['inputs'][:, 1].tolist() for s in range(first.steps_in_pass(0))]]
  offset = first.steps_in_pass(0)
  orders.append([first.batch(offset + s)['inputs'][:, 1].tolist()
                 for s in range(first.steps_in_pass(1))])
  assert orders[0] != orders[1]


def test_errors_name_what_is_wrong():
  with pytest.raises(ValueError, match='2 documents: too few for 3 streams'):
    lm_documents.DocumentStreams(documents([4, 4]), 3, 4)
  with pytest.raises(ValueError, match='document 1 has nothing to predict'):
    lm_documents.DocumentStreams([np.array([BOS, 5]), np.array([BOS])], 1, 4)


def test_document_rows_evaluate_each_document_alone():
  docs = documents([3, 9, 2])
  rows = lm_documents.document_rows(docs, row_length=4, context=2)
  alone = [lm_text.evaluation_rows(d, 4, 2) for d in docs]
  assert len(rows['inputs']) == sum(len(a['inputs']) for a in alone)
  scored = rows['targets'][rows['weights'] > 0]
  assert sorted(scored.tolist()) == sorted(t for d in docs for t in d[1:].tolist())
  for row, n in zip(rows['inputs'], rows['lengths']):
    tokens = row[:n]
    assert len(set((tokens[tokens != BOS] // 1000).tolist())) <= 1
