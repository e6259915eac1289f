import numpy as np
import pytest

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
