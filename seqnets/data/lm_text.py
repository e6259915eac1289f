"""Text for language models: tokens, vocabularies, streams for truncated BPTT, evaluation rows.

Synopsis:
  tokens = tokenize(text, 'char')                  # every character, newlines included
  tokens = tokenize(text, 'word')                  # words and punctuation per line, '</s>' ending each
  vocab = build_vocabulary([tokens], min_count=2)  # <pad> <unk> <s> </s> then by frequency
  ids = vocab.encode(tokens)
  batch = stream_batch(ids, batch_size=32, update_steps=64, backprop_steps=64, step=s)
  rows = evaluation_rows(ids, row_length=256, context=64)
  text = detokenize(vocab.decode(ids), 'word')

Truncated BPTT (Williams & Peng 1990): the token stream is cut into
`batch_size` parallel streams; step s gives every stream a window of
`backprop_steps` (k₂) tokens starting `update_steps` (k₁) tokens after the
previous window's start. The model carries its state from one window to the
next (it stores the state after k₁ steps) and gradients stop at the carried
state. Only the last k₁ tokens of a window are scored (all k₂ in a stream's
first window), so every token is scored once per pass, and the gradient of the
newest token reaches back k₂ steps. k₁ = k₂ = k is the usual BPTT(k).
"""

from __future__ import annotations

import numpy as np

from seqnets.data import vocab as vocab_lib
from seqnets.data.vocab import Vocabulary

LEVELS = ('char', 'word')
WORD_SPLITS = ('punctuation', 'whitespace')
BOS, EOS = '<s>', '</s>'
SPECIALS = (BOS, EOS)


def tokenize(text: str, level: str, lowercase: bool = False,
             word_split: str = 'punctuation') -> list[str]:
  """'char': every character; 'word': the words of each non-blank line, each line
  followed by `</s>` -- words and punctuation marks (`vocab.tokenize`) with
  `word_split='punctuation'`, or the whitespace-separated tokens as written with
  'whitespace' (text already tokenised, e.g. one CoNLL sentence per line)."""
  if level not in LEVELS:
    raise ValueError(f'level={level!r}; valid: {list(LEVELS)}')
  if word_split not in WORD_SPLITS:
    raise ValueError(f'word_split={word_split!r}; valid: {list(WORD_SPLITS)}')
  if lowercase:
    text = text.lower()
  if level == 'char':
    return list(text)
  split = (lambda line: vocab_lib.tokenize(line, lowercase=False)
           if word_split == 'punctuation' else line.split())
  tokens = []
  for line in text.splitlines():
    words = split(line)
    if words:
      tokens.extend(words)
      tokens.append(EOS)
  return tokens


def detokenize(tokens: list[str], level: str) -> str:
  """Tokens back to text: characters joined; words joined by spaces, `</s>` a line break.
  `<s>` and `<pad>` are dropped."""
  tokens = [t for t in tokens if t not in (BOS, vocab_lib.PAD)]
  if level == 'char':
    return ''.join('\n' if t == EOS else t for t in tokens)
  lines, line = [], []
  for token in tokens:
    if token == EOS:
      lines.append(' '.join(line) + '\n')
      line = []
    else:
      line.append(token)
  return ''.join(lines) + ' '.join(line)


def build_vocabulary(token_lists, min_count: int = 1, max_size: int | None = None) -> Vocabulary:
  """`<pad>`, `<unk>`, `<s>`, `</s>`, then the tokens seen `min_count` times or more."""
  return Vocabulary.build(token_lists, min_count=min_count, max_size=max_size, specials=SPECIALS)


def num_windows(num_tokens: int, batch_size: int, update_steps: int, backprop_steps: int) -> int:
  """Windows per pass over the stream (the same in every pass)."""
  length = (num_tokens - update_steps) // batch_size     # each stream, the largest shift taken off
  return max((length - backprop_steps) // update_steps + 1, 0)


def check_stream_size(num_tokens: int, batch_size: int, update_steps: int, backprop_steps: int,
                      what: str = 'the training text') -> None:
  """ValueError when the stream cannot give one window per stream."""
  if backprop_steps < update_steps:
    raise ValueError(f'backprop_steps={backprop_steps} must be >= update_steps={update_steps}')
  if num_windows(num_tokens, batch_size, update_steps, backprop_steps) < 1:
    need = batch_size * (backprop_steps + 1) + update_steps
    raise ValueError(f'{what} has {num_tokens} tokens: too few for {batch_size} streams of '
                     f'{backprop_steps} tokens (at least {need})')


def stream_batch(ids: np.ndarray, batch_size: int, update_steps: int, backprop_steps: int,
                 step: int) -> dict[str, np.ndarray]:
  """Training batch `step` of truncated BPTT over `ids` (see the module docstring).

  Pass p = step // num_windows shifts the stream boundaries by a pseudo-random
  offset in [0, k₁) drawn from `default_rng([p])`, so passes see different cuts.

  Returns:
    inputs `[B, k₂]`, targets `[B, k₂]` (the next tokens), weights `[B, k₂]`
    (1 on scored tokens), lengths `[B]` (k₂), reset `[B]` (1 on a stream's first
    window: the carried state starts from zeros).
  """
  k1, k2 = update_steps, backprop_steps
  windows = num_windows(len(ids), batch_size, k1, k2)
  check_stream_size(len(ids), batch_size, k1, k2)
  passes, window = divmod(step, windows)
  offset = int(np.random.default_rng([passes]).integers(k1)) if k1 > 1 else 0
  length = (len(ids) - 1 - offset) // batch_size
  starts = offset + np.arange(batch_size) * length + window * k1          # [B]
  positions = starts[:, None] + np.arange(k2)                             # [B, k₂]
  weights = np.ones((batch_size, k2), np.float32)
  if window > 0:
    weights[:, :k2 - k1] = 0
  return {
      'inputs': ids[positions].astype(np.int32),
      'targets': ids[positions + 1].astype(np.int32),
      'weights': weights,
      'lengths': np.full(batch_size, k2, np.int32),
      'reset': np.full(batch_size, window == 0, np.int32),
  }


def evaluation_rows(ids: np.ndarray, row_length: int, context: int) -> dict[str, np.ndarray]:
  """Every next-token prediction of `ids` (tokens 1 .. N-1), once, in rows of
  `row_length` scored tokens; each row first reads up to `context` earlier
  tokens, unscored, so its first scored tokens are predicted from context too.

  Returns inputs, targets, weights `[R, context + row_length]` (padding 0) and
  lengths `[R]`.
  """
  if len(ids) < 2:
    raise ValueError(f'{len(ids)} token(s): nothing to predict')
  predictions = len(ids) - 1
  num_rows = -(-predictions // row_length)
  width = context + row_length
  inputs = np.zeros((num_rows, width), np.int32)
  targets = np.zeros((num_rows, width), np.int32)
  weights = np.zeros((num_rows, width), np.float32)
  lengths = np.zeros(num_rows, np.int32)
  for row in range(num_rows):
    first = row * row_length                       # first scored input position
    begin = max(first - context, 0)
    end = min(first + row_length, predictions)
    n = end - begin
    inputs[row, :n] = ids[begin:end]
    targets[row, :n] = ids[begin + 1:end + 1]
    weights[row, first - begin:n] = 1
    lengths[row] = n
  return {'inputs': inputs, 'targets': targets, 'weights': weights, 'lengths': lengths}
