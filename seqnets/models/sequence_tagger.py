"""BiLSTM/BiGRU tagger: words (and their characters) → stacked bidirectional RNN → a tag
per word, by softmax or by a linear-chain CRF (Huang et al. 2015; Lample et al. 2016).

Synopsis:
  model = SequenceTagger(cell_fn=functools.partial(sn.LSTMCell, 128), vocab_size=V,
                         num_tags=K, char_vocab_size=C_v, char_encoder='bilstm', crf=True)
  out = model.apply(variables, words [B, T], lengths [B], chars=chars [B, T, C],
                    char_lengths=char_lengths [B, T], tags=tags [B, T], deterministic=True)
  out['logits'] [B, T, K]; out['predictions'] [B, T]; out['log_likelihood'] [B] (CRF, with tags)

  x_t = Dropout([E w_t ; CharEncoder(w_t)])     (the character part optional)
  h_t = StackedBiRNN(x)_t,   logits_t = W Dropout(h_t) + b
  softmax: p(y_t | x) = softmax(logits_t);   CRF: p(y | x) ∝ exp(score(y)), Viterbi decoding

Parameter names follow `RecurrentLM` (`embed`, forward cells `layer{i}_cell`), so the
embedding and the forward recurrences of a language model trained on the same kind of
text can initialise a tagger (`config.init_from`).
"""

from __future__ import annotations

import typing
from typing import Callable, Literal

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers.char_encoder import CharWordEncoder
from seqnets.layers.crf import CRF
from seqnets.models.recurrent_stack import recurrent_stack

Array = jax.Array
CharEncoder = Literal['none', 'bilstm', 'cnn']
CHAR_ENCODERS = typing.get_args(CharEncoder)
# `crf_constraints` by name in a config: 'bio' derives them from the tag names.
CrfConstraintsName = Literal['none', 'bio']


class SequenceTagger(nn.Module):
  """Per-word tags for `words [B, T]` (see the module docstring).

  Attributes:
    cell_fn: returns a fresh cell, e.g. `functools.partial(sn.LSTMCell, 128)`.
    vocab_size: word ids (0 is padding, 1 unknown).
    num_tags: K.
    embedding_size: E of the word embedding.
    char_vocab_size / char_encoder ('none' | 'bilstm' | 'cnn') / char_embedding_size /
      char_features / char_kernel_size: the character-level word encoder
      (`sn.layers.char_encoder.CharWordEncoder`), concatenated after the word embedding.
    num_layers: stacked recurrent layers; bidirectional: a backward recurrence in each.
    embedding_dropout_rate: dropout on `x_t`; dropout_rate: between layers and on the top.
    crf: a linear-chain CRF output layer instead of per-word softmax.
    crf_constraints: `(start [K], transitions [K, K], end [K])` allowed moves (nested
      tuples of bools, e.g. from `sn.layers.crf.bio_constraints`), or None.
    unroll, remat, variational_input_rate, variational_state_rate: as in `sn.RNN`
      (remat 0: off).
  """
  cell_fn: Callable[..., nn.RNNCellBase]
  vocab_size: int
  num_tags: int
  embedding_size: int = 100
  char_vocab_size: int = 0
  char_encoder: CharEncoder = 'none'
  char_embedding_size: int = 25
  char_features: int = 25
  char_kernel_size: int = 3
  num_layers: int = 1
  bidirectional: bool = True
  embedding_dropout_rate: float = 0.0
  dropout_rate: float = 0.0
  crf: bool = False
  crf_constraints: tuple | None = None
  unroll: int | None = None
  remat: int = 0
  variational_input_rate: float = 0.0
  variational_state_rate: float = 0.0

  @nn.compact
  def __call__(self, words: Array, lengths: Array, *, deterministic: bool,
               chars: Array | None = None, char_lengths: Array | None = None,
               tags: Array | None = None) -> dict[str, Array]:
    if self.char_encoder not in CHAR_ENCODERS:
      raise ValueError(f'char_encoder={self.char_encoder!r}; valid: {list(CHAR_ENCODERS)}')
    x = nn.Embed(self.vocab_size, self.embedding_size, name='embed')(words)    # [B, T, E]
    if self.char_encoder != 'none':
      if chars is None or char_lengths is None:
        raise ValueError(f"char_encoder={self.char_encoder!r} needs chars and char_lengths")
      encoder = CharWordEncoder(self.char_vocab_size, self.char_embedding_size,
                                kind=self.char_encoder, features=self.char_features,
                                kernel_size=self.char_kernel_size, name='char_encoder')
      x = jnp.concatenate([x, encoder(chars, char_lengths, deterministic=deterministic)], -1)
    x = nn.Dropout(self.embedding_dropout_rate)(x, deterministic=deterministic)
    stack = recurrent_stack(self.cell_fn, self.num_layers, self.bidirectional, self.dropout_rate,
                            self.unroll, self.variational_input_rate,
                            self.variational_state_rate, remat=self.remat)
    h = stack(x, lengths, deterministic=deterministic)                         # [B, T, H]
    h = nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
    logits = nn.Dense(self.num_tags, name='output')(h)                         # [B, T, K]
    if not self.crf:
      return {'logits': logits, 'predictions': jnp.argmax(logits, -1).astype(jnp.int32)}
    crf = CRF(self.num_tags, allowed=self.crf_constraints, name='crf')
    predictions, _ = crf.decode(logits, lengths)
    out = {'logits': logits, 'predictions': predictions}
    if tags is not None:
      out['log_likelihood'] = crf.log_likelihood(logits, tags, lengths)
    return out
