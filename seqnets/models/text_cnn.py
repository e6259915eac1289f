"""Convolutional sentence classifier (Kim, 2014, "Convolutional Neural Networks
for Sentence Classification", EMNLP, arXiv:1408.5882).

Synopsis:
  model = TextCNN(vocab_size=V, num_classes=2, embedding_size=300, channels='multichannel',
                  embedding_init=pretrained_embedding_init(word2vec_table))
  logits = model.apply(params, tokens, lengths, deterministic=False, rngs={'dropout': key})
  # tokens: [B, T] int, lengths: [B] -> logits [B, num_classes]
"""

from __future__ import annotations

import typing
from typing import Any, Callable, Literal, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from seqnets.layers.conv import Conv
from seqnets.layers.masking import sequence_mask
from seqnets.layers.pooling import max_over_time

Array = jax.Array
Initializer = Callable[..., Array]

Channels = Literal['rand', 'static', 'non-static', 'multichannel']
CHANNELS = typing.get_args(Channels)


def pretrained_embedding_init(table: Any) -> Initializer:
  """Initialiser returning `table: [V, E]` (e.g. word2vec rows in vocabulary order).

  Raises (at init):
    ValueError: when the requested shape is not `table.shape`.
  """
  table = np.asarray(table)

  def init(key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
    del key
    if tuple(shape) != table.shape:
      raise ValueError(f'pretrained embeddings have shape {table.shape}; the model needs '
                       f'{tuple(shape)} (vocab_size, embedding_size)')
    return jnp.asarray(table, dtype)

  return init


class TextCNN(nn.Module):
  """Kim's CNN: embeddings → convolutions of several widths → max over time → dropout → logits.

  For a sentence of embeddings x_1 … x_L (x_i ∈ ℝ^E) and a filter w of width h:

    c_i = ReLU(w · x_{i:i+h−1} + b)      i = 1 … L − h + 1     (§2, eq. 2)
    ĉ   = max_i c_i                                            (max-over-time pooling)
    z   = [ĉ for every filter of every width]                  [B, len(filter_widths)·num_filters]
    logits = W (dropout(z)) + b

  The softmax belongs to the loss. Kim's max-norm constraint (‖w‖₂ ≤ 3 on
  the output weights) is a training-time rule and is not applied here.

  Embedding channels (§3.1, model variations):
    'rand'          one trainable table, randomly initialised.
    'static'        one table held fixed: `stop_gradient`.
    'non-static'    one table, fine-tuned.
    'multichannel'  two tables, one static, one fine-tuned. Each filter has a
                    slice per channel, applied to both, and the results are added
                    (the channels are concatenated along the features).
  Pass pretrained vectors with `embedding_init=pretrained_embedding_init(table)` (a
  config names a vectors file instead, `model.pretrained_embeddings`, and the training
  loop writes its rows into every table: `seqnets.training.pretrained`); otherwise every
  table starts random (then 'static' is a fixed random projection).
  A static table lives in `params` as `static_embedding`: its gradient is
  zero, but optimizers with weight decay would still shrink it, so mask it
  out of those (e.g. `optax.masked`).

  Padding and short sentences: only tokens `t < lengths[b]` are read
  (embeddings beyond are zeroed) and only windows within the sentence are
  pooled, so extra padding changes nothing. A sentence shorter than the widest
  filter is padded with zero vectors to `max(filter_widths)` tokens, so every
  filter has at least one window (Kim's code also zero-pads sentences);
  an empty sentence then gives ReLU(b) for every filter.

  Parameters: `embedding [V, E]` and/or `static_embedding [V, E]`;
  `conv_w{h}/kernel [h, channels·E, num_filters]` (rows c·E … c·E + E − 1 read
  channel c: static first, then trainable), `conv_w{h}/bias`;
  `output/kernel [len(filter_widths)·num_filters, num_classes]`, `output/bias`.

  Attributes:
    vocab_size: V.
    num_classes: size of the logits.
    embedding_size: E (Kim: 300).
    filter_widths: n-gram widths h (Kim: 3, 4, 5).
    num_filters: feature maps per width (Kim: 100).
    dropout_rate: on z (Kim: 0.5).
    channels: one of `CHANNELS`.
    embedding_init: initialiser of every embedding table.
  """

  vocab_size: int
  num_classes: int
  embedding_size: int = 300
  filter_widths: Sequence[int] = (3, 4, 5)
  num_filters: int = 100
  dropout_rate: float = 0.5
  channels: Channels = 'rand'
  embedding_init: Initializer = nn.linear.default_embed_init

  def __post_init__(self):
    if self.channels not in CHANNELS:
      raise ValueError(f'channels={self.channels!r}; valid: {list(CHANNELS)}')
    for name in ('vocab_size', 'num_classes', 'embedding_size', 'num_filters'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name}={getattr(self, name)} must be positive')
    if not self.filter_widths or any(h < 1 for h in self.filter_widths):
      raise ValueError(f'filter_widths={self.filter_widths!r} must be positive integers')
    super().__post_init__()

  @nn.compact
  def __call__(self, tokens: Array, lengths: Array, *, deterministic: bool = True) -> Array:
    """`tokens: [B, T] int`, `lengths: [B] int` -> logits `[B, num_classes]`."""
    widest = max(self.filter_widths)
    if tokens.shape[1] < widest:
      tokens = jnp.pad(tokens, ((0, 0), (0, widest - tokens.shape[1])))  # [B, max(T, widest)]
    mask = sequence_mask(lengths, tokens.shape[1])[:, :, None]            # [B, T, 1]

    def embed(name):
      return nn.Embed(self.vocab_size, self.embedding_size, embedding_init=self.embedding_init,
                      name=name)(tokens)                                 # [B, T, E]

    tables = []
    if self.channels in ('static', 'multichannel'):
      tables.append(jax.lax.stop_gradient(embed('static_embedding')))
    if self.channels != 'static':
      tables.append(embed('embedding'))
    x = jnp.concatenate([jnp.where(mask, t, 0) for t in tables], axis=-1)  # [B, T, channels·E]

    # Sentences count as at least `widest` tokens long (zero vectors), see the class docstring.
    padded_lengths = jnp.maximum(jnp.asarray(lengths), widest)
    pooled = []
    for width in self.filter_widths:
      # A 1D convolution over time with the embedding as input channels: the same
      # maths as Kim's h×E 2D filter, but XLA:CPU differentiates the 2D form ~1000× slower.
      c = Conv(self.num_filters, (width,), padding='VALID',
               name=f'conv_w{width}')(x)                                 # [B, T − h + 1, N]
      c = jax.nn.relu(c)
      pooled.append(max_over_time(c, padded_lengths - width + 1))        # [B, N]
    z = jnp.concatenate(pooled, axis=-1)                                 # [B, len(widths)·N]
    z = nn.Dropout(self.dropout_rate)(z, deterministic=deterministic)
    return nn.Dense(self.num_classes, name='output')(z)
