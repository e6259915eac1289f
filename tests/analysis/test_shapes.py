import jax
import jax.numpy as jnp
import pytest

import seqnets as sn
from seqnets.analysis import conv_output_shape, conv_output_size


@pytest.mark.parametrize('args,expected', [
    (dict(n=227, kernel=11, stride=4), 55),              # AlexNet conv1
    (dict(n=55, kernel=3, stride=2), 27),                # AlexNet pool1
    (dict(n=27, kernel=5, padding=2), 27),               # (N − K + 2P)/S + 1
    (dict(n=7, kernel=3, stride=2, padding=1), 4),
    (dict(n=10, kernel=3, dilation=2), 6),               # effective kernel D(K − 1) + 1 = 5
    (dict(n=5, kernel=2, stride=2, padding=(0, 1)), 3),
    (dict(n=10, kernel=4, stride=3, padding='SAME'), 4),
    (dict(n=10, kernel=4, stride=3, padding='VALID'), 3),
])
def test_conv_output_size(args, expected):
  assert conv_output_size(**args) == expected


def test_conv_output_size_errors_name_the_values():
  with pytest.raises(ValueError, match='n=3, kernel=5, stride=1, padding=0, dilation=1'):
    conv_output_size(3, 5)
  with pytest.raises(ValueError, match='stride=0'):
    conv_output_size(3, 1, stride=0)
  with pytest.raises(ValueError, match='padding'):
    conv_output_size(3, 1, padding='FULL')


@pytest.mark.parametrize('kernel,stride,padding,dilation', [
    ((3, 2), (2, 1), ((0, 1), (2, 0)), (1, 2)),
    ((3, 3), 2, 'SAME', 1),
    ((2, 2, 3), 1, 1, (1, 2, 1)),
])
def test_conv_output_shape_agrees_with_conv(kernel, stride, padding, dilation):
  spatial = (7, 6) if len(kernel) == 2 else (4, 5, 6)
  conv = sn.Conv(2, kernel, strides=stride, padding=padding, kernel_dilation=dilation)
  out = jax.eval_shape(conv.init_with_output, jax.random.key(0),
                       jax.ShapeDtypeStruct((1, *spatial, 1), jnp.float32))[0]
  assert conv_output_shape(spatial, kernel, stride, padding, dilation) == out.shape[1:-1]


@pytest.mark.parametrize('spatial,window,stride,padding,expected', [
    ((6, 7), 2, 2, 'VALID', (3, 3)),                    # ⌊(6 − 2)/2⌋ + 1, ⌊(7 − 2)/2⌋ + 1
    ((6, 7), 3, 1, 1, (6, 7)),                          # N + 2 − 3 + 1
    ((5, 5), (2, 2), (2, 1), ((0, 1), (0, 1)), (3, 5)),  # the pooling worked example
    ((7,), 3, 2, 'SAME', (4,)),                         # ⌈7 / 2⌉
    ((4, 3, 5), (2, 2, 3), (1, 2, 2), ((2, 0), (0, 2), (3, 3)), (5, 2, 5)),
])
def test_conv_output_shape_by_hand_agrees_with_pool(spatial, window, stride, padding, expected):
  assert conv_output_shape(spatial, window, stride, padding) == expected
  out = jax.eval_shape(lambda x: sn.pool(x, 'max', window, stride, padding),
                       jax.ShapeDtypeStruct((1, *spatial, 1), jnp.float32))
  assert out.shape[1:-1] == expected


def test_conv_output_shape_errors_name_the_axis_count():
  with pytest.raises(ValueError, match='kernel=.*needs 2 entries'):
    conv_output_shape((5, 5), (3, 3, 3))
