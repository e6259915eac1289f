"""`model.cell`: one nested config entry that becomes a recurrent cell.

  model.cell = dict(name='lstm', hidden_size=128, forget_bias=1.0, use_peepholes=True)
  cell_fn = cells.from_config(config.model.cell)     # a fresh LSTMCell per call

`name` picks the cell class in `CELLS`; `hidden_size` is its `features`; every other key is
one of the class's plain fields (`config_fields`: checked against its annotation, its
default taken from the class) or one of the few config spellings below that stand for a
field of another type. A key the cell does not have is an error naming it and the valid keys.

  activation          Elman and skip cells: `activation_fn` by name (`sn.ACTIVATIONS`)
  input_bias, output_bias   LSTM: initial biases of the i and o gates (f: `forget_bias`)
  forget_bias='chrono', chrono_max_length=T   LSTM: chrono initialisation (Tallec &
                      Ollivier 2018), b_f = log u, b_i = −b_f, u ~ U(1, T − 1) per unit
  update_bias='chrono', chrono_max_length=T   GRU: its analogue, b_z = −log u
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Callable, Literal, Mapping

from flax import linen as nn

from seqnets.layers import initializers
from seqnets.layers import orthogonal
from seqnets.layers.echo_state import EchoStateCell
from seqnets.layers.elman import ElmanCell
from seqnets.layers.feedforward import ACTIVATIONS
from seqnets.layers.gru import GRUCell
from seqnets.layers.leaky import LeakyRNNCell
from seqnets.layers import gru
from seqnets.layers import lstm
from seqnets.layers.lstm import LSTMCell
from seqnets.layers.time_skip import SkipRNNCell
from seqnets.layers.unitary import UnitaryRNNCell
from seqnets.models import config_fields
from seqnets.models.config_fields import Range

# Fields set by the layers that run the cell, never by a config.
_NOT_CONFIG = ('features', 'deterministic')
_ACTIVATION = config_fields.Field('activation', str, 'tanh')


@dataclasses.dataclass(frozen=True)
class Cell:
  """A cell class as a config entry.

  Attributes:
    cls: the `nn.RNNCellBase` class.
    extra: config keys that are not fields of `cls` -> (their Field, kept apart).
    to_fields: `(settings) -> keyword arguments of cls` for the extra keys.
    choices: valid values of `str` fields (the layers' own lists).
    ranges: bounds of number fields beyond the rules of `config_fields`.
  """
  cls: type
  extra: tuple[config_fields.Field, ...] = ()
  to_fields: Callable[[dict], dict] = lambda settings: {}
  choices: Mapping[str, tuple] = dataclasses.field(default_factory=dict)
  ranges: Mapping[str, Range] = dataclasses.field(default_factory=dict)

  def fields(self) -> dict[str, config_fields.Field]:
    """Config key -> Field, `hidden_size` first."""
    found = {'hidden_size': config_fields.Field('hidden_size', int, config_fields.REQUIRED)}
    for name, field in config_fields.settable_fields(self.cls, exclude=_NOT_CONFIG).items():
      annotation = field.annotation
      if name in self.choices:
        annotation = _literal(self.choices[name])
      if name in self.ranges:
        annotation = _annotated(field.annotation, self.ranges[name])
      found[name] = config_fields.Field(name, annotation, field.default)
    for field in self.extra:
      annotation = _literal(self.choices[field.name]) if field.name in self.choices else field.annotation
      found[field.name] = config_fields.Field(field.name, annotation, field.default)
    return found


def _literal(values: tuple):
  return Literal[tuple(values)]


def _annotated(annotation, bounds: Range):
  return Annotated[annotation, bounds]


def _activation_fn(settings: dict) -> dict:
  return {'activation_fn': ACTIVATIONS[settings['activation']]}


def _lstm_biases(settings: dict) -> dict:
  try:
    init = lstm.default_bias_init(settings['forget_bias'], settings['chrono_max_length'],
                                  settings['input_bias'], settings['output_bias'])
  except ValueError as e:
    raise ValueError(f'model.cell: {e}') from None
  return {'bias_init': init}


def _gru_biases(settings: dict) -> dict:
  """Checks the GRU's bias settings now (the cell builds its bias from them)."""
  try:
    gru.default_bias_init(settings['update_bias'], settings['chrono_max_length'])
  except ValueError as e:
    raise ValueError(f'model.cell: {e}') from None
  return {}


_UNIT_INTERVAL = Range(0.0, 1.0)
_NON_NEGATIVE = Range(0.0, None)
_ACTIVATION_NAMES = tuple(sorted(ACTIVATIONS))

CELLS: dict[str, Cell] = {
    'elman': Cell(ElmanCell, extra=(_ACTIVATION,), to_fields=_activation_fn,
                  choices={'activation': _ACTIVATION_NAMES}),
    'lstm': Cell(LSTMCell, extra=(config_fields.Field('input_bias', float, 0.0),
                                  config_fields.Field('output_bias', float, 0.0)),
                 to_fields=_lstm_biases, ranges={'chrono_max_length': Range(3, None)}),
    'gru': Cell(GRUCell, to_fields=_gru_biases, ranges={'chrono_max_length': Range(3, None)}),
    'orthogonal': Cell(orthogonal.OrthogonalRNNCell,
                       choices={'activation': orthogonal.ACTIVATIONS,
                                'parametrization': orthogonal.PARAMETRIZATIONS}),
    # hidden_size complex units: the layer outputs [Re h, Im h], 2 · hidden_size features.
    'unitary': Cell(UnitaryRNNCell, ranges={'epsilon': Range(0.0, None)}),
    'leaky': Cell(LeakyRNNCell, ranges={'leak': _UNIT_INTERVAL}),
    'skip': Cell(SkipRNNCell, extra=(_ACTIVATION,), to_fields=_activation_fn,
                 choices={'activation': _ACTIVATION_NAMES}, ranges={'skip': Range(2, None)}),
    'echo_state': Cell(EchoStateCell, ranges={
        'spectral_radius': _NON_NEGATIVE, 'input_scale': _NON_NEGATIVE,
        'bias_scale': _NON_NEGATIVE, 'leak': _UNIT_INTERVAL, 'density': _UNIT_INTERVAL}),
}


def resolve(cell_cfg, path: str = 'model.cell') -> dict:
  """The complete settings of a `model.cell` entry: `name`, then every key with its value
  (the class's default where the entry has none). ValueError naming `path.<key>`."""
  if not isinstance(cell_cfg, Mapping) and not hasattr(cell_cfg, 'items'):
    raise ValueError(f"{path} must be an entry like dict(name='lstm', hidden_size=128), "
                     f'got {cell_cfg!r}')
  given = dict(cell_cfg.items())
  name = given.pop('name', None)
  if name not in CELLS:
    raise ValueError(f'{path}.name={name!r}; valid: {sorted(CELLS)}')
  return {'name': name, **config_fields.resolve(path, f'the {name!r} cell', CELLS[name].fields(),
                                                given)}


def from_config(cell_cfg, path: str = 'model.cell') -> Callable[[], nn.RNNCellBase]:
  """A function that returns a fresh cell of the entry (each layer needs its own)."""
  return _partial(resolve(cell_cfg, path))


def _partial(settings: dict) -> Callable[[], nn.RNNCellBase]:
  cell = CELLS[settings['name']]
  extra = {field.name for field in cell.extra}
  kwargs = {k: v for k, v in settings.items() if k not in ('name', 'hidden_size', *extra)}
  kwargs.update(cell.to_fields(settings))
  return functools.partial(cell.cls, settings['hidden_size'], **kwargs)


def keys_of_every_cell() -> set[str]:
  """Every key some cell takes (the flat layout of older configs spelt them in `model`)."""
  return {key for cell in CELLS.values() for key in cell.fields()}
