"""Text made of documents: truncated BPTT whose state is reset at every document start.

Synopsis:
  texts = split_documents(text, separator='\\n\\n\\n')     # blank documents dropped
  documents = [encode_document(vocab, tokenize(t, 'char')) for t in texts]   # <s> first
  streams = DocumentStreams(documents, batch_size=32, window=128)
  batch = streams.batch(step)
  rows = document_rows(documents, row_length=256, context=64)

A document is `[<s>, t_1, .., t_n]`; every t_i is predicted, t_1 from `<s>`
and a zero state. In pass p the documents, in the order of a permutation drawn
from `default_rng([p])`, are dealt to `batch_size` streams (each to the stream
holding the fewest tokens so far). A stream reads its documents one after the
other in windows of `window` tokens; a window never holds two documents (a
document's last window is shorter, the rest padding), and a document's first
window is flagged `reset`, so no state and no gradient crosses a document
boundary. A pass lasts as long as its longest stream; streams that run out
give empty rows (length 0, reset) until it ends. Every token of every document
is scored exactly once per pass.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from seqnets.data import lm_text
from seqnets.data.vocab import Vocabulary

def split_documents(text: str, separator: str) -> list[str]:
  """The documents of `text` split at `separator` ('': the whole text is one);
  documents of whitespace only are dropped."""
  parts = text.split(separator) if separator else [text]
  return [part for part in parts if part.strip()]


def encode_document(vocab: Vocabulary, tokens: Sequence[str]) -> np.ndarray:
  """`[<s>, ids of tokens]` as int32."""
  return np.concatenate([[vocab.id(lm_text.BOS)], vocab.encode(list(tokens))]).astype(np.int32)


class DocumentStreams:
  """Training batches of truncated BPTT over documents (see the module docstring).

  `batch(step)` is deterministic in `step`: inputs, targets, weights `[B, window]`,
  lengths `[B]` (tokens in the row, 0 for an empty row) and reset `[B]`.
  """

  def __init__(self, documents: Sequence[np.ndarray], batch_size: int, window: int,
               what: str = 'the training text'):
    short = [i for i, d in enumerate(documents) if len(d) < 2]
    if short:
      raise ValueError(f'{what}: document {short[0]} has nothing to predict (fewer than 2 tokens)')
    if len(documents) < batch_size:
      raise ValueError(f'{what} has {len(documents)} documents: too few for {batch_size} streams '
                       f'(data.batch_size); each stream needs one document')
    self.documents = [np.asarray(d, np.int32) for d in documents]
    self.batch_size, self.window = batch_size, window
    self._pass_starts = [0]                                   # first step of pass p
    self._schedules: dict[int, list[list[tuple[int, int]]]] = {}

  def _schedule(self, pass_index: int) -> list[list[tuple[int, int]]]:
    """Per stream, its windows as (document, first input position)."""
    if pass_index not in self._schedules:
      if len(self._schedules) >= 4:
        self._schedules.pop(next(iter(self._schedules)))
      self._schedules[pass_index] = self._deal(pass_index)
    return self._schedules[pass_index]

  def _deal(self, pass_index: int) -> list[list[tuple[int, int]]]:
    order = np.random.default_rng([pass_index]).permutation(len(self.documents))
    loads = np.zeros(self.batch_size, np.int64)
    streams: list[list[tuple[int, int]]] = [[] for _ in range(self.batch_size)]
    for doc in order:
      stream = int(np.argmin(loads))
      predictions = len(self.documents[doc]) - 1
      streams[stream].extend((int(doc), start) for start in range(0, predictions, self.window))
      loads[stream] += predictions
    return streams

  def steps_in_pass(self, pass_index: int) -> int:
    return max(len(stream) for stream in self._schedule(pass_index))

  def _locate(self, step: int) -> tuple[int, int]:
    """(pass, step within the pass)."""
    while self._pass_starts[-1] <= step:
      passes = len(self._pass_starts) - 1
      self._pass_starts.append(self._pass_starts[-1] + self.steps_in_pass(passes))
    pass_index = int(np.searchsorted(self._pass_starts, step, side='right')) - 1
    return pass_index, step - self._pass_starts[pass_index]

  def batch(self, step: int) -> dict[str, np.ndarray]:
    pass_index, position = self._locate(step)
    shape = (self.batch_size, self.window)
    inputs, targets = np.zeros(shape, np.int32), np.zeros(shape, np.int32)
    weights = np.zeros(shape, np.float32)
    lengths = np.zeros(self.batch_size, np.int32)
    reset = np.ones(self.batch_size, np.int32)
    for row, stream in enumerate(self._schedule(pass_index)):
      if position >= len(stream):
        continue
      doc, start = stream[position]
      ids = self.documents[doc]
      n = min(self.window, len(ids) - 1 - start)
      inputs[row, :n] = ids[start:start + n]
      targets[row, :n] = ids[start + 1:start + n + 1]
      weights[row, :n] = 1
      lengths[row] = n
      reset[row] = start == 0
    return {'inputs': inputs, 'targets': targets, 'weights': weights, 'lengths': lengths,
            'reset': reset}


def document_rows(documents: Sequence[np.ndarray], row_length: int,
                  context: int) -> dict[str, np.ndarray]:
  """`lm_text.evaluation_rows` of every document on its own, stacked: each row
  reads one document only, so a document is scored as if it were alone."""
  rows = [lm_text.evaluation_rows(d, row_length, context) for d in documents]
  if not rows:
    raise ValueError('no document: nothing to predict')
  return {key: np.concatenate([r[key] for r in rows]) for key in rows[0]}
