import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn

IMAGE = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
SOBEL = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
EXPECTED = [[-13, -20, -17], [-18, -24, -18], [13, 20, 17]]


def test_true_convolution_worked_example():
  np.testing.assert_array_equal(sn.convolve2d(IMAGE, SOBEL), EXPECTED)


def test_cross_correlation_worked_example_uses_the_flipped_kernel():
  np.testing.assert_array_equal(sn.cross_correlate2d(IMAGE, [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]), EXPECTED)
  assert not np.array_equal(sn.cross_correlate2d(IMAGE, SOBEL), EXPECTED)


def test_convolve2d_padding_modes():
  assert sn.convolve2d(np.ones((5, 4)), np.ones((3, 2)), 'VALID').shape == (3, 3)
  assert sn.convolve2d(np.ones((5, 4)), np.ones((3, 3)), 1).shape == (5, 4)
  # Two zero rows on top, one zero column each side: windows hold 1 or 2 rows of ones.
  out = sn.cross_correlate2d(np.ones((2, 2)), np.ones((3, 3)), ((2, 0), (1, 1)))
  np.testing.assert_array_equal(out, [[2, 2], [4, 4]])


def reference_conv(x, kernel, bias, strides, dilation, pads):
  """Plain loop over output positions: y[b, p, f] = b[f] + Σ_k,c w[k, c, f] · x̃[b, S·p + D·k, c]."""
  rank = kernel.ndim - 2
  x = np.pad(x, [(0, 0), *pads, (0, 0)])
  out_shape = [(x.shape[1 + i] - dilation[i] * (kernel.shape[i] - 1) - 1) // strides[i] + 1
               for i in range(rank)]
  y = np.zeros((x.shape[0], *out_shape, kernel.shape[-1]))
  for p in itertools.product(*map(range, out_shape)):
    for k in itertools.product(*map(range, kernel.shape[:rank])):
      src = tuple(strides[i] * p[i] + dilation[i] * k[i] for i in range(rank))
      y[(slice(None), *p)] += x[(slice(None), *src)] @ kernel[k]
  return y + bias


@pytest.mark.parametrize('kernel_size,strides,dilation,padding,spatial', [
    ((3,), (2,), (1,), ((1, 2),), (7,)),
    ((2,), (1,), (3,), 'VALID', (7,)),
    ((3, 2), (2, 1), (1, 2), ((0, 1), (2, 0)), (5, 6)),
    ((3, 3), (1, 2), (1, 1), 'SAME', (4, 5)),
    ((2, 2, 2), (1, 2, 1), (1, 1, 2), ((1, 0), (0, 0), (1, 1)), (3, 4, 4)),
])
def test_conv_matches_numpy_loop(kernel_size, strides, dilation, padding, spatial):
  x = np.random.default_rng(0).normal(size=(2, *spatial, 3)).astype(np.float32)
  conv = sn.Conv(4, kernel_size, strides=strides, kernel_dilation=dilation, padding=padding,
                 bias_init=jax.nn.initializers.normal(1.0))
  params = conv.init(jax.random.key(0), x)['params']
  assert params['kernel'].shape == (*kernel_size, 3, 4)
  if padding == 'SAME':  # XLA's rule: output ⌈N/S⌉, the odd pad at the end
    pads = []
    for n, k, s, d in zip(spatial, kernel_size, strides, dilation):
      total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
      pads.append((total // 2, total - total // 2))
  elif padding == 'VALID':
    pads = [(0, 0)] * len(spatial)
  else:
    pads = padding
  expected = reference_conv(x, np.asarray(params['kernel']), np.asarray(params['bias']), strides,
                            dilation, pads)
  np.testing.assert_allclose(conv.apply({'params': params}, x), expected, rtol=1e-5, atol=1e-5)


def test_conv_defaults_to_valid_and_accepts_config_lists():
  x = jnp.ones((1, 6, 6, 2))
  conv = sn.Conv(3, (3, 3))
  assert conv.init_with_output(jax.random.key(0), x)[0].shape == (1, 4, 4, 3)
  conv = sn.Conv(3, [3, 3], strides=2, padding=[[1, 1], [0, 2]])
  assert conv.init_with_output(jax.random.key(0), x)[0].shape == (1, 3, 3, 3)
  assert sn.Conv(3, (3, 3), padding=1).init_with_output(jax.random.key(0), x)[0].shape == (1, 6, 6, 3)


def test_conv_errors_name_the_problem():
  with pytest.raises(ValueError, match='padding'):
    sn.Conv(3, (3, 3), padding=((1, 1),))
  with pytest.raises(ValueError, match='strides'):
    sn.Conv(3, (3, 3), strides=(1, 1, 1))
  with pytest.raises(ValueError, match=r'1D and expects inputs'):
    sn.Conv(3, 3).init(jax.random.key(0), jnp.ones((1, 5, 5, 2)))
  with pytest.raises(ValueError, match='too small'):
    sn.Conv(3, (5, 5)).init(jax.random.key(0), jnp.ones((1, 4, 6, 2)))
