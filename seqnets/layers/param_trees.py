"""The parameter trees of a recurrent layer, read cell by cell.

An `RNN`'s params are `{'cell': {...}}`; a `Bidirectional`'s
`{'forward': {'cell': ...}, 'backward': {'cell': ...}}`; a `StackedRNN`'s
`{'layers_0': <one of those>, 'layers_1': ...}`. Converters between layouts (PyTorch's,
cuDNN's) walk these trees the same way.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

DIRECTIONS = ('forward', 'backward')         # Bidirectional's submodules
LAYER = re.compile(r'layers_(\d+)')          # StackedRNN's submodules


def is_stacked(params: Mapping[str, Any]) -> bool:
  """Whether `params` are a StackedRNN's (every key `layers_<i>`)."""
  return bool(params) and all(LAYER.fullmatch(key) for key in params)


def cells_by_layer(params: Mapping[str, Any]) -> list[list[Mapping[str, Any]]]:
  """`[[cell params per direction] per layer]` of a StackedRNN, RNN or Bidirectional tree
  (ValueError naming the keys for any other tree)."""
  def layer_cells(layer: Mapping[str, Any], where: str) -> list[Mapping[str, Any]]:
    if set(layer) == {'cell'}:
      return [layer['cell']]
    if set(layer) == set(DIRECTIONS) and all(set(layer[d]) == {'cell'} for d in DIRECTIONS):
      return [layer[d]['cell'] for d in DIRECTIONS]
    raise ValueError(f'{where}: expected the params of an RNN ({{"cell"}}) or a Bidirectional '
                     f'({{"forward", "backward"}}), got keys {sorted(layer)}')

  if is_stacked(params):
    indices = sorted(int(LAYER.fullmatch(key).group(1)) for key in params)
    if indices != list(range(len(indices))):
      raise ValueError(f'StackedRNN layers must be layers_0 ... layers_{len(indices) - 1}, '
                       f'got {sorted(params)}')
    return [layer_cells(params[f'layers_{l}'], f'layers_{l}') for l in indices]
  return [layer_cells(params, 'params')]
