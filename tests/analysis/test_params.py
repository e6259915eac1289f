import jax
import jax.numpy as jnp
import pytest

import seqnets as sn
from seqnets.analysis import count_params, param_table


def test_counts_and_table_of_an_mlp():
  shapes = jax.eval_shape(sn.MLP((5, 3)).init, jax.random.key(0), jax.ShapeDtypeStruct((1, 2), jnp.float32))
  assert count_params(shapes) == 2 * 5 + 5 + 5 * 3 + 3
  assert param_table(shapes['params']) == [
      ('Dense_0/bias', (5,), 5), ('Dense_0/kernel', (2, 5), 10),
      ('Dense_1/bias', (3,), 3), ('Dense_1/kernel', (5, 3), 15)]


def test_counts_real_arrays_too():
  assert count_params({'a': jnp.zeros((2, 3)), 'b': [jnp.zeros(4)]}) == 10


@pytest.mark.parametrize('conv,channels,table', [
    # K_h · K_w · C · F + F: AlexNet's conv1, 11·11·3·96 + 96.
    (sn.Conv(96, (11, 11), strides=4), 3, [('bias', (96,), 96), ('kernel', (11, 11, 3, 96), 34848)]),
    (sn.Conv(8, (5,), use_bias=False), 4, [('kernel', (5, 4, 8), 160)]),
    (sn.Conv(2, (2, 3, 1)), 5, [('bias', (2,), 2), ('kernel', (2, 3, 1, 5, 2), 60)]),
])
def test_conv_counts_by_hand(conv, channels, table):
  x = jax.ShapeDtypeStruct((1, *(12,) * len(conv.kernel_size), channels), jnp.float32)
  params = jax.eval_shape(conv.init, jax.random.key(0), x)['params']
  assert param_table(params) == table
  assert count_params(params) == sum(count for _, _, count in table)


def test_layers_without_parameters_count_zero():
  x = jnp.ones((1, 4, 4, 3))
  assert count_params(sn.LocalResponseNorm().init(jax.random.key(0), x)) == 0
  assert count_params({}) == 0 and param_table({}) == []
