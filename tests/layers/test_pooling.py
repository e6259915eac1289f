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
  """Plain loops over output cells and window offsets.

  A padded cell holds pad_value, or is skipped when pad_value is None; a window
  left with no cell gives 0.
  """
  batch, *spatial, channels = x.shape
  rank = len(window)
  out_shape = [(spatial[i] + pads[i][0] + pads[i][1] - window[i]) // strides[i] + 1
               for i in range(rank)]
  y = np.zeros((batch, *out_shape, channels))
  for b in range(batch):
    for c in range(channels):
      for p in itertools.product(*map(range, out_shape)):
        values = []
        for k in itertools.product(*map(range, window)):
          src = [strides[i] * p[i] + k[i] - pads[i][0] for i in range(rank)]
          if all(0 <= src[i] < spatial[i] for i in range(rank)):
            values.append(float(x[(b, *src, c)]))
          elif pad_value is not None:
            values.append(pad_value)
        if not values:
          y[(b, *p, c)] = 0.0
        elif kind == 'max':
          y[(b, *p, c)] = max(values)
        elif kind == 'avg':
          y[(b, *p, c)] = sum(values) / len(values)
        else:
          y[(b, *p, c)] = sum(values)
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
# At least a window wide on some side: some windows hold padding only.
WIDE = {1: ((4, 4),), 2: ((2, 3), (0, 4)), 3: ((2, 0), (0, 2), (3, 3))}


@pytest.mark.parametrize('rank,kind,padding,pad_value', itertools.product(
    (1, 2, 3), ('max', 'avg', 'sum'), ('VALID', 'SAME', 'explicit', 'wide'), (0.0, None, 2.5)))
def test_pool_matches_numpy_loop(rank, kind, padding, pad_value):
  # Inputs in [−5, −1]: a padded 0 or 2.5 wins a max if (and only if) it is counted.
  x = np.random.default_rng(rank).uniform(-5, -1, size=SHAPES[rank]).astype(np.float32)
  window, strides = WINDOWS[rank]
  spatial = SHAPES[rank][1:-1]
  pads = {'VALID': [(0, 0)] * rank, 'SAME': same_pads(spatial, window, strides),
          'explicit': EXPLICIT[rank], 'wide': WIDE[rank]}[padding]
  arg = pads if padding in ('explicit', 'wide') else padding
  y = sn.pool(jnp.asarray(x), kind, window, strides, arg, pad_value=pad_value)
  expected = reference_pool(x, kind, window, strides, pads, pad_value)
  assert y.shape == expected.shape
  np.testing.assert_allclose(y, expected, rtol=1e-5)


@pytest.mark.parametrize('kind,expected_y,expected_grad', [
    # Windows [pad, pad], [x0, x1], [x2, pad] of x = [1, 3, 2].
    ('max', [0.0, 3.0, 2.0], [0.0, 1.0, 1.0]),
    ('avg', [0.0, 2.0, 2.0], [0.5, 0.5, 1.0]),
    ('sum', [0.0, 4.0, 2.0], [1.0, 1.0, 1.0]),
])
def test_window_wholly_in_ignored_padding_gives_zero_and_zero_gradient(kind, expected_y, expected_grad):
  x = jnp.array([1.0, 3.0, 2.0])[None, :, None]

  def f(v):
    return sn.pool(v, kind, 2, 2, padding=((2, 1),), pad_value=None)[0, :, 0]

  np.testing.assert_array_equal(f(x), expected_y)
  np.testing.assert_array_equal(jax.grad(lambda v: jnp.sum(f(v)))(x)[0, :, 0], expected_grad)


def test_padding_counts_in_average_only_with_pad_value_zero():
  x = np.full((1, 3, 1), 6.0, np.float32)
  with_zeros = sn.pool(x, 'avg', 2, 2, padding=((0, 1),))[0, :, 0]
  ignored = sn.pool(x, 'avg', 2, 2, padding=((0, 1),), pad_value=None)[0, :, 0]
  np.testing.assert_allclose(with_zeros, [6.0, 3.0])     # flax count_include_pad=True
  np.testing.assert_allclose(ignored, [6.0, 6.0])        # flax count_include_pad=False


def test_pool_defaults_match_numpy_loop():
  x = np.random.default_rng(0).normal(size=(2, 6, 7, 3)).astype(np.float32)
  # window 2, strides = window, 'VALID', max: ⌊(6 − 2)/2⌋ + 1 = 3 by ⌊(7 − 2)/2⌋ + 1 = 3.
  y = sn.pool(x)
  assert y.shape == (2, 3, 3, 3)
  np.testing.assert_allclose(y, reference_pool(x, 'max', (2, 2), (2, 2), [(0, 0)] * 2, 0.0))
  # An int padding pads every side with zeros, counted in the average: 6 + 2 − 3 + 1 = 6.
  y = sn.pool(x, 'avg', 3, 1, padding=1)
  assert y.shape == (2, 6, 7, 3)
  np.testing.assert_allclose(y, reference_pool(x, 'avg', (3, 3), (1, 1), [(1, 1)] * 2, 0.0),
                             rtol=1e-5, atol=1e-6)


def test_pool_errors():
  x = jnp.ones((2, 6, 6, 3))
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


def reference_over_time(x, lengths, kind):
  """Plain loops: max or mean of x[b, :lengths[b]]; 0 for a row of length 0."""
  batch, _, features = x.shape
  y = np.zeros((batch, features))
  for b in range(batch):
    for f in range(features):
      values = [float(x[b, t, f]) for t in range(lengths[b])]
      if values:
        y[b, f] = max(values) if kind == 'max' else sum(values) / len(values)
  return y


@pytest.mark.parametrize('lengths', [[0, 0, 0], [1, 4, 0], [4, 4, 4], [2, 3, 1]])
@pytest.mark.parametrize('kind,fn', [('max', sn.max_over_time), ('mean', sn.mean_over_time)])
def test_over_time_pooling_matches_numpy_loop(kind, fn, lengths):
  rng = np.random.default_rng(len(lengths) + sum(lengths))
  # Negative real steps and large padding: padding would win a max or move a mean.
  x = rng.uniform(-5, -1, size=(3, 4, 2)).astype(np.float32)
  lengths = np.array(lengths)
  x[np.arange(4)[None, :] >= lengths[:, None]] = 100.0
  np.testing.assert_allclose(fn(x, lengths), reference_over_time(x, lengths, kind), rtol=1e-6)
  full = np.full(3, 4)
  np.testing.assert_allclose(fn(x), reference_over_time(x, full, kind), rtol=1e-6)


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
