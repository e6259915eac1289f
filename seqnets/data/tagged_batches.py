"""Tagged sentences -> padded arrays of word ids, character ids and tag ids.

Synopsis:
  words = Vocabulary.build(word_lists, min_count=1)               # <pad> <unk> words...
  chars = char_vocabulary(word_lists)                             # <pad> <unk> characters...
  arrays = tagged_arrays([(tokens, tag_ids), ...], words, chars, max_word_length=20)
  arrays['inputs'] [N, T], arrays['chars'] [N, T, C], arrays['char_lengths'] [N, T],
  arrays['labels'] [N, T], arrays['lengths'] [N]

Word ids come from the word vocabulary (lowercased first when `lowercase`),
character ids from the characters of the word as written (cut to
`max_word_length`); tag ids index `tags`. Everything past a sentence's length
(and past a word's characters) is 0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from seqnets.data.vocab import Vocabulary

TIME_KEYS = ('inputs', 'chars', 'char_lengths', 'labels')


def char_vocabulary(word_lists: Sequence[Sequence[str]], min_count: int = 1) -> Vocabulary:
  """`<pad>`, `<unk>`, then the characters of the words, most frequent first."""
  return Vocabulary.build(([c for word in words for c in word] for words in word_lists),
                          min_count=min_count)


def word_keys(words: Sequence[str], lowercase: bool) -> list[str]:
  return [w.lower() for w in words] if lowercase else list(words)


def tagged_arrays(sentences: Sequence[tuple[Sequence[str], Sequence[int]]], words: Vocabulary,
                  chars: Vocabulary, *, max_word_length: int, lowercase: bool = False,
                  width: int | None = None, rows: int | None = None) -> dict[str, np.ndarray]:
  """`[(tokens, tag ids)]` -> arrays padded to `width` time steps (default: the longest
  sentence) and `rows` rows (default: one per sentence; extra rows are all zeros)."""
  n = len(sentences)
  rows = n if rows is None else rows
  width = max([len(tokens) for tokens, _ in sentences] + [1]) if width is None else width
  out = {'inputs': np.zeros((rows, width), np.int32),
         'chars': np.zeros((rows, width, max_word_length), np.int32),
         'char_lengths': np.zeros((rows, width), np.int32),
         'labels': np.zeros((rows, width), np.int32),
         'lengths': np.zeros((rows,), np.int32)}
  for row, (tokens, tags) in enumerate(sentences):
    length = len(tokens)
    out['lengths'][row] = length
    out['inputs'][row, :length] = words.encode(word_keys(tokens, lowercase))
    out['labels'][row, :length] = tags
    for position, token in enumerate(tokens):
      ids = chars.encode(list(token[:max_word_length]))
      out['chars'][row, position, :len(ids)] = ids
      out['char_lengths'][row, position] = len(ids)
  return out
