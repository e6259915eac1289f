"""Optimizer from config: optax chain of clipping → optimizer (with schedule).

Config (`config.optim`):
  name: 'sgd' | 'momentum' | 'adam' | 'rmsprop'
  learning_rate: peak learning rate
  schedule: 'constant' | 'warmup_cosine' | 'warmup_linear'
  warmup_steps: linear warm-up length (steps)
  end_learning_rate_factor: final lr = factor · learning_rate (decay schedules)
  momentum: for 'momentum' (and 'rmsprop' if > 0)
  b1, b2, eps: for 'adam'; decay, eps for 'rmsprop'
  clip_norm: clip_by_global_norm threshold (None or 0: off)
  clip_value: clip each gradient entry to [−v, v] (None or 0: off)
  freeze: glob patterns of parameter paths kept fixed, e.g. ('conv*',) or
    ('*/kernel',); a path is '/'-joined, e.g. 'conv0/kernel' (see `param_paths`)
"""

from __future__ import annotations

from typing import Any, Callable

import fnmatch
import math
import numbers

import flax
import ml_collections
import optax

OPTIMIZERS: dict[str, Callable[[Any, ml_collections.ConfigDict], optax.GradientTransformation]] = {
    'sgd': lambda lr, c: optax.sgd(lr),
    'momentum': lambda lr, c: optax.sgd(lr, momentum=c.get('momentum', 0.9)),
    'adam': lambda lr, c: optax.adam(lr, b1=c.get('b1', 0.9), b2=c.get('b2', 0.999), eps=c.get('eps', 1e-8)),
    'rmsprop': lambda lr, c: optax.rmsprop(
        lr, decay=c.get('decay', 0.9), eps=c.get('eps', 1e-8), momentum=c.get('momentum', 0.0) or None),
}
SCHEDULES = ('constant', 'warmup_cosine', 'warmup_linear')


def make_schedule(optim_cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Returns step -> learning rate for `optim_cfg.schedule`."""
  lr = optim_cfg.learning_rate
  kind = optim_cfg.get('schedule', 'constant')
  warmup = optim_cfg.get('warmup_steps', 0)
  end = lr * optim_cfg.get('end_learning_rate_factor', 0.0)
  if kind == 'constant':
    if warmup:
      return optax.join_schedules(
          [optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)], [warmup])
    return optax.constant_schedule(lr)
  if kind == 'warmup_cosine':
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1), end)
  if kind == 'warmup_linear':
    return optax.join_schedules(
        [optax.linear_schedule(0.0, lr, warmup),
         optax.linear_schedule(lr, end, max(total_steps - warmup, 1))], [warmup])
  raise ValueError(f'optim.schedule={kind!r}; valid: {list(SCHEDULES)}')


def param_paths(params) -> list[str]:
  """'/'-joined paths of every parameter array, e.g. ['conv0/bias', 'conv0/kernel', ...]."""
  return ['/'.join(path) for path in flax.traverse_util.flatten_dict(params)]


def frozen_labels(params, patterns) -> Any:
  """Tree of 'frozen' / 'trained' labels: a path matching any glob pattern is frozen."""
  flat = flax.traverse_util.flatten_dict(params)
  return flax.traverse_util.unflatten_dict({
      path: 'frozen' if any(fnmatch.fnmatchcase('/'.join(path), p) for p in patterns) else 'trained'
      for path in flat})


def unmatched_patterns(params, patterns) -> list[str]:
  """The freeze patterns that match no parameter (almost always a typo)."""
  paths = param_paths(params)
  return [p for p in patterns if not any(fnmatch.fnmatchcase(path, p) for path in paths)]


def from_config(optim_cfg: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """clip (by value, then global norm) → optimizer with the schedule; frozen
  parameters (`freeze`) get zero updates, so they stay bit-identical."""
  if optim_cfg.name not in OPTIMIZERS:
    raise ValueError(f'optim.name={optim_cfg.name!r}; valid: {sorted(OPTIMIZERS)}')
  chain = []
  if optim_cfg.get('clip_value'):
    chain.append(optax.clip(optim_cfg.clip_value))
  if optim_cfg.get('clip_norm'):
    chain.append(optax.clip_by_global_norm(optim_cfg.clip_norm))
  chain.append(OPTIMIZERS[optim_cfg.name](make_schedule(optim_cfg, total_steps), optim_cfg))
  tx = optax.chain(*chain)
  patterns = tuple(optim_cfg.get('freeze') or ())
  if patterns:
    tx = optax.multi_transform({'trained': tx, 'frozen': optax.set_to_zero()},
                               lambda params: frozen_labels(params, patterns))
  return tx


def _finite_number(cfg: ml_collections.ConfigDict, field: str, default: Any,
                   hi: float | None = None, *, positive: bool = False, optional: bool = False,
                   note: str = '') -> None:
  """`cfg.field` (`default` when absent) is a finite real number, not a bool, in [0, hi)
  ((0, hi) when `positive`; no upper bound when `hi` is None); None passes when `optional`."""
  value = cfg.get(field, default)
  if value is None and optional:
    return
  ok = (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        and (value > 0 if positive else value >= 0) and (hi is None or value < hi))
  if not ok:
    if hi is None:
      kind = f'a finite {"positive" if positive else "non-negative"} number'
    else:
      kind = f'a finite number in {"(" if positive else "["}0, {hi:g})'
    raise ValueError(f'optim.{field} must be {kind}{note}, got {value!r}')


def _choice(cfg: ml_collections.ConfigDict, field: str, default: Any, valid) -> None:
  value = cfg.get(field, default)
  if not isinstance(value, str) or value not in valid:
    raise ValueError(f'optim.{field}={value!r}; valid: {list(valid)}')


def validate(optim_cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad `optim.*` field.

  Every key that `from_config` reads is checked when present (whichever
  optimizer is named, so switching `name` in a sweep cannot expose a bad value).
  """
  _choice(optim_cfg, 'name', None, sorted(OPTIMIZERS))
  _finite_number(optim_cfg, 'learning_rate', None, positive=True)
  _choice(optim_cfg, 'schedule', 'constant', SCHEDULES)
  warmup = optim_cfg.get('warmup_steps', 0)
  if not isinstance(warmup, numbers.Integral) or isinstance(warmup, bool) or warmup < 0:
    raise ValueError(f'optim.warmup_steps must be a non-negative integer, got {warmup!r}')
  _finite_number(optim_cfg, 'end_learning_rate_factor', 0.0)
  _finite_number(optim_cfg, 'momentum', 0.0, 1.0, optional=True)
  _finite_number(optim_cfg, 'b1', 0.9, 1.0)
  _finite_number(optim_cfg, 'b2', 0.999, 1.0)
  _finite_number(optim_cfg, 'eps', 1e-8, positive=True)
  _finite_number(optim_cfg, 'decay', 0.9, 1.0, positive=True)
  for field in ('clip_norm', 'clip_value'):
    _finite_number(optim_cfg, field, None, optional=True, note=' (0 or None: off)')
  freeze = optim_cfg.get('freeze', ())
  if freeze is not None and (not isinstance(freeze, (list, tuple))
                             or not all(isinstance(p, str) and p for p in freeze)):
    raise ValueError(f'optim.freeze must be a list or tuple of non-empty glob patterns '
                     f'(strings), got {freeze!r}')
