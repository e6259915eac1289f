"""Parameter counts of a model: total and per array.

Synopsis:
  params = jax.eval_shape(model.init, key, x)['params']   # no arrays allocated
  count_params(params)                                    # 62_378_344 for AlexNet
  for path, shape, count in param_table(params): ...      # ('conv1/kernel', (11, 11, 3, 96), 34848)
"""

from __future__ import annotations

import math
from typing import Any

import jax


def _size(leaf: Any) -> int:
  return math.prod(getattr(leaf, 'shape', ()))


def _path(key_path) -> str:
  return '/'.join(str(getattr(k, 'key', getattr(k, 'idx', getattr(k, 'name', k)))) for k in key_path)


def param_table(params: Any) -> list[tuple[str, tuple[int, ...], int]]:
  """`(path, shape, count)` for every array in `params`, in tree order.

  Works on real arrays and on `jax.ShapeDtypeStruct`s (from `jax.eval_shape`),
  so big models are counted without allocating them. Paths join keys with '/'
  (`'conv1/kernel'`).
  """
  leaves, _ = jax.tree_util.tree_flatten_with_path(params)
  return [(_path(path), tuple(leaf.shape), _size(leaf)) for path, leaf in leaves]


def count_params(params: Any) -> int:
  """Total number of scalars in the arrays of `params` (any pytree)."""
  return sum(_size(leaf) for leaf in jax.tree_util.tree_leaves(params))
