"""Config keys derived from a module's dataclass fields, with their type and range checks.

A flax module's fields are its settings. The fields a config may set are those of a plain
type (bool, int, float, str, `Literal[...]`, optional or sequence forms of these); fields
of other types (initialisers, callables, dtypes) and the ones the data fixes are set by
code. Each value is checked against its field's annotation, with one range rule per type:

  bool                  True or False (not 0 / 1)
  int                   not a bool; >= 1, or >= 0 when the field's default is 0 ("off",
                        "the same as ...")
  float                 a finite real number (ints too); fields named `*_rate` lie in [0, 1)
  str                   a string; `Literal['a', 'b']` one of those
  Sequence[int], tuple  a list or tuple of such values (given back as a tuple), not empty
                        unless the field's default is
  X | None              None or an X
  Annotated[X, Range(lo, hi)]   X within [lo, hi] (either end optional), in place of the rule

Errors are `ValueError('<prefix><field> ...')` naming the field and the valid values, so a
config error reads `model.cell.zoneout_rate must be a finite number in [0, 1), got 1.5`.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import numbers
import types
import typing
from typing import Any, Literal, Union

REQUIRED = dataclasses.MISSING
_MODULE_FIELDS = ('parent', 'name')   # every flax module has them; never config keys


@dataclasses.dataclass(frozen=True)
class Range:
  """Bounds of a number field, inclusive: `Annotated[float, Range(0.0, 1.0)]`."""
  lo: float | None = None
  hi: float | None = None


@dataclasses.dataclass(frozen=True)
class Field:
  """One config-settable field: its name, annotation and default (REQUIRED when none)."""
  name: str
  annotation: Any
  default: Any

  @property
  def required(self) -> bool:
    return self.default is REQUIRED


def settable_fields(cls, exclude=()) -> dict[str, Field]:
  """The fields of dataclass `cls` that a config may set, in declaration order, the
  keyword-only ones (a base class's, such as the cells' regularisers) last."""
  hints = typing.get_type_hints(cls, include_extras=True)
  found = {}
  for field in sorted(dataclasses.fields(cls), key=lambda field: field.kw_only is True):
    if field.name in _MODULE_FIELDS or field.name in exclude or not field.init:
      continue
    annotation = hints.get(field.name, Any)
    if not _is_plain(annotation):
      continue
    default = field.default
    if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
      default = field.default_factory()
    found[field.name] = Field(field.name, annotation, default)
  return found


def _is_plain(annotation) -> bool:
  """True for annotations made of bool / int / float / str / Literal / None / sequences."""
  annotation = _strip_annotated(annotation)
  if annotation in (bool, int, float, str, type(None)):
    return True
  origin = typing.get_origin(annotation)
  if origin is Literal:
    return True
  if origin in (Union, types.UnionType):
    return all(_is_plain(a) for a in typing.get_args(annotation))
  if origin in (tuple, list, collections.abc.Sequence):
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    return bool(args) and all(_is_plain(a) for a in args)
  return False


def _strip_annotated(annotation):
  return typing.get_args(annotation)[0] if typing.get_origin(annotation) is typing.Annotated else annotation


def _range_of(annotation) -> Range | None:
  if typing.get_origin(annotation) is typing.Annotated:
    return next((m for m in typing.get_args(annotation)[1:] if isinstance(m, Range)), None)
  return None


def choices(annotation) -> tuple | None:
  """The values of a `Literal[...]` annotation (also inside `| None`), else None."""
  annotation = _strip_annotated(annotation)
  if typing.get_origin(annotation) is Literal:
    return typing.get_args(annotation)
  if typing.get_origin(annotation) in (Union, types.UnionType):
    for arg in typing.get_args(annotation):
      found = choices(arg)
      if found is not None:
        return found
  return None


def resolve(path: str, owner: str, fields: dict[str, Field], given: dict, also=()) -> dict:
  """Every key of `fields` with its checked value from `given`, or its default.

  `path` names the entry (e.g. 'model.cell'), `owner` what the keys belong to in messages
  (e.g. "the 'lstm' cell"); keys of `given` in `also` are the caller's to read. ValueError
  naming a key that is neither (listing the valid ones), a bad value, or a missing
  required key.
  """
  valid = [*fields, *also]
  unknown = [key for key in given if key not in valid]
  if unknown:
    raise ValueError(f'{path}.{unknown[0]} is not a setting of {owner}; valid: '
                     f'{["name", *valid]}')
  settings = {}
  for key, field in fields.items():
    if key in given:
      settings[key] = check(f'{path}.', field, given[key])
    elif field.required:
      raise ValueError(f'{path}.{key} is required for {owner}')
    else:
      settings[key] = field.default
  return settings


class _Bad(Exception):
  """A value that does not fit; carries what was expected."""


def check(prefix: str, field: Field, value):
  """`value` checked against `field` (ValueError naming `prefix + field.name`), normalised:
  lists become tuples."""
  valid = choices(field.annotation)
  if valid is not None and not isinstance(value, (list, tuple)) and _only_choices(field.annotation):
    optional = _accepts_none(field.annotation)
    if (value is None and optional) or (not isinstance(value, bool) and value in valid):
      return value
    raise ValueError(f'{prefix}{field.name}={value!r}; valid: {list(valid)}'
                     + (' or None' if optional else ''))
  try:
    return _check(field.name, field.annotation, field.default, value)
  except _Bad as e:
    raise ValueError(f'{prefix}{field.name} must be {e}, got {value!r}') from None


def _only_choices(annotation) -> bool:
  """`Literal[...]` or `Literal[...] | None`; not a union with other types
  (`float | Literal['chrono']`, checked arm by arm)."""
  annotation = _strip_annotated(annotation)
  if typing.get_origin(annotation) not in (Union, types.UnionType):
    return True
  return all(arg is type(None) or typing.get_origin(arg) is Literal
             for arg in typing.get_args(annotation))


def _accepts_none(annotation) -> bool:
  annotation = _strip_annotated(annotation)
  return (typing.get_origin(annotation) in (Union, types.UnionType)
          and type(None) in typing.get_args(annotation))


def _check(name: str, annotation, default, value):
  bounds = _range_of(annotation)
  annotation = _strip_annotated(annotation)
  origin = typing.get_origin(annotation)
  if annotation is type(None):
    if value is None:
      return None
    raise _Bad('None')
  if origin in (Union, types.UnionType):
    wanted = []
    for arg in typing.get_args(annotation):
      try:
        return _check(name, typing.Annotated[arg, bounds] if bounds else arg, default, value)
      except _Bad as e:
        wanted.append(str(e))
    raise _Bad(' or '.join(wanted))
  if origin is Literal:
    valid = typing.get_args(annotation)
    if isinstance(value, bool) or value not in valid:
      raise _Bad(f'one of {list(valid)}')
    return value
  if origin in (tuple, list, collections.abc.Sequence):
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    may_be_empty = default is not REQUIRED and not default
    kind = 'a list' if may_be_empty else 'a non-empty list'
    if not isinstance(value, (list, tuple)) or (not value and not may_be_empty):
      raise _Bad(f'{kind} of {_plural(_describe(args[0], name, REQUIRED, bounds))}')
    try:
      return tuple(_check(name, typing.Annotated[args[0], bounds] if bounds else args[0],
                          REQUIRED, v) for v in value)
    except _Bad as e:
      raise _Bad(f'{kind} of {_plural(str(e))}') from None
  if annotation is bool:
    if not isinstance(value, bool):
      raise _Bad('True or False')
    return value
  if annotation is int:
    lo, hi = _bounds(name, int, default, bounds)
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not _within(value, lo, hi):
      raise _Bad(_describe(int, name, default, bounds))
    return int(value)
  if annotation is float:
    lo, hi = _bounds(name, float, default, bounds)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not _within(value, lo, hi, open_hi=_is_rate(name, bounds)):
      raise _Bad(_describe(float, name, default, bounds))
    return value
  if annotation is str:
    if not isinstance(value, str):
      raise _Bad('a string')
    return value
  raise _Bad(f'a {annotation}')


def _plural(description: str) -> str:
  """'a positive integer' -> 'positive integers' (element descriptions of lists)."""
  for article in ('a ', 'an '):
    if description.startswith(article):
      description = description[len(article):]
  for noun in ('integer', 'number', 'string'):
    description = description.replace(noun, noun + 's', 1) if noun + 's' not in description else description
  return description


def _is_rate(name: str, bounds) -> bool:
  return bounds is None and name.endswith('_rate')


def _bounds(name: str, kind, default, bounds: Range | None):
  if bounds is not None:
    return bounds.lo, bounds.hi
  if kind is int:
    return (0 if default == 0 and not isinstance(default, bool) else 1), None
  if _is_rate(name, bounds):
    return 0.0, 1.0
  return None, None


def _within(value, lo, hi, open_hi: bool = False) -> bool:
  if lo is not None and value < lo:
    return False
  if hi is not None and (value >= hi if open_hi else value > hi):
    return False
  return True


def _describe(kind, name: str, default, bounds: Range | None) -> str:
  kind = _strip_annotated(kind)
  origin = typing.get_origin(kind)
  if origin in (Union, types.UnionType):
    args = typing.get_args(kind)
    found = ' or '.join(_describe(a, name, default, bounds) for a in args if a is not type(None))
    return found + (' or None' if type(None) in args else '')
  if origin in (tuple, list, collections.abc.Sequence):
    element = next(a for a in typing.get_args(kind) if a is not Ellipsis)
    return f'a list of {_plural(_describe(element, name, REQUIRED, bounds))}'
  if kind is int:
    lo, hi = _bounds(name, int, default, bounds)
    if hi is None:
      return {0: 'a non-negative integer', 1: 'a positive integer'}.get(lo, f'an integer >= {lo}')
    return f'an integer in [{lo}, {hi}]'
  if kind is float:
    lo, hi = _bounds(name, float, default, bounds)
    if lo is None and hi is None:
      return 'a finite number'
    close = ')' if _is_rate(name, bounds) else ']'
    return f'a finite number in [{"-inf" if lo is None else f"{lo:g}"}, ' \
           f'{"inf" if hi is None else f"{hi:g}"}{close}'
  if kind is bool:
    return 'True or False'
  if kind is str:
    return 'a string'
  valid = choices(kind)
  return f'one of {list(valid)}' if valid else str(kind)

