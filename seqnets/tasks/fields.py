"""Checks of `config.data` fields shared by the tasks; each raises ValueError naming `data.<field>`."""

from __future__ import annotations


def positive_int(cfg, field: str) -> int:
  value = cfg.get(field)
  if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
    raise ValueError(f'data.{field} must be a positive integer, got {value!r}')
  return value


def non_negative_int(cfg, field: str, default: int = 0) -> int:
  value = cfg.get(field, default)
  if value is None:
    return default
  if not isinstance(value, int) or isinstance(value, bool) or value < 0:
    raise ValueError(f'data.{field} must be an integer >= 0, got {value!r}')
  return value


def one_of(cfg, field: str, valid, default=None):
  value = cfg.get(field, default)
  if value not in valid:
    raise ValueError(f'data.{field}={value!r}; valid: {list(valid)}')
  return value


def non_empty_string(cfg, field: str, what: str) -> str:
  value = cfg.get(field)
  if not isinstance(value, str) or not value.strip():
    raise ValueError(f'data.{field} must name {what}, got {value!r}')
  return value


def positive_range(cfg, field: str) -> tuple[int, int]:
  """`cfg.field` as a pair (lo, hi) of integers with 1 <= lo <= hi."""
  value = cfg.get(field)
  try:
    lo, hi = (int(v) for v in value)
  except (TypeError, ValueError):
    raise ValueError(f'data.{field} must be a pair (lo, hi) of integers, got {value!r}') from None
  if lo < 1 or hi < lo:
    raise ValueError(f'data.{field}=({lo}, {hi}) must satisfy 1 <= lo <= hi')
  return lo, hi
