"""Image CNN: blocks of conv → ReLU → pool, then fully connected layers (LeCun et al., 1998 style).

Synopsis:
  model = ImageCNN(features=(32, 64), num_classes=10, dense_features=(128,), dropout_rate=0.5)
  logits = model.apply(params, images, deterministic=False, rngs={'dropout': key})
  # images: [B, H, W, C] -> logits [B, num_classes]

  model = ImageCNN(features=(32, 64), num_classes=10, batch_norm=True)
  variables = model.init(key, images)                   # {'params', 'batch_stats'}
  logits, updates = model.apply(variables, images, deterministic=False,
                                mutable=['batch_stats'])  # training: batch statistics
  logits = model.apply(variables, images)               # evaluation: running averages
"""

from __future__ import annotations

from typing import Annotated, Literal, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers.conv import _CONV_MODES, Conv
from seqnets.layers.dropout import SpatialDropout
from seqnets.layers.feedforward import ACTIVATIONS, MLP, get_activation
from seqnets.layers.padding import Padding, normalize_padding
from seqnets.layers.pooling import KINDS, pool
from seqnets.models.config_fields import Range

Array = jax.Array
Activation = Literal[tuple(sorted(ACTIVATIONS))]
PoolKind = Literal[KINDS]
ConfigPadding = Annotated[Padding, Range(0)]     # amounts >= 0


class ImageCNN(nn.Module):
  """Convolutional classifier returning logits.

    block_l:  h ← pool(SpatialDropout(φ(BN_l(conv_l(h)))))    l = 1 … len(features)
    head:     logits = MLP(dropout(flatten(h)))                hidden sizes dense_features

  BN_l (only with `batch_norm`) normalises each channel, over the batch and
  spatial axes, and applies a learned scale and offset:
    BN(x) = γ (x − μ) / √(σ² + 1e−5) + β
  In training (`deterministic=False`, 'batch_stats' mutable) μ and σ² are the
  statistics of the batch (of its `valid` rows when given), and the running
  averages move towards them:
  m ← 0.9 m + 0.1 μ, v ← 0.9 v + 0.1 σ² (starting at m = 0, v = 1). In
  evaluation μ, σ² are m, v, so an example's logits do not depend on the
  other examples of its batch.

  With `batch_norm` the convs have no bias: subtracting μ cancels it (its
  gradient is 0), and β takes its place.

  Parameters: `conv{l}/kernel [*kernel_size, C_{l−1}, features[l]]` and
  `conv{l}/bias [features[l]]`, or with `batch_norm` `bn{l}/scale`, `bn{l}/bias`
  `[features[l]]` and the batch statistics `batch_stats/bn{l}/mean`, `var`
  `[features[l]]`; and the head's `head/Dense_i/...`. The number of spatial
  axes is `len(kernel_size)`, so 1D signals and 3D volumes work too.

  Attributes:
    features: filters per conv block.
    num_classes: size of the logits.
    kernel_size: conv window, e.g. (3, 3).
    strides: conv strides (int or per axis).
    padding: conv padding ('SAME', 'VALID', int, per-axis pairs).
    activation: φ for conv blocks and hidden dense layers (key of `sn.ACTIVATIONS`).
    pool_kind: 'max', 'avg', 'sum', or None for no pooling.
    pool_window / pool_strides / pool_padding: see `sn.pool` (strides None = window).
    batch_norm: batch normalisation after each conv (then without bias), before
      φ, with a 'batch_stats' collection; off by default.
    spatial_dropout_rate: `SpatialDropout` after each conv activation.
    dense_features: hidden fully connected sizes.
    dropout_rate: dropout on the input of every fully connected layer (the
      flattened features and each hidden layer).
  """

  features: Sequence[int]
  num_classes: int
  kernel_size: int | Sequence[int] = (3, 3)
  strides: int | Sequence[int] = 1
  padding: ConfigPadding = 'SAME'
  activation: Activation = 'relu'
  pool_kind: PoolKind | None = 'max'
  pool_window: int | Sequence[int] = 2
  pool_strides: int | Sequence[int] | None = None
  pool_padding: ConfigPadding = 'VALID'
  batch_norm: bool = False
  spatial_dropout_rate: float = 0.0
  dense_features: Sequence[int] = ()
  dropout_rate: float = 0.0

  def __post_init__(self):
    if any(f < 1 for f in self.features) or self.num_classes < 1:
      raise ValueError(f'ImageCNN features={self.features!r} and num_classes={self.num_classes} '
                       'must be positive')
    if self.pool_kind is not None and self.pool_kind not in KINDS:
      raise ValueError(f'ImageCNN pool_kind={self.pool_kind!r}; valid: {list(KINDS)} or None')
    get_activation(self.activation)
    self._check_windows()
    super().__post_init__()

  def _check_windows(self) -> None:
    """Every window, stride and padding names one value or one per spatial axis (the
    kernel's); padding modes are Conv's (CAUSAL: 1D only) and pooling's."""
    rank = 1 if isinstance(self.kernel_size, int) else len(self.kernel_size)
    for field, allow_one in (('strides', True), ('pool_window', False), ('pool_strides', False)):
      value = getattr(self, field)
      if value is None or isinstance(value, int):
        continue
      if len(value) not in ((rank, 1) if allow_one else (rank,)):
        raise ValueError(f'{field}={value!r} must be a positive integer or {rank} of them '
                         f'(one per spatial axis of kernel_size)')
    conv_modes = [m for m in _CONV_MODES if m != 'CAUSAL' or rank == 1]
    for field, modes in (('padding', conv_modes), ('pool_padding', ('VALID', 'SAME'))):
      try:
        normalize_padding(getattr(self, field), rank, modes=modes)
      except (ValueError, TypeError):
        raise ValueError(f'{field} must be one of {list(modes)}, a non-negative integer, or '
                         f'{rank} entries each an integer or a (low, high) pair, got '
                         f'{getattr(self, field)!r}') from None

  @nn.compact
  def __call__(self, images: Array, *, valid: Array | None = None,
               deterministic: bool = True) -> Array:
    """`images: [B, *spatial, C]` -> logits `[B, num_classes]`.

    With `batch_norm` and `deterministic=False`, 'batch_stats' must be mutable;
    `valid: [B]` (1 for real examples, 0 for padding rows), when given, keeps
    the padding rows out of the batch statistics. Without `batch_norm` it is unused.
    """
    phi = get_activation(self.activation)
    h = images
    mask = None
    if valid is not None:
      mask = jnp.reshape(jnp.asarray(valid) > 0, (-1,) + (1,) * (images.ndim - 1))   # [B, 1, …, 1]
    for index, width in enumerate(self.features):
      h = Conv(width, self.kernel_size, strides=self.strides, padding=self.padding,
               use_bias=not self.batch_norm, name=f'conv{index}')(h)
      if self.batch_norm:
        bn = nn.BatchNorm(use_running_average=deterministic, momentum=0.9, name=f'bn{index}')
        h = bn(h, mask=mask)
      h = phi(h)
      if self.spatial_dropout_rate > 0:
        h = SpatialDropout(self.spatial_dropout_rate)(h, deterministic=deterministic)
      if self.pool_kind is not None:
        h = pool(h, self.pool_kind, self.pool_window, self.pool_strides, self.pool_padding)
    h = jnp.reshape(h, (h.shape[0], -1))                                  # [B, H'·W'·C']
    if self.dropout_rate > 0:
      h = nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
    head = MLP((*self.dense_features, self.num_classes), activation=self.activation,
               dropout_rate=self.dropout_rate, name='head')
    return head(h, deterministic=deterministic)
