import jax
import jax.numpy as jnp
import pytest

from seqnets.analysis import count_params, param_table
from seqnets.models import AlexNet

IMAGES = jax.ShapeDtypeStruct((1, 227, 227, 3), jnp.float32)


@pytest.fixture(scope='module')
def variables():
  # Abstract only: no 250 MB of weights are allocated, no convolution is run.
  return jax.eval_shape(lambda key, x: AlexNet().init(key, x, mutable=True), jax.random.key(0), IMAGES)


def test_layer_output_shapes(variables):
  shapes = {name[:-len('_output')]: value[0].shape[1:]
            for name, value in variables['intermediates'].items()}
  assert shapes == {
      'conv1': (55, 55, 96), 'pool1': (27, 27, 96), 'conv2': (27, 27, 256), 'pool2': (13, 13, 256),
      'conv3': (13, 13, 384), 'conv4': (13, 13, 384), 'conv5': (13, 13, 256), 'pool5': (6, 6, 256),
      'fc6': (4096,), 'fc7': (4096,), 'fc8': (1000,)}


def test_first_layer_has_the_published_weights(variables):
  table = {path: (shape, count) for path, shape, count in param_table(variables['params'])}
  assert table['conv1/kernel'] == ((11, 11, 3, 96), 11 * 11 * 3 * 96) == ((11, 11, 3, 96), 34_848)
  assert table['conv1/bias'] == ((96,), 96)
  # Pooling layers own no parameters: every parameter belongs to a conv or fc layer.
  assert {path.split('/')[0] for path in table} == {
      'conv1', 'conv2', 'conv3', 'conv4', 'conv5', 'fc6', 'fc7', 'fc8'}


def test_parameter_counts_per_layer_and_total(variables):
  params = variables['params']
  per_layer = {name: count_params(params[name]) for name in params}
  assert per_layer == {
      'conv1': 34_944, 'conv2': 614_656, 'conv3': 885_120, 'conv4': 1_327_488, 'conv5': 884_992,
      'fc6': 37_752_832, 'fc7': 16_781_312, 'fc8': 4_097_000}
  assert count_params(params) == 62_378_344


def test_forward_pass_traces_to_logits(variables):
  model = AlexNet(num_classes=10)
  params = jax.eval_shape(model.init, jax.random.key(0), IMAGES)
  logits = jax.eval_shape(lambda v, x, key: model.apply(v, x, deterministic=False, rngs={'dropout': key}),
                          params, IMAGES, jax.random.key(1))
  assert logits.shape == (1, 10)
  assert count_params(params) == 62_378_344 - 4_097_000 + 4096 * 10 + 10
