import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn
from seqnets.analysis import count_params
from seqnets.models import ImageCNN

IMAGES = jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8, 1)), jnp.float32)


def small_cnn(**kwargs):
  return ImageCNN(**{'features': (4, 8), 'num_classes': 3, 'dense_features': (6,), **kwargs})


def test_shapes_and_parameter_count():
  model = small_cnn()
  params = model.init(jax.random.key(0), IMAGES)['params']
  assert sorted(params) == ['conv0', 'conv1', 'head']
  # conv 3·3·1·4 + 4, conv 3·3·4·8 + 8, dense (2·2·8)·6 + 6, dense 6·3 + 3.
  assert count_params(params) == 40 + 296 + 198 + 21
  assert model.apply({'params': params}, IMAGES).shape == (2, 3)


def test_block_is_conv_relu_pool_then_head():
  model = small_cnn(features=(4,), pool_kind='avg', pool_window=(2, 2))
  params = model.init(jax.random.key(0), IMAGES)['params']
  h = jax.nn.relu(sn.Conv(4, (3, 3), padding='SAME').apply({'params': params['conv0']}, IMAGES))
  h = sn.pool(h, 'avg', 2).reshape(2, -1)
  expected = sn.MLP((6, 3)).apply({'params': params['head']}, h)
  np.testing.assert_allclose(model.apply({'params': params}, IMAGES), expected, rtol=1e-5, atol=1e-6)


def test_dropouts_act_only_in_training():
  model = small_cnn(dropout_rate=0.5, spatial_dropout_rate=0.5)
  variables = model.init(jax.random.key(0), IMAGES)
  evaluation = model.apply(variables, IMAGES)
  np.testing.assert_array_equal(evaluation, model.apply(variables, IMAGES, deterministic=True))
  training = model.apply(variables, IMAGES, deterministic=False, rngs={'dropout': jax.random.key(1)})
  assert not np.allclose(evaluation, training)


def test_1d_signals_without_pooling():
  model = ImageCNN(features=(3,), num_classes=2, kernel_size=(3,), strides=2, padding='VALID',
                   pool_kind=None)
  x = jnp.ones((2, 9, 2))
  logits, variables = model.init_with_output(jax.random.key(0), x)
  assert logits.shape == (2, 2)
  assert variables['params']['head']['Dense_0']['kernel'].shape == (4 * 3, 2)   # ⌊(9 − 3)/2⌋ + 1 = 4


def test_bad_config_fails_at_construction():
  with pytest.raises(ValueError, match='pool_kind'):
    small_cnn(pool_kind='median')
  with pytest.raises(ValueError, match='activation'):
    small_cnn(activation='gelu')
