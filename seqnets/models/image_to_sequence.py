"""Image to sequence (Show, Attend and Tell; Xu et al. 2015): a CNN's feature map is the
attention memory of a recurrent decoder.

Synopsis:
  model = ImageToSequence(functools.partial(sn.GRUCell, 128), target_vocab_size=V_t,
                          embedding_size=32, conv_features=(32, 64, 64))
  logits = model.apply(variables, images, source_lengths, target_inputs, target_lengths,
                       deterministic=True)                     # images [B, H, W, 1] -> [B, T, V_t]
  encoded = model.apply(variables, images, source_lengths, method='encode')
  carry = model.apply(variables, encoded, max_length, method='initial_carry')
  carry, log_probs, alpha = model.apply(variables, encoded, carry, tokens, method='step')

The decoding protocol is `RecurrentSeq2Seq`'s (`encode`, `initial_carry`,
`decode`, `step`), so `seqnets.decoding` decodes it greedily or with beam search.

The source is a row of square cells of side H (an image of digits, one per cell):
`source_lengths [B]` counts the cells in use, and columns beyond H · length are
padding, set to zero before the CNN so that nothing there reaches the output.
The CNN (`ImageEncoder`) is 3×3 conv → ReLU per entry of `conv_features`, with
2×2 max pooling after the first two, giving the map `[B, H/4, W/4, D]`: one
position per 4×4 patch (for 8×8 digits, half a digit's columns in each of two
rows). A learned embedding of every position is added (where in the image),
and the P = H'·W' positions are the memory `[B, P, D]`; positions whose column
starts beyond the cells in use are masked. The summary z is the masked mean of
the memory; the bridge maps it to the decoder's initial state, `tanh(W z + b)`
(`bridge=False`: zeros). The decoder is `RecurrentDecoder` with attention.
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import attention as attention_lib
from seqnets.layers import masking
from seqnets.layers.attention import Placement, Score
from seqnets.models.seq2seq import RecurrentDecoder, RecurrentDecoding

Array = jax.Array
POOLED_LAYERS = 2            # 2×2 max pooling after the first two conv layers


class ImageEncoder(nn.Module):
  """`images [B, H, W, C] -> feature map [B, H', W', D]` (see the module docstring):
  conv 3×3 → ReLU per entry of `features` (pooling after the first two), dropout,
  plus a learned position embedding `positions [H', W', D]`."""
  features: Sequence[int]
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, images: Array, *, deterministic: bool = True) -> Array:
    h = images
    for index, width in enumerate(self.features):
      h = nn.relu(nn.Conv(width, (3, 3), padding='SAME', name=f'conv{index}')(h))
      if index < POOLED_LAYERS:
        h = nn.max_pool(h, (2, 2), (2, 2), padding='VALID')
    positions = self.param('positions', nn.initializers.normal(0.1), h.shape[1:], h.dtype)
    h = nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
    return h + positions


class ImageToSequence(RecurrentDecoding):
  """CNN encoder → attention memory → recurrent decoder (see the module docstring) →
  Dense over the target vocabulary.

  Attributes:
    cell_fn: returns a fresh decoder cell (`name=` given).
    target_vocab_size: V_t (id 0 is padding).
    embedding_size: E of the target embedding.
    conv_features: filters of every conv layer; the last is the memory size D.
    score / placement / attention_size: the attention (`sn.AttentionCell`).
    dropout_rate: dropout on the feature map, the target embeddings and the decoder
      outputs.
    bridge: map the memory summary to the decoder's initial state (False: zeros).
  """
  cell_fn: Callable[..., nn.RNNCellBase]
  target_vocab_size: int
  embedding_size: int
  conv_features: Sequence[int] = (32, 64, 64)
  score: Score = 'additive'
  placement: Placement = 'bahdanau'
  attention_size: int = 0
  dropout_rate: float = 0.0
  bridge: bool = True

  def __post_init__(self):
    decoder = self.cell_fn(parent=None).features
    if self.score == 'dot' and self.conv_features[-1] != decoder:
      raise ValueError(f"score='dot' needs the memory ({self.conv_features[-1]}, the last of "
                       f'conv_features) and the decoder state ({decoder}) of one size')
    super().__post_init__()

  def setup(self):
    if not self.conv_features or any(f < 1 for f in self.conv_features):
      raise ValueError(f'conv_features={tuple(self.conv_features)!r} must be positive sizes')
    self.encoder = ImageEncoder(tuple(self.conv_features), self.dropout_rate)
    self.target_embed = nn.Embed(self.target_vocab_size, self.embedding_size)
    self.decoder = RecurrentDecoder(self.cell_fn, 'attention', self.score, self.placement,
                                    self.attention_size)
    decoder_size = self.cell_fn(parent=None).features
    self.memory_keys = attention_lib.MemoryKeys(self.score, decoder_size,
                                                self.attention_size or decoder_size)
    if self.bridge:
      template = self.cell_fn(parent=None).initialize_carry(jax.random.key(0), (1, 1))
      self.bridges = [nn.Dense(leaf.shape[-1]) for leaf in jax.tree_util.tree_leaves(template)]
    self.output = nn.Dense(self.target_vocab_size)
    self.dropout = nn.Dropout(self.dropout_rate)

  @nn.nowrap
  def feature_shape(self, height: int, width: int) -> tuple[int, int]:
    """(H', W') of the feature map of an image `[H, W]`."""
    for _ in range(min(POOLED_LAYERS, len(self.conv_features))):
      height, width = height // 2, width // 2
    return height, width

  def encode(self, source: Array, source_lengths: Array, *,
             deterministic: bool = True) -> dict[str, Array]:
    """`source [B, H, W, C]`, `source_lengths [B]` (cells of side H) -> {memory `[B, P, D]`,
    mask `[B, P]`, keys, summary `[B, D]`}, P = H'·W'."""
    batch, height, width = source.shape[:3]
    used = jnp.asarray(source_lengths)[:, None] * height                       # [B, 1] columns
    columns = jnp.arange(width)[None, :] < used                                 # [B, W]
    images = jnp.where(columns[:, None, :, None], source, 0)
    if not jnp.issubdtype(images.dtype, jnp.floating):                        # e.g. uint8
      images = images.astype(jnp.float32)
    features = self.encoder(images, deterministic=deterministic)              # [B, H', W', D]
    rows, cols, size = features.shape[1:]
    starts = jnp.arange(cols) * (width // cols)                                 # first column
    mask = jnp.broadcast_to((starts[None, :] < used)[:, None, :], (batch, rows, cols))
    memory = features.reshape(batch, rows * cols, size)
    mask = mask.reshape(batch, rows * cols)
    return {'memory': memory, 'mask': mask, 'keys': self.memory_keys(memory),
            'summary': masking.masked_mean(memory, mask)}
