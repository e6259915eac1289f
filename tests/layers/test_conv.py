import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

import seqnets as sn

IMAGE = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
SOBEL = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
EXPECTED = [[-13, -20, -17], [-18, -24, -18], [13, 20, 17]]


def test_true_convolution_worked_example():
  np.testing.assert_array_equal(sn.convolve2d(IMAGE, SOBEL), EXPECTED)


def test_cross_correlation_worked_example_uses_the_flipped_kernel():
  np.testing.assert_array_equal(sn.cross_correlate2d(IMAGE, [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]), EXPECTED)
  assert not np.array_equal(sn.cross_correlate2d(IMAGE, SOBEL), EXPECTED)


# (image shape, kernel shape): odd, even, mixed and non-square kernels, a kernel
# as large as the image, and (for 'SAME' / 'FULL') kernels larger than it.
SIZES = [((5, 6), (3, 3)), ((5, 6), (2, 2)), ((6, 5), (2, 3)), ((5, 6), (4, 1)), ((7, 4), (1, 2)),
         ((4, 4), (4, 4)), ((3, 5), (3, 5)), ((2, 7), (2, 4)), ((1, 1), (1, 1))]
LARGER = [((3, 4), (5, 6)), ((4, 3), (4, 6)), ((2, 2), (3, 1))]
FUNCTIONS = [(sn.convolve2d, scipy.signal.convolve2d), (sn.cross_correlate2d, scipy.signal.correlate2d)]


def shape_id(shape):
  return 'x'.join(map(str, shape))


def random_pair(image_shape, kernel_shape):
  rng = np.random.default_rng(image_shape + kernel_shape)
  return rng.normal(size=image_shape), rng.normal(size=kernel_shape)


@pytest.mark.parametrize('ours,scipy_fn', FUNCTIONS, ids=['convolve2d', 'cross_correlate2d'])
@pytest.mark.parametrize('mode', ['SAME', 'VALID', 'FULL'])
@pytest.mark.parametrize('image_shape,kernel_shape', SIZES + LARGER, ids=shape_id)
def test_textbook_functions_match_scipy(ours, scipy_fn, mode, image_shape, kernel_shape):
  image, kernel = random_pair(image_shape, kernel_shape)
  if mode == 'VALID' and (image_shape, kernel_shape) in LARGER:
    with pytest.raises(ValueError, match='does not fit'):
      ours(image, kernel, mode)
    return
  expected = scipy_fn(image, kernel, mode=mode.lower())
  out = ours(image, kernel, mode)
  assert out.shape == expected.shape
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('ours,scipy_fn', FUNCTIONS, ids=['convolve2d', 'cross_correlate2d'])
@pytest.mark.parametrize('padding,pads', [
    (0, ((0, 0), (0, 0))),
    (1, ((1, 1), (1, 1))),
    (((2, 0), (1, 3)), ((2, 0), (1, 3))),
    ([[0, 1], 2], ((0, 1), (2, 2))),
])
@pytest.mark.parametrize('image_shape,kernel_shape', [((5, 6), (3, 3)), ((4, 5), (2, 3)), ((3, 3), (4, 2))],
                         ids=shape_id)
def test_explicit_padding_is_zeros_then_valid(ours, scipy_fn, padding, pads, image_shape, kernel_shape):
  # The same zeros for both functions: pad the image, then slide where the kernel fits.
  image, kernel = random_pair(image_shape, kernel_shape)
  padded = np.pad(image, pads)
  if any(p < k for p, k in zip(padded.shape, kernel_shape)):
    with pytest.raises(ValueError, match='does not fit'):
      ours(image, kernel, padding)
    return
  np.testing.assert_allclose(ours(image, kernel, padding), scipy_fn(padded, kernel, mode='valid'),
                             rtol=1e-5, atol=1e-5)


def test_even_kernel_same_padding_side_by_hand():
  # A one-hot kernel shows where 'SAME' centres it (c = ⌊(K − 1)/2⌋ = 0 for K = 2).
  x = np.arange(1.0, 5.0)[None]                 # [[1, 2, 3, 4]]
  delta = np.array([[0.0, 1.0]])                # kernel[0, 1] = 1
  # Convolution: y[j] = Σ_n k[n] · x[j − n + c] = x[j − 1] (zero before the image).
  np.testing.assert_array_equal(sn.convolve2d(x, delta), [[0, 1, 2, 3]])
  # Cross-correlation: y[j] = Σ_n k[n] · x[j + n − c] = x[j + 1] (zero after it).
  np.testing.assert_array_equal(sn.cross_correlate2d(x, delta), [[2, 3, 4, 0]])
  np.testing.assert_array_equal(sn.convolve2d(x, delta, 'FULL'), [[0, 1, 2, 3, 4]])


def test_textbook_function_errors():
  with pytest.raises(ValueError, match=r'image \[H, W\]'):
    sn.convolve2d(np.ones((1, 3, 3)), np.ones((2, 2)))
  with pytest.raises(ValueError, match='padding'):
    sn.cross_correlate2d(np.ones((3, 3)), np.ones((2, 2)), 'CIRCULAR')


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


@pytest.mark.parametrize('conv,strides,pads,out_spatial', [
    # Default padding 'VALID': N' = 6 − 3 + 1 = 4.
    (sn.Conv(3, (3, 3)), (1, 1), ((0, 0), (0, 0)), (4, 4)),
    # Lists from a config: ⌊(6 + 2 − 3)/2⌋ + 1 = 3 and ⌊(6 + 2 − 3)/2⌋ + 1 = 3.
    (sn.Conv(3, [3, 3], strides=2, padding=[[1, 1], [0, 2]]), (2, 2), ((1, 1), (0, 2)), (3, 3)),
    # An int pads every side: 6 + 2 − 3 + 1 = 6.
    (sn.Conv(3, (3, 3), padding=1), (1, 1), ((1, 1), (1, 1)), (6, 6)),
])
def test_conv_defaults_and_config_lists_match_numpy_loop(conv, strides, pads, out_spatial):
  x = np.random.default_rng(1).normal(size=(2, 6, 6, 2)).astype(np.float32)
  params = conv.init(jax.random.key(0), x)['params']
  # Parameters by hand: K_h · K_w · C · F + F = 3 · 3 · 2 · 3 + 3.
  assert sn.analysis.count_params(params) == 57
  y = conv.apply({'params': params}, x)
  assert y.shape == (2, *out_spatial, 3)
  expected = reference_conv(x, np.asarray(params['kernel']), np.asarray(params['bias']), strides,
                            (1, 1), pads)
  np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_conv_errors_name_the_problem():
  with pytest.raises(ValueError, match='padding'):
    sn.Conv(3, (3, 3), padding=((1, 1),))
  with pytest.raises(ValueError, match='strides'):
    sn.Conv(3, (3, 3), strides=(1, 1, 1))
  with pytest.raises(ValueError, match=r'1D and expects inputs'):
    sn.Conv(3, 3).init(jax.random.key(0), jnp.ones((1, 5, 5, 2)))
  with pytest.raises(ValueError, match='too small'):
    sn.Conv(3, (5, 5)).init(jax.random.key(0), jnp.ones((1, 4, 6, 2)))
