"""Parallel text: sentence pairs from two files, tokenisers (words or subwords).

Synopsis:
  pairs = read_pairs('train.de.gz', 'train.en.gz')        # [(source line, target line)]
  tok = Tokenizer.train('sentencepiece', [s for s, _ in pairs], vocab_size=8000)
  ids = tok.encode('ein Hund läuft')                       # int32, no <s> or </s>
  text = tok.decode(ids)
  tok = Tokenizer.from_json(tok.to_json())                 # saved with a run

Tokenisers, each with the ids `<pad>` 0, `<unk>` 1, `<s>` 2, `</s>` 3:
  word           words and punctuation marks (`vocab.tokenize`), optionally lowercased;
                 the words seen `min_count` times, at most `vocab_size`; decoding joins
                 tokens with spaces
  sentencepiece  a SentencePiece model (Kudo & Richardson 2018; unigram or BPE) trained
                 on the training side; lossless decoding. The model is kept as bytes
                 (base64 in JSON), so a run carries its tokeniser.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import pathlib
from typing import Sequence

import numpy as np

from seqnets.data import text_file
from seqnets.data import vocab as vocab_lib
from seqnets.data.vocab import Vocabulary

KINDS = ('word', 'sentencepiece')
SPECIALS = ('<s>', '</s>')
BOS_ID, EOS_ID = 2, 3


def read_pairs(source_path: str | pathlib.Path, target_path: str | pathlib.Path
               ) -> list[tuple[str, str]]:
  """Line i of each file (plain or gzip UTF-8) as a pair. ValueError naming both files
  when their line counts differ, and file and line for bad UTF-8."""
  sources = text_file.read_text(source_path).splitlines()
  targets = text_file.read_text(target_path).splitlines()
  if len(sources) != len(targets):
    raise ValueError(f'{source_path} has {len(sources)} lines but {target_path} has '
                     f'{len(targets)}: line i of one must translate line i of the other')
  return list(zip(sources, targets))


@dataclasses.dataclass(frozen=True)
class Tokenizer:
  """Text <-> ids for one side of the data (see the module docstring)."""
  kind: str
  vocabulary: tuple[str, ...]
  lowercase: bool = False
  model: bytes = b''                     # the SentencePiece model proto

  @classmethod
  def train(cls, kind: str, texts: Sequence[str], vocab_size: int, *, lowercase: bool = False,
            min_count: int = 1, model_type: str = 'unigram') -> 'Tokenizer':
    if kind not in KINDS:
      raise ValueError(f'tokenizer={kind!r}; valid: {list(KINDS)}')
    if kind == 'word':
      tokens = [vocab_lib.tokenize(t, lowercase=lowercase) for t in texts]
      vocab = Vocabulary.build(tokens, min_count=min_count, max_size=vocab_size or None,
                               specials=SPECIALS)
      return cls('word', vocab.tokens, lowercase)
    import sentencepiece as spm
    texts = [t.lower() if lowercase else t for t in texts if t.strip()]
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=buffer, vocab_size=vocab_size,
        model_type=model_type, character_coverage=1.0, pad_id=0, unk_id=1, bos_id=BOS_ID,
        eos_id=EOS_ID, pad_piece='<pad>', unk_piece='<unk>', bos_piece=SPECIALS[0],
        eos_piece=SPECIALS[1], hard_vocab_limit=False, num_threads=1, minloglevel=2)
    model = buffer.getvalue()
    processor = spm.SentencePieceProcessor(model_proto=model)
    pieces = tuple(processor.id_to_piece(i) for i in range(processor.get_piece_size()))
    return cls('sentencepiece', pieces, lowercase, model)

  def __post_init__(self):
    object.__setattr__(self, '_vocab', Vocabulary(self.vocabulary))
    if self.kind == 'sentencepiece':
      import sentencepiece as spm
      object.__setattr__(self, '_processor', spm.SentencePieceProcessor(model_proto=self.model))

  def __len__(self) -> int:
    return len(self.vocabulary)

  def encode(self, text: str) -> np.ndarray:
    """`[n] int32` ids of `text` (unknown tokens `<unk>`; no `<s>` or `</s>`)."""
    if self.lowercase:
      text = text.lower()
    if self.kind == 'sentencepiece':
      return np.asarray(self._processor.encode(text), np.int32)
    return self._vocab.encode(vocab_lib.tokenize(text, lowercase=False))

  def decode(self, ids: Sequence[int]) -> str:
    """Ids (specials dropped) -> text."""
    ids = [int(i) for i in ids if int(i) not in (0, BOS_ID, EOS_ID)]
    if self.kind == 'sentencepiece':
      return self._processor.decode(ids)
    return ' '.join(self.vocabulary[i] for i in ids)

  def to_json(self) -> str:
    return json.dumps({'kind': self.kind, 'vocabulary': list(self.vocabulary),
                       'lowercase': self.lowercase,
                       'model': base64.b64encode(self.model).decode('ascii')})

  @classmethod
  def from_json(cls, text: str) -> 'Tokenizer':
    saved = json.loads(text)
    return cls(saved['kind'], tuple(saved['vocabulary']), saved['lowercase'],
               base64.b64decode(saved['model']))
