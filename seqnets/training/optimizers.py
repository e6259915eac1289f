"""Optimizer from config: optax chain of clipping → optimizer (with schedule).

Config (`config.optim`):
  name: 'sgd' | 'momentum' | 'adam' | 'rmsprop'
  learning_rate: peak learning rate
  schedule: 'constant' | 'warmup_cosine' | 'warmup_linear' | 'reduce_on_plateau'
  warmup_steps: linear warm-up length (steps)
  end_learning_rate_factor: final lr = factor · learning_rate (decay schedules)
  momentum: for 'momentum' (and 'rmsprop' if > 0)
  b1, b2, eps: for 'adam'; decay, eps for 'rmsprop'
  clip_norm: clip_by_global_norm threshold (None or 0: off)
  clip_value: clip each gradient entry to [−v, v] (None or 0: off)
  freeze: glob patterns of parameter paths kept fixed, e.g. ('conv*',) or
    ('*/kernel',); a path is '/'-joined, e.g. 'conv0/kernel' (see `param_paths`)
  learning_rate_factors: ((pattern, factor), ...): the parameters matching a pattern
    (the first that matches) learn at factor × the learning rate, e.g.
    (('embed/*', 0.1), ('layer0_*', 0.3)) for discriminative fine-tuning
  unfreeze_steps: ((pattern, step), ...): the parameters matching a pattern stay fixed
    before `step` (gradual unfreezing, Howard & Ruder 2018: e.g. the top layer at 0, the
    one below at 200, the embedding at 400)
Each parameter's update is the optimizer's, scaled by its factor and by 0 before its
unfreeze step (every optimizer here is linear in the learning rate, so the factor is
exactly a learning rate of its own); optax.multi_transform applies one such chain per
group of parameters.
'reduce_on_plateau': the constant rate (after the linear warm-up) times the scale of
optax.contrib.reduce_on_plateau, which watches the evaluations of `config.train.best_metric`
(`plateau_scaling`; the training loop passes each evaluation to the next step):
  plateau_factor: the scale is multiplied by it after `plateau_patience` evaluations without
    an improvement of more than `plateau_min_delta` (absolute, in the metric's units)
  plateau_cooldown: evaluations after a reduction during which none is counted
  plateau_min_scale: the scale never goes below it
"""

from __future__ import annotations

from typing import Any, Callable

import fnmatch
import math
import numbers

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

OPTIMIZERS: dict[str, Callable[[Any, ml_collections.ConfigDict], optax.GradientTransformation]] = {
    'sgd': lambda lr, c: optax.sgd(lr),
    'momentum': lambda lr, c: optax.sgd(lr, momentum=c.get('momentum', 0.9)),
    'adam': lambda lr, c: optax.adam(lr, b1=c.get('b1', 0.9), b2=c.get('b2', 0.999), eps=c.get('eps', 1e-8)),
    'rmsprop': lambda lr, c: optax.rmsprop(
        lr, decay=c.get('decay', 0.9), eps=c.get('eps', 1e-8), momentum=c.get('momentum', 0.0) or None),
}
SCHEDULES = ('constant', 'warmup_cosine', 'warmup_linear', 'reduce_on_plateau')
# Every `config.optim` key (`validate` checks each one present, whichever optimizer is named).
KEYS = ('name', 'learning_rate', 'schedule', 'warmup_steps', 'end_learning_rate_factor',
        'momentum', 'b1', 'b2', 'eps', 'decay', 'clip_norm', 'clip_value', 'freeze',
        'learning_rate_factors', 'unfreeze_steps')
PLATEAU_KEYS = ('plateau_factor', 'plateau_patience', 'plateau_cooldown', 'plateau_min_delta',
                'plateau_min_scale')
KEYS += PLATEAU_KEYS


def make_schedule(optim_cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Returns step -> learning rate for `optim_cfg.schedule`."""
  lr = optim_cfg.learning_rate
  kind = optim_cfg.get('schedule', 'constant')
  warmup = optim_cfg.get('warmup_steps', 0)
  end = lr * optim_cfg.get('end_learning_rate_factor', 0.0)
  if kind in ('constant', 'reduce_on_plateau'):
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


def _first_match(path: str, pairs, default):
  for pattern, value in pairs:
    if fnmatch.fnmatchcase(path, pattern):
      return value
  return default


def _label(factor: float, start: int) -> str:
  return f'lr{float(factor)!r}_from{int(start)}'


def group_labels(params, freeze=(), factors=(), unfreeze=()) -> Any:
  """Tree of labels, `'frozen'` or `'lr{factor}_from{step}'`, for every parameter."""
  def label(path: str) -> str:
    if any(fnmatch.fnmatchcase(path, p) for p in freeze):
      return 'frozen'
    return _label(_first_match(path, factors, 1.0), _first_match(path, unfreeze, 0))
  flat = flax.traverse_util.flatten_dict(params)
  return flax.traverse_util.unflatten_dict({path: label('/'.join(path)) for path in flat})


def _group_transform(label: str, tx: optax.GradientTransformation) -> optax.GradientTransformation:
  """The chain of the group named `label` by `group_labels`."""
  if label == 'frozen':
    return optax.set_to_zero()
  factor, start = label.removeprefix('lr').split('_from')
  factor, start = float(factor), int(start)
  chain = [tx]
  if factor != 1.0:
    chain.append(optax.scale(factor))
  if start > 0:
    chain.append(optax.scale_by_schedule(lambda count: (count >= start).astype(jnp.float32)))
  return optax.chain(*chain) if len(chain) > 1 else tx


def unmatched_patterns(params, patterns) -> list[str]:
  """The freeze patterns that match no parameter (almost always a typo)."""
  paths = param_paths(params)
  return [p for p in patterns if not any(fnmatch.fnmatchcase(path, p) for path in paths)]


def from_config(optim_cfg: ml_collections.ConfigDict, total_steps: int) -> optax.GradientTransformation:
  """frozen gradients zeroed → clip (by value, then global norm) → optimizer with the
  schedule, each group's update scaled (`learning_rate_factors`, `unfreeze_steps`); frozen
  parameters (`freeze`) get zero updates, so they stay bit-identical."""
  if optim_cfg.name not in OPTIMIZERS:
    raise ValueError(f'optim.name={optim_cfg.name!r}; valid: {sorted(OPTIMIZERS)}')
  freeze, factors, unfreeze = _groups(optim_cfg)
  chain = []
  if freeze:     # frozen gradients count in no clipping norm
    chain.append(optax.masked(optax.set_to_zero(), lambda params: jax.tree_util.tree_map(
        lambda label: label == 'frozen', frozen_labels(params, freeze))))
  if optim_cfg.get('clip_value'):
    chain.append(optax.clip(optim_cfg.clip_value))
  if optim_cfg.get('clip_norm'):
    chain.append(optax.clip_by_global_norm(optim_cfg.clip_norm))
  tx = OPTIMIZERS[optim_cfg.name](make_schedule(optim_cfg, total_steps), optim_cfg)
  if freeze or factors or unfreeze:
    names = {'frozen'} | {_label(f, s) for f in {1.0, *(f for _, f in factors)}
                          for s in {0, *(s for _, s in unfreeze)}}
    tx = optax.multi_transform({name: _group_transform(name, tx) for name in sorted(names)},
                               lambda params: group_labels(params, freeze, factors, unfreeze))
  if optim_cfg.get('schedule') == 'reduce_on_plateau':
    tx = optax.chain(tx, plateau_scaling(optim_cfg))
  return optax.chain(*chain, tx)


def plateau_scaling(optim_cfg: ml_collections.ConfigDict) -> optax.GradientTransformationExtraArgs:
  """Updates scaled by optax.contrib.reduce_on_plateau, which sees evaluations only.

  `update(..., plateau_value=v)`: a finite `v` (lower is better) is one evaluation,
  handed to reduce_on_plateau as its `value`; NaN means no new evaluation since the
  last step and leaves its state as it is. Without `plateau_value` the scale is kept.
  """
  inner = optax.contrib.reduce_on_plateau(
      factor=optim_cfg.get('plateau_factor', 0.1), patience=optim_cfg.get('plateau_patience', 10),
      rtol=0.0, atol=optim_cfg.get('plateau_min_delta', 1e-4),
      cooldown=optim_cfg.get('plateau_cooldown', 0),
      min_scale=optim_cfg.get('plateau_min_scale', 0.0))

  def update(updates, state, params=None, *, plateau_value=jnp.nan, **extra):
    del extra
    value = jnp.asarray(plateau_value, jnp.float32)
    hold = lambda: (jax.tree_util.tree_map(lambda u: state.scale * u, updates), state)
    observe = lambda: inner.update(updates, state, params, value=value)
    return jax.lax.cond(jnp.isfinite(value), observe, hold)

  return optax.GradientTransformationExtraArgs(inner.init, update)


def _groups(optim_cfg: ml_collections.ConfigDict) -> tuple[tuple, tuple, tuple]:
  """(freeze patterns, (pattern, factor) pairs, (pattern, step) pairs) of the config."""
  pairs = lambda field, kind: tuple((str(p), kind(v)) for p, v in (optim_cfg.get(field) or ()))
  return (tuple(optim_cfg.get('freeze') or ()), pairs('learning_rate_factors', float),
          pairs('unfreeze_steps', int))


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
  _validate_plateau(optim_cfg)
  freeze = optim_cfg.get('freeze', ())
  if freeze is not None and (not isinstance(freeze, (list, tuple))
                             or not all(isinstance(p, str) and p for p in freeze)):
    raise ValueError(f'optim.freeze must be a list or tuple of non-empty glob patterns '
                     f'(strings), got {freeze!r}')
  for field, valid, what in (
      ('learning_rate_factors', lambda v: (isinstance(v, numbers.Real) and not isinstance(v, bool)
                                           and math.isfinite(v) and v >= 0), 'a factor >= 0'),
      ('unfreeze_steps', lambda v: (isinstance(v, numbers.Integral) and not isinstance(v, bool)
                                    and v >= 0), 'a step >= 0')):
    pairs = optim_cfg.get(field) or ()
    ok = isinstance(pairs, (list, tuple)) and all(
        isinstance(pair, (list, tuple)) and len(pair) == 2 and isinstance(pair[0], str)
        and pair[0] and valid(pair[1]) for pair in pairs)
    if not ok:
      raise ValueError(f'optim.{field} must be pairs (glob pattern, {what}), got {pairs!r}')


def _validate_plateau(optim_cfg: ml_collections.ConfigDict) -> None:
  """The `plateau_*` keys (checked whenever present, like every other key)."""
  _finite_number(optim_cfg, 'plateau_factor', 0.1, 1.0, positive=True)
  _finite_number(optim_cfg, 'plateau_min_delta', 1e-4, positive=True)
  _finite_number(optim_cfg, 'plateau_min_scale', 0.0)
  for field, default, lowest in (('plateau_patience', 10, 1), ('plateau_cooldown', 0, 0)):
    value = optim_cfg.get(field, default)
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < lowest:
      raise ValueError(f'optim.{field} must be an integer >= {lowest}, got {value!r}')
