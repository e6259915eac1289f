"""Where a task's word vocabulary comes from: the training data, or that and a vectors file.

`config.data` (the tasks with a word vocabulary: text classification, tagging):
  vocabulary_from       'train' (default): the words of the training data (`min_count`,
                        `max_vocab_size`); 'pretrained': those, then the words of the
                        pretrained vectors file (`model.pretrained_embeddings`) they lack,
                        in file order, so that words never seen in training keep their
                        vectors at evaluation
  pretrained_max_words  'pretrained' only: the first this many words of the file (0: all;
                        files list the frequent words first)

A file word joins in the form the task gives its input words (`normalise`, e.g. lowercased),
and not at all when no input word could take that form. The vocabulary is saved with the
run (preprocessing.json), so evaluating or decoding later needs no vectors file; building
the data again (a resumed run, an evaluation on the configured data) reads the file's
words again, not its vectors.
"""

from __future__ import annotations

from typing import Callable

from seqnets.data import word_vectors
from seqnets.data.vocab import Vocabulary
from seqnets.tasks import fields

KEYS = ('vocabulary_from', 'pretrained_max_words')
SOURCES = ('train', 'pretrained')


def validate(cfg) -> None:
  """ValueError naming `data.vocabulary_from` or `data.pretrained_max_words`."""
  source = fields.one_of(cfg, 'vocabulary_from', SOURCES, 'train')
  limit = fields.non_negative_int(cfg, 'pretrained_max_words')
  if limit and source != 'pretrained':
    raise ValueError(f"data.pretrained_max_words={limit} applies with "
                     f"data.vocabulary_from='pretrained' only")


def extend(cfg, vocab: Vocabulary, vectors_file: str | None,
           normalise: Callable[[str], str | None]) -> tuple[Vocabulary, dict[str, int]]:
  """`vocab` with the file's words when `data.vocabulary_from='pretrained'` (else as it is),
  and summary items: the vocabulary's size and how many of its words the file added. `normalise(word)` is the
  form the task's inputs give the word, or None when they never do."""
  if cfg.get('vocabulary_from', 'train') != 'pretrained':
    return vocab, {}
  if not vectors_file:
    raise ValueError("data.vocabulary_from='pretrained' needs model.pretrained_embeddings "
                     "(the vectors file whose words join the vocabulary)")
  words = word_vectors.read_words(vectors_file, cfg.get('pretrained_max_words') or 0)
  try:
    extended = vocab.with_words(word for word in map(normalise, words) if word)
  except (OSError, ValueError) as e:
    raise type(e)(f"data.vocabulary_from='pretrained' reads the words of "
                  f"model.pretrained_embeddings: {e}") from None
  return extended, {'vocabulary/size': len(extended),
                    'vocabulary/from_pretrained': len(extended) - len(vocab)}
