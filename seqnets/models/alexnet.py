"""AlexNet, single-tower (Krizhevsky, Sutskever & Hinton, 2012, NeurIPS).

The paper splits layers across two GPUs (conv2, conv4 and conv5 see only
their own GPU's half of the channels). This is the common one-tower form
(Caffe's `bvlc_alexnet` without groups) on 227×227×3 inputs, the size the
paper's arithmetic needs (its "224" gives a non-integer 54.25).

  layer    output        parameters
  conv1    55×55×96         34,944   11×11 / 4, ReLU, LRN
  pool1    27×27×96              0   max 3×3 / 2
  conv2    27×27×256       614,656   5×5 pad 2, ReLU, LRN
  pool2    13×13×256             0
  conv3    13×13×384       885,120   3×3 pad 1, ReLU
  conv4    13×13×384     1,327,488   3×3 pad 1, ReLU
  conv5    13×13×256       884,992   3×3 pad 1, ReLU
  pool5    6×6×256               0
  fc6      4096         37,752,832   ReLU, dropout 0.5
  fc7      4096         16,781,312   ReLU, dropout 0.5
  fc8      1000          4,097,000   logits
  total                 62,378,344

Synopsis:
  model = AlexNet()
  shapes = jax.eval_shape(model.init, key, jax.ShapeDtypeStruct((1, 227, 227, 3), jnp.float32))
  logits = model.apply(variables, images, deterministic=False, rngs={'dropout': key})
  # Each layer's output is sown into 'intermediates' as '<layer>_output':
  _, state = model.apply(variables, images, mutable=['intermediates'])
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers.conv import Conv
from seqnets.layers.normalization import LocalResponseNorm
from seqnets.layers.pooling import pool

Array = jax.Array


class AlexNet(nn.Module):
  """ImageNet classifier of Krizhevsky et al. (2012); see the module table.

  Attributes:
    num_classes: size of the logits (1000 for ImageNet).
    dropout_rate: dropout after fc6 and fc7 (paper: 0.5).
  """

  num_classes: int = 1000
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, images: Array, *, valid: Array | None = None,
               deterministic: bool = True) -> Array:
    """`images: [B, 227, 227, 3]` -> logits `[B, num_classes]`. `valid` (the task's
    padding-row mask) is accepted for a common call signature and unused: no layer
    here computes batch statistics."""
    del valid
    def record(name, x):
      self.sow('intermediates', f'{name}_output', x)
      return x

    def conv(x, name, features, kernel, strides=1, padding=0):
      return jax.nn.relu(Conv(features, (kernel, kernel), strides=strides, padding=padding,
                              name=name)(x))

    def max_pool(x):
      # Overlapping pooling, §3.4: 3×3 windows at stride 2.
      return pool(x, 'max', 3, 2)

    h = images
    h = record('conv1', LocalResponseNorm()(conv(h, 'conv1', 96, 11, strides=4)))
    h = record('pool1', max_pool(h))
    h = record('conv2', LocalResponseNorm()(conv(h, 'conv2', 256, 5, padding=2)))
    h = record('pool2', max_pool(h))
    h = record('conv3', conv(h, 'conv3', 384, 3, padding=1))
    h = record('conv4', conv(h, 'conv4', 384, 3, padding=1))
    h = record('conv5', conv(h, 'conv5', 256, 3, padding=1))
    h = record('pool5', max_pool(h))
    h = jnp.reshape(h, (h.shape[0], -1))                                 # [B, 6·6·256]
    for name in ('fc6', 'fc7'):
      h = record(name, jax.nn.relu(nn.Dense(4096, name=name)(h)))
      h = nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
    return record('fc8', nn.Dense(self.num_classes, name='fc8')(h))
