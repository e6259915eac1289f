import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn

MATRIX = np.array([[1, 2, 3, 4, 5], [9, 8, 7, 6, 0], [0, 2, 4, 6, 8], [2, 3, 4, 5, 1],
                   [6, 7, 8, 9, 0]], np.float32)[None, :, :, None]
PAD_BOTTOM_RIGHT = ((0, 1), (0, 1))


def test_worked_example_stride_2_1():
  y = sn.pool(MATRIX, 'max', (2, 2), (2, 1), PAD_BOTTOM_RIGHT)
  np.testing.assert_array_equal(y[0, :, :, 0], [[9, 8, 7, 6, 5], [3, 4, 6, 8, 8], [7, 8, 9, 9, 0]])


def test_worked_example_stride_1_2():
  y = sn.pool(MATRIX, 'max', (2, 2), (1, 2), PAD_BOTTOM_RIGHT)
  np.testing.assert_array_equal(y[0, :, :, 0], [[9, 7, 5], [9, 7, 8], [3, 6, 8], [7, 9, 1], [7, 9, 0]])


def reference_pool(x, kind, window, strides, pads, pad_value):
  """Plain loop; padded cells hold pad_value, or NaN (= ignored) when pad_value is None."""
  fill = np.nan if pad_value is None else pad_value
  x = np.pad(x.astype(np.float64), [(0, 0), *pads, (0, 0)], constant_values=fill)
  rank = len(window)
  out_shape = [(x.shape[1 + i] - window[i]) // strides[i] + 1 for i in range(rank)]
  reduce = {'max': np.nanmax, 'avg': np.nanmean, 'sum': np.nansum}[kind]
  y = np.zeros((x.shape[0], *out_shape, x.shape[-1]))
  for p in itertools.product(*map(range, out_shape)):
    region = tuple(slice(strides[i] * p[i], strides[i] * p[i] + window[i]) for i in range(rank))
    block = x[(slice(None), *region)].reshape(x.shape[0], -1, x.shape[-1])
    y[(slice(None), *p)] = reduce(block, axis=1)
  return y


def same_pads(spatial, window, strides):
  pads = []
  for n, k, s in zip(spatial, window, strides):
    total = max((-(-n // s) - 1) * s + k - n, 0)
    pads.append((total // 2, total - total // 2))
  return pads


SHAPES = {1: (2, 7, 3), 2: (1, 5, 4, 2), 3: (1, 4, 3, 5, 2)}
WINDOWS = {1: ((3,), (2,)), 2: ((2, 3), (2, 1)), 3: ((2, 2, 3), (1, 2, 2))}
EXPLICIT = {1: ((1, 2),), 2: ((1, 0), (0, 2)), 3: ((0, 1), (1, 1), (2, 0))}


@pytest.mark.parametrize('rank,kind,padding,pad_value', itertools.product(
    (1, 2, 3), ('max', 'avg', 'sum'), ('VALID', 'SAME', 'explicit'), (0.0, None)))
def test_pool_matches_numpy_loop(rank, kind, padding, pad_value):
  # Negative inputs, so a padded zero would win a max if (and only if) it is counted.
  x = np.random.default_rng(rank).uniform(-5, -1, size=SHAPES[rank]).astype(np.float32)
  window, strides = WINDOWS[rank]
  spatial = SHAPES[rank][1:-1]
  pads = {'VALID': [(0, 0)] * rank, 'SAME': same_pads(spatial, window, strides),
          'explicit': EXPLICIT[rank]}[padding]
  arg = EXPLICIT[rank] if padding == 'explicit' else padding
  y = sn.pool(jnp.asarray(x), kind, window, strides, arg, pad_value=pad_value)
  np.testing.assert_allclose(y, reference_pool(x, kind, window, strides, pads, pad_value), rtol=1e-5)


def test_padding_counts_in_average_only_with_pad_value_zero():
  x = np.full((1, 3, 1), 6.0, np.float32)
  with_zeros = sn.pool(x, 'avg', 2, 2, padding=((0, 1),))[0, :, 0]
  ignored = sn.pool(x, 'avg', 2, 2, padding=((0, 1),), pad_value=None)[0, :, 0]
  np.testing.assert_allclose(with_zeros, [6.0, 3.0])     # flax count_include_pad=True
  np.testing.assert_allclose(ignored, [6.0, 6.0])        # flax count_include_pad=False


def test_pool_defaults_and_errors():
  x = jnp.ones((2, 6, 6, 3))
  assert sn.pool(x).shape == (2, 3, 3, 3)                # window 2, strides = window
  assert sn.pool(x, 'avg', 3, 1, padding=1).shape == (2, 6, 6, 3)
  with pytest.raises(ValueError, match="kind='min'"):
    sn.pool(x, 'min')
  with pytest.raises(ValueError, match='window'):
    sn.pool(x, 'max', (2, 2, 2))
  with pytest.raises(ValueError, match='does not fit'):
    sn.pool(x, 'max', 7)


@pytest.mark.parametrize('kind,fn', [('max', np.max), ('avg', np.mean), ('sum', np.sum)])
def test_global_pool(kind, fn):
  x = np.random.default_rng(0).normal(size=(2, 3, 4, 5, 3)).astype(np.float32)
  np.testing.assert_allclose(sn.global_pool(x, kind), fn(x, axis=(1, 2, 3)), rtol=1e-5)


def test_max_over_time_ignores_padding_and_empty_rows_give_zero():
  x = np.array([[[1.0, -3.0], [-5.0, -1.0], [9.0, 9.0]],
                [[-2.0, -4.0], [7.0, 7.0], [7.0, 7.0]],
                [[8.0, 8.0], [8.0, 8.0], [8.0, 8.0]]])
  np.testing.assert_array_equal(sn.max_over_time(x, np.array([2, 1, 0])),
                                [[1.0, -1.0], [-2.0, -4.0], [0.0, 0.0]])
  np.testing.assert_array_equal(sn.max_over_time(x), x.max(axis=1))


def test_over_time_pooling_is_padding_invariant_with_finite_gradients():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 4, 3)).astype(np.float32)
  lengths = np.array([3, 0])
  padded = np.concatenate([x, 100 * np.ones((2, 3, 3), np.float32)], axis=1)
  for fn in (sn.max_over_time, sn.mean_over_time):
    np.testing.assert_allclose(fn(x, lengths), fn(padded, lengths), rtol=1e-6)
    grads = jax.grad(lambda v, fn=fn: jnp.sum(fn(v, lengths)))(padded)
    assert np.all(np.isfinite(grads)) and not np.any(grads[:, 3:]) and not np.any(grads[1])
  np.testing.assert_allclose(sn.mean_over_time(x, lengths)[0], x[0, :3].mean(axis=0), rtol=1e-6)
