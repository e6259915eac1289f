"""Vocabulary: token ↔ id with padding and unknown-token ids; build, encode, save, load.

Synopsis:
  vocab = Vocabulary.build(tokenized_texts, min_count=1, max_size=None)
  ids = vocab.encode(['a', 'movie', 'zzz'])     # unknown tokens -> vocab.unk_id
  vocab = vocab.with_words(pretrained_words)    # new words at the end
  vocab.save(path); Vocabulary.load(path)       # one token per line, id = line number
"""

from __future__ import annotations

import collections
import dataclasses
import pathlib
import re
from typing import Iterable, Sequence

import numpy as np

from seqnets.data import text_file

PAD = '<pad>'
UNK = '<unk>'

_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")


def tokenize(text: str, lowercase: bool = True) -> list[str]:
  """Words and single punctuation marks: `tokenize("It's good!") == ["it's", 'good', '!']`."""
  return _TOKEN.findall(text.lower() if lowercase else text)


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  """Tokens in id order; id 0 is `<pad>`, id 1 is `<unk>`."""

  tokens: tuple[str, ...]

  def __post_init__(self):
    if self.tokens[:2] != (PAD, UNK):
      raise ValueError(f'a Vocabulary starts with {PAD!r}, {UNK!r}; got {self.tokens[:2]!r}')
    object.__setattr__(self, '_ids', {t: i for i, t in enumerate(self.tokens)})

  pad_id = 0
  unk_id = 1

  @classmethod
  def build(cls, texts: Iterable[Sequence[str]], min_count: int = 1,
            max_size: int | None = None, specials: Sequence[str] = ()) -> 'Vocabulary':
    """`<pad>`, `<unk>`, then `specials` (e.g. `<s>`, `</s>`, always present), then the
    tokens seen at least `min_count` times, most frequent first (ties: alphabetical);
    at most `max_size` tokens in all."""
    counts = collections.Counter(token for text in texts for token in text)
    reserved = (PAD, UNK, *specials)
    ranked = sorted((t for t, c in counts.items() if c >= min_count and t not in reserved),
                    key=lambda t: (-counts[t], t))
    if max_size is not None:
      ranked = ranked[:max(max_size - len(reserved), 0)]
    return cls((*reserved, *ranked))

  def with_words(self, words: Iterable[str]) -> 'Vocabulary':
    """This vocabulary, then the words of `words` it lacks, in their order (each once)."""
    added = dict.fromkeys(w for w in words if w not in self._ids)
    return Vocabulary((*self.tokens, *added))

  def id(self, token: str) -> int:
    """The id of `token` (`unk_id` when it is not in the vocabulary)."""
    return self._ids.get(token, self.unk_id)

  def __len__(self) -> int:
    return len(self.tokens)

  def encode(self, tokens: Sequence[str]) -> np.ndarray:
    """`[L] int32` ids; out-of-vocabulary tokens map to `unk_id`."""
    return np.asarray([self._ids.get(t, self.unk_id) for t in tokens], np.int32)

  def decode(self, ids: Iterable[int]) -> list[str]:
    return [self.tokens[i] for i in ids if i != self.pad_id]

  def save(self, path: str | pathlib.Path) -> None:
    pathlib.Path(path).write_text(''.join(t + '\n' for t in self.tokens), encoding='utf-8')

  @classmethod
  def load(cls, path: str | pathlib.Path) -> 'Vocabulary':
    """Reads a file written by `save` (UTF-8, one token per line).

    Raises ValueError naming the file for invalid UTF-8 (with the byte
    offset), an empty file, an empty token (with the line) or a file that
    does not start with `<pad>`, `<unk>`.
    """
    text = text_file.read_text(path)
    if not text:
      raise ValueError(f'{path}: empty file')
    tokens = text.split('\n')
    if tokens[-1] == '':
      tokens.pop()                  # the newline ending the last token
    for line, token in enumerate(tokens, 1):
      if not token:
        raise ValueError(f'{path}:{line}: empty token')
    try:
      return cls(tuple(tokens))
    except ValueError as e:
      raise ValueError(f'{path}: {e}') from None
