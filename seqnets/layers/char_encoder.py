"""Character-level word encoder: one vector per word from its characters, for taggers.

Synopsis:
  enc = CharWordEncoder(vocab_size=100, embedding_size=25, kind='bilstm', features=25)
  v = enc.apply(params, chars, char_lengths)            # [B, T, C] -> [B, T, 2·25]
  enc = CharWordEncoder(100, 30, kind='cnn', features=30, kernel_size=3, dropout_rate=0.5)
  v = enc.apply(params, chars, char_lengths, deterministic=False,
                rngs={'dropout': key})                  # [B, T, C] -> [B, T, 30]

Inputs: `chars [B, T, C]` int, the character ids of word t of sentence b, left-aligned
(`chars[b, t, :char_lengths[b, t]]` are real, the rest padding, usually 0); `char_lengths
[B, T]` int in [0, C], 0 for padding words. Output `[B, T, F]`, exactly 0 for words of
length 0. What sits past a word's length (any id) never changes a result, nor do C and T.

For a word of characters c_1 … c_n (n = its length), with embeddings e_k = E[c_k]:
  'bilstm' (Lample et al. 2016), F = 2H (H = features, per direction):
    →h_k = LSTM_f(→h_{k−1}, e_k),  ←h_k = LSTM_b(←h_{k+1}, e_k),  →h_0 = ←h_{n+1} = 0
    v = [→h_n ; ←h_1]     (forward state after the last character; backward state after
                           reading the word from its end back to its first character)
  'cnn' (Ma & Hovy 2016; tanh as in Kim et al. 2016), F = number of filters:
    ẽ_k = e_k for 1 ≤ k ≤ n, 0 otherwise (padding characters are zeroed before the conv)
    z_k = tanh(b + Σ_j W_j ẽ_{k+j−⌊(K−1)/2⌋}),  j = 0 … K−1   ('SAME' padding, K = kernel_size)
    v = max_{1 ≤ k ≤ n} z_k   (element-wise, over the real positions only)
  Dropout (rate `dropout_rate`) acts on the embeddings e_k, only with `deterministic=False`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import bidirectional
from seqnets.layers import conv
from seqnets.layers import lstm
from seqnets.layers import masking
from seqnets.layers import pooling
from seqnets.layers import rnn

Array = jax.Array
KINDS = ('bilstm', 'cnn')


class CharWordEncoder(nn.Module):
  """Encodes every word of `chars [B, T, C]` from its characters -> `[B, T, F]`.

  The words are encoded independently, as a batch of B·T character sequences
  (`[B·T, C, E]`); see the module docstring for the equations.

  Parameters: `embed/embedding [vocab_size, E]`; 'bilstm': `bilstm/forward/cell/...` and
  `bilstm/backward/cell/...` (`LSTMCell` params); 'cnn': `conv/kernel [K, E, features]`,
  `conv/bias [features]`.

  Attributes:
    vocab_size: number of character ids (0 is padding by convention; its embedding is
      never read for positions past a word's length).
    embedding_size: character embedding size E (typically 25–50).
    kind: 'bilstm' (F = 2·features) or 'cnn' (F = features).
    features: 'bilstm': LSTM hidden size per direction; 'cnn': number of filters.
    kernel_size: 'cnn' filter width K (in characters).
    dropout_rate: dropout on the character embeddings.
  """

  vocab_size: int
  embedding_size: int
  kind: str = 'bilstm'
  features: int = 25
  kernel_size: int = 3
  dropout_rate: float = 0.0

  @property
  def output_size(self) -> int:
    """F: `2·features` for 'bilstm', `features` for 'cnn'."""
    return 2 * self.features if self.kind == 'bilstm' else self.features

  @nn.compact
  def __call__(self, chars: Array, char_lengths: Array, *,
               deterministic: bool = True) -> Array:
    """`chars [B, T, C]` int, `char_lengths [B, T]` int -> `[B, T, F]` (0 for empty words)."""
    if self.kind not in KINDS:
      raise ValueError(f'CharWordEncoder kind={self.kind!r}; valid: {list(KINDS)}')
    if chars.ndim != 3:
      raise ValueError(f'CharWordEncoder chars must be [B, T, C], got shape {chars.shape}')
    if not jnp.issubdtype(chars.dtype, jnp.integer):
      raise ValueError(f'CharWordEncoder chars must be integer ids, got dtype {chars.dtype}')
    batch, words, width = chars.shape
    if tuple(jnp.shape(char_lengths)) != (batch, words):
      raise ValueError(f'CharWordEncoder char_lengths must have shape [B, T] = {(batch, words)}, '
                       f'got {tuple(jnp.shape(char_lengths))}')
    if width == 0:   # no characters at all: one padding column keeps every shape valid
      chars, width = jnp.zeros((batch, words, 1), chars.dtype), 1
    lengths = masking.check_lengths(jnp.reshape(char_lengths, (-1,)), batch * words, width,
                                    'char_lengths')                     # [N], N = B·T
    mask = masking.sequence_mask(lengths, width)                        # [N, C]
    ids = jnp.where(mask, jnp.reshape(chars, (-1, width)), 0)           # garbage never looked up
    embedded = nn.Embed(self.vocab_size, self.embedding_size, name='embed')(ids)   # [N, C, E]
    embedded = jnp.where(mask[..., None], embedded, 0)
    embedded = nn.Dropout(self.dropout_rate)(embedded, deterministic=deterministic)

    if self.kind == 'bilstm':
      # Unbound (parent=None) until Bidirectional adopts them: params bilstm/forward/cell/...
      # The cells compute in the embeddings' dtype (bfloat16 under a bfloat16 policy).
      direction = lambda: rnn.RNN(lstm.LSTMCell(self.features, dtype=embedded.dtype,
                                                parent=None), parent=None)
      encoder = bidirectional.Bidirectional(direction(), direction(), return_carry=True,
                                            name='bilstm')
      ((_, h_forward), (_, h_backward)), _ = encoder(embedded, lengths)
      encoded = jnp.concatenate([h_forward, h_backward], axis=-1)       # [N, 2H]
    else:
      maps = conv.Conv(self.features, (self.kernel_size,), padding='SAME',
                       name='conv')(embedded)                           # [N, C, F]
      encoded = pooling.max_over_time(jnp.tanh(maps), lengths)          # [N, F]
    encoded = jnp.where((lengths > 0)[:, None], encoded, 0)
    return encoded.reshape(batch, words, encoded.shape[-1])
