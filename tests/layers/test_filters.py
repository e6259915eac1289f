import numpy as np
import pytest
import scipy.signal

import seqnets as sn
from seqnets.layers import filters

IMAGE = np.arange(1, 26, dtype=np.float32).reshape(5, 5)


def test_library_holds_the_classic_filters():
  assert sorted(sn.FILTERS) == sorted([
      'identity', 'shift_left', 'shift_right', 'shift_up', 'shift_down', 'box_blur',
      'gaussian_blur', 'sharpen', 'edge_detection', 'sobel_x', 'sobel_y'])
  np.testing.assert_allclose(sn.FILTERS['gaussian_blur'] * 16, [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
  np.testing.assert_array_equal(sn.FILTERS['edge_detection'], [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]])
  np.testing.assert_array_equal(sn.FILTERS['sobel_y'], [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
  np.testing.assert_array_equal(sn.FILTERS['sobel_x'], sn.FILTERS['sobel_y'].T)
  with pytest.raises(ValueError):
    sn.FILTERS['identity'][0, 0] = 1.0   # shared constants are read-only


@pytest.mark.parametrize('name,expected', [
    ('identity', IMAGE),
    ('shift_left', np.pad(IMAGE[:, 1:], ((0, 0), (0, 1)))),
    ('shift_right', np.pad(IMAGE[:, :-1], ((0, 0), (1, 0)))),
    ('shift_up', np.pad(IMAGE[1:], ((0, 1), (0, 0)))),
    ('shift_down', np.pad(IMAGE[:-1], ((1, 0), (0, 0)))),
])
def test_identity_and_shift_directions(name, expected):
  np.testing.assert_array_equal(sn.cross_correlate2d(IMAGE, filters.get(name)), expected)


@pytest.mark.parametrize('name', sorted(sn.FILTERS))
def test_every_filter_matches_scipy_both_ways(name):
  image = np.random.default_rng(0).normal(size=(6, 7))
  kernel = filters.get(name)
  np.testing.assert_allclose(sn.cross_correlate2d(image, kernel),
                             scipy.signal.correlate2d(image, kernel, mode='same'), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(sn.convolve2d(image, kernel),
                             scipy.signal.convolve2d(image, kernel, mode='same'), rtol=1e-5, atol=1e-5)


def test_blurs_and_edges_worked_example():
  # The 3×3 centre of IMAGE (values 7 8 9 / 12 13 14 / 17 18 19) under each filter, by hand.
  centre = {name: float(sn.cross_correlate2d(IMAGE[1:4, 1:4], filters.get(name), 'VALID')[0, 0])
            for name in ('box_blur', 'gaussian_blur', 'sharpen', 'edge_detection', 'sobel_x', 'sobel_y')}
  assert centre['box_blur'] == pytest.approx(117 / 9)                    # mean 13
  assert centre['gaussian_blur'] == pytest.approx((7 + 9 + 17 + 19 + 2 * (8 + 12 + 14 + 18) + 4 * 13) / 16)
  assert centre['sharpen'] == pytest.approx(5 * 13 - (8 + 12 + 14 + 18))  # 13: linear image
  assert centre['edge_detection'] == pytest.approx(8 * 13 - (117 - 13))   # 0
  assert centre['sobel_x'] == pytest.approx((9 - 7) + 2 * (14 - 12) + (19 - 17))      # 8
  assert centre['sobel_y'] == pytest.approx((17 - 7) + 2 * (18 - 8) + (19 - 9))       # 40


def test_blurs_preserve_flat_regions_and_edges_remove_them():
  flat = np.full((5, 5), 3.0)
  for name in ('box_blur', 'gaussian_blur', 'sharpen'):
    np.testing.assert_allclose(sn.cross_correlate2d(flat, filters.get(name), 'VALID'), 3.0, rtol=1e-6)
  for name in ('edge_detection', 'sobel_x', 'sobel_y'):
    np.testing.assert_allclose(sn.cross_correlate2d(flat, filters.get(name), 'VALID'), 0.0)


def test_sobel_signs_follow_the_gradient():
  ramp_right = np.tile(np.arange(5.0), (5, 1))          # grows to the right
  np.testing.assert_allclose(sn.cross_correlate2d(ramp_right, sn.FILTERS['sobel_x'], 'VALID'), 8.0)
  np.testing.assert_allclose(sn.cross_correlate2d(ramp_right.T, sn.FILTERS['sobel_y'], 'VALID'), 8.0)


def test_unknown_filter_lists_valid_names():
  with pytest.raises(ValueError, match="unknown filter 'emboss'.*sobel_x"):
    filters.get('emboss')
