"""The flat layout of `config.model` that earlier versions used, nested.

Earlier configs spelt the cell beside the model's keys, `model.cell='lstm'`,
`model.hidden_size=8`, `model.forget_bias=1.0`, often with the settings of other cells
too. `nest` moves the cell's keys into `model.cell = dict(name='lstm', hidden_size=8, ...)`.
"""

from __future__ import annotations

from seqnets.models import cells

def is_flat(model) -> bool:
  """True for a `config.model` in the flat layout (its `cell` a name)."""
  return isinstance(model.get('cell'), str)


def nest(model: dict, has_cell: bool, saved: bool = False) -> dict:
  """`model` (a dict in the flat layout: `cell` a name) with the cell as one nested entry;
  `has_cell`: whether the named model takes a cell at all. `saved`: drop the keys that do
  not apply (they never reached a model), else refuse them (ValueError naming the key)."""
  model = dict(model)
  name = model.pop('cell')
  flat_keys = cells.keys_of_every_cell()
  cell = {'name': name, **{k: model.pop(k) for k in list(model) if k in flat_keys}}
  if not has_cell:
    if not saved:
      raise ValueError(f"model.cell={name!r} is not a setting of model {model['name']!r}")
    return model
  if name in cells.CELLS:
    valid = cells.CELLS[name].fields()
    for key in [k for k in cell if k not in ('name', *valid)]:
      if not saved:
        raise ValueError(f'model.{key} is not a setting of the {name!r} cell (model.cell); '
                         f'valid: {list(valid)}')
      del cell[key]
  model['cell'] = cell
  return model
