"""Optimizer from config: optax chain of clipping → optimizer (with schedule).

Config (`config.optim`):
  name: 'sgd' | 'momentum' | 'adam' | 'adamw' | 'rmsprop' | 'adafactor' | 'lamb'
  learning_rate: peak learning rate
  schedule: 'constant' | 'warmup_cosine' | 'warmup_linear' | 'inverse_sqrt' | 'exponential'
    | 'reduce_on_plateau'
  warmup_steps: linear warm-up length (updates), from 0 to `learning_rate`
  end_learning_rate_factor: final lr = factor · learning_rate ('warmup_cosine',
    'warmup_linear'); the floor of 'exponential' (0: none)
  decay_rate, transition_steps, staircase: for 'exponential' (optax.exponential_decay):
    after warm-up, lr · decay_rate^(t / transition_steps), t the updates since warm-up
    (⌊t / transition_steps⌋ with `staircase`); decay_rate in (0, 1), default 0.1;
    transition_steps default (None): the updates after warm-up, so the run ends at
    decay_rate · lr
  'inverse_sqrt' (the Transformer's): lr · min(1, t / w) · sqrt(w / max(t, w)) at update t
    with w = warmup_steps: the peak at t = w, then ∝ 1/√t; with w = 0, lr / sqrt(max(t, 1))
  momentum: for 'momentum' (and 'rmsprop' if > 0)
  b1, b2, eps: for 'adam', 'adamw' and 'lamb' (eps default 1e-8; 1e-6 for 'lamb');
    decay, eps for 'rmsprop'; 'adafactor' takes optax's defaults
  weight_decay: decay rate (default 0: off), multiplied by the scheduled learning rate
    as in optax.adamw (decoupled weight decay, Loshchilov & Hutter 2019): a decayed
    parameter p moves by −lr_t · weight_decay · p each update, besides the optimizer's
    step. 'adamw', 'lamb' and 'adafactor' apply it their own way (decoupled); 'sgd' and
    'momentum' add weight_decay · p to the gradient (optax.add_decayed_weights), which for
    plain SGD is the same step and with momentum goes through the momentum, as in
    PyTorch's SGD. 'adam' and 'rmsprop' refuse a non-zero weight_decay (use 'adamw').
  weight_decay_exclude: glob patterns of parameter paths that are not decayed; default
    (None) `DEFAULT_WEIGHT_DECAY_EXCLUDE`: biases, normalisation scales and embeddings
  accumulate_steps: k (default 1): the gradients of k train steps (micro-batches) are
    averaged (optax.MultiSteps) before one update; see "Accumulation" below
  ema_decay: d in [0, 1) (default None: off): the train state also keeps an exponential
    moving average of the parameters, ema ← d · ema + (1 − d) · params after every update
    (from the initial parameters); evaluation and `saved_run.load_run` use it
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

Accumulation: `train.num_train_steps` counts train steps, i.e. micro-batches of
`data.batch_size` (as do the logging, evaluation and checkpoint cadences and the data
stream); a run makes num_train_steps / k updates (num_train_steps must be a multiple of
k), each from the mean gradient of k micro-batches. The schedule (`warmup_steps`,
`transition_steps`, the cosine and linear decay) and `unfreeze_steps` count updates.
Clipping applies to the mean gradient. The mean of the k micro-batches' gradients is the
gradient of their concatenation whenever the task's loss is a mean over n things and
every micro-batch has the same n: real examples for the per-example losses (text, image
and sequential-digit classification, `adding`), scored tokens for the per-token ones
(language models, tagging, formal languages, `copy_memory`, sequence-to-sequence); then
k micro-steps end with the parameters of one step on the whole batch (to float
rounding). Otherwise a micro-batch's examples weigh 1 / (k · its n). Batch statistics
and a carried state move on every micro-batch, and the reported `update_norm` is 0 on
the micro-steps that only accumulate.
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

# Parameters not decayed by default: biases (flax's `bias`, the cells' `hidden_bias`,
# `recurrent_bias`, `cell_norm_bias`, the language model's `output_bias`), normalisation
# scales (LayerNorm and BatchNorm `scale`, the cells' `*_norm_scale`) and embeddings
# (nn.Embed's `embedding`, learned `positions`).
DEFAULT_WEIGHT_DECAY_EXCLUDE = ('*bias', '*scale', '*embedding', '*/positions')

OPTIMIZERS: dict[str, Callable[[Any, ml_collections.ConfigDict], optax.GradientTransformation]] = {
    'sgd': lambda lr, c: _decayed_before(c, optax.sgd(lr)),
    'momentum': lambda lr, c: _decayed_before(c, optax.sgd(lr, momentum=c.get('momentum', 0.9))),
    'adam': lambda lr, c: optax.adam(lr, b1=c.get('b1', 0.9), b2=c.get('b2', 0.999), eps=c.get('eps', 1e-8)),
    'adamw': lambda lr, c: optax.adamw(
        lr, b1=c.get('b1', 0.9), b2=c.get('b2', 0.999), eps=c.get('eps', 1e-8),
        weight_decay=c.get('weight_decay', 0.0), mask=decay_mask(c)),
    'rmsprop': lambda lr, c: optax.rmsprop(
        lr, decay=c.get('decay', 0.9), eps=c.get('eps', 1e-8), momentum=c.get('momentum', 0.0) or None),
    # optax.adafactor adds weight_decay_rate · p after its learning rate: scheduled here so
    # that the decay is lr_t · weight_decay · p, as for the others.
    'adafactor': lambda lr, c: optax.adafactor(
        lr, weight_decay_rate=(lambda t: c.weight_decay * lr(t)) if c.get('weight_decay') else None,
        weight_decay_mask=decay_mask(c)),
    'lamb': lambda lr, c: optax.lamb(
        lr, b1=c.get('b1', 0.9), b2=c.get('b2', 0.999), eps=c.get('eps', 1e-6),
        weight_decay=c.get('weight_decay', 0.0), mask=decay_mask(c)),
}
SCHEDULES = ('constant', 'warmup_cosine', 'warmup_linear', 'inverse_sqrt', 'exponential',
             'reduce_on_plateau')
# The optimizers that apply `weight_decay`; the others refuse a non-zero one.
DECAYING = ('sgd', 'momentum', 'adamw', 'adafactor', 'lamb')
PLATEAU_KEYS = ('plateau_factor', 'plateau_patience', 'plateau_cooldown', 'plateau_min_delta',
                'plateau_min_scale')
# The `config.optim` keys that `from_config` reads (what a training loop of its own takes).
TRANSFORM_KEYS = ('name', 'learning_rate', 'schedule', 'warmup_steps', 'end_learning_rate_factor',
                  'decay_rate', 'transition_steps', 'staircase', 'momentum', 'b1', 'b2', 'eps',
                  'decay', 'weight_decay', 'weight_decay_exclude', 'accumulate_steps', 'clip_norm',
                  'clip_value', 'freeze', 'learning_rate_factors', 'unfreeze_steps', *PLATEAU_KEYS)
# Every `config.optim` key of a run (`validate` checks each one present, whichever optimizer
# is named): `ema_decay` is read by the train state and step, not by `from_config`.
KEYS = (*TRANSFORM_KEYS, 'ema_decay')


def _path(key_path) -> str:
  """A `jax.tree_util` key path of nested dicts as a '/'-joined parameter path."""
  return '/'.join(str(getattr(key, 'key', key)) for key in key_path)


def decay_mask(optim_cfg: ml_collections.ConfigDict) -> Callable[[Any], Any]:
  """params -> tree of bools, True where a parameter is decayed: its path matches no
  pattern of `weight_decay_exclude` (`DEFAULT_WEIGHT_DECAY_EXCLUDE` when None)."""
  exclude = weight_decay_exclude(optim_cfg)
  return lambda params: jax.tree_util.tree_map_with_path(
      lambda path, _: not any(fnmatch.fnmatchcase(_path(path), p) for p in exclude), params)


def weight_decay_exclude(optim_cfg: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The exclusion patterns in force (the default when the config has none)."""
  patterns = optim_cfg.get('weight_decay_exclude')
  return DEFAULT_WEIGHT_DECAY_EXCLUDE if patterns is None else tuple(patterns)


def _decayed_before(optim_cfg: ml_collections.ConfigDict,
                    tx: optax.GradientTransformation) -> optax.GradientTransformation:
  """`tx` after adding weight_decay · p to the gradient of each decayed parameter (`tx`
  alone without weight decay, so its state keeps the structure of earlier versions)."""
  if not optim_cfg.get('weight_decay'):
    return tx
  return optax.chain(optax.add_decayed_weights(optim_cfg.weight_decay, decay_mask(optim_cfg)), tx)


def update_done(opt_state) -> jax.Array | bool:
  """Whether the `tx.update` that returned `opt_state` updated the parameters: always,
  except on the micro-steps of an accumulation (`accumulate_steps`) that only accumulate."""
  if isinstance(opt_state, optax.MultiStepsState):
    return opt_state.mini_step == 0
  return True


def make_schedule(optim_cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Returns update -> learning rate for `optim_cfg.schedule`; `total_steps`: updates of the run."""
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
  if kind == 'inverse_sqrt':
    return inverse_sqrt_schedule(lr, warmup)
  if kind == 'exponential':
    decay = optax.exponential_decay(
        lr, optim_cfg.get('transition_steps') or max(total_steps - warmup, 1),
        optim_cfg.get('decay_rate', 0.1), staircase=optim_cfg.get('staircase', False),
        end_value=end or None)
    if not warmup:
      return decay
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), decay], [warmup])
  raise ValueError(f'optim.schedule={kind!r}; valid: {list(SCHEDULES)}')


def inverse_sqrt_schedule(lr: float, warmup: int) -> optax.Schedule:
  """lr · min(1, t / w) · sqrt(w / max(t, w)) at update t, w = `warmup` (lr / sqrt(max(t, 1))
  when w = 0): linear warm-up to lr at t = w, then lr · sqrt(w / t). Written here: optax has
  no inverse square-root schedule."""
  w = max(warmup, 1)

  def schedule(count):
    t = jnp.asarray(count, jnp.float32)
    rise = jnp.minimum(1.0, t / warmup) if warmup else 1.0
    return lr * rise * jnp.sqrt(w / jnp.maximum(t, w))
  return schedule


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
  parameters (`freeze`) get zero updates, so they stay bit-identical. With
  `accumulate_steps` k > 1 the whole chain sees the mean gradient of k calls (optax.MultiSteps;
  the calls between return zero updates). `total_steps`: the run's train steps
  (micro-batches); the schedule spans total_steps // k updates."""
  if optim_cfg.name not in OPTIMIZERS:
    raise ValueError(f'optim.name={optim_cfg.name!r}; valid: {sorted(OPTIMIZERS)}')
  every = optim_cfg.get('accumulate_steps', 1)
  freeze, factors, unfreeze = _groups(optim_cfg)
  chain = []
  if freeze:     # frozen gradients count in no clipping norm
    chain.append(optax.masked(optax.set_to_zero(), lambda params: jax.tree_util.tree_map(
        lambda label: label == 'frozen', frozen_labels(params, freeze))))
  if optim_cfg.get('clip_value'):
    chain.append(optax.clip(optim_cfg.clip_value))
  if optim_cfg.get('clip_norm'):
    chain.append(optax.clip_by_global_norm(optim_cfg.clip_norm))
  tx = OPTIMIZERS[optim_cfg.name](make_schedule(optim_cfg, max(total_steps // every, 1)), optim_cfg)
  if freeze or factors or unfreeze:
    names = {'frozen'} | {_label(f, s) for f in {1.0, *(f for _, f in factors)}
                          for s in {0, *(s for _, s in unfreeze)}}
    tx = optax.multi_transform({name: _group_transform(name, tx) for name in sorted(names)},
                               lambda params: group_labels(params, freeze, factors, unfreeze))
  if optim_cfg.get('schedule') == 'reduce_on_plateau':
    tx = optax.chain(tx, plateau_scaling(optim_cfg))
  tx = optax.chain(*chain, tx)
  if every > 1:      # with extra arguments (a plateau value) passed through to `tx`
    multi = optax.MultiSteps(tx, every_k_schedule=every)
    tx = optax.GradientTransformationExtraArgs(multi.init, multi.update)
  return tx


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


def _integer(cfg: ml_collections.ConfigDict, field: str, default: Any, lowest: int, *,
             optional: bool = False) -> None:
  """`cfg.field` (`default` when absent) is an integer >= `lowest`, not a bool; None passes
  when `optional`."""
  value = cfg.get(field, default)
  if value is None and optional:
    return
  if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < lowest:
    kind = {0: 'a non-negative integer', 1: 'a positive integer'}.get(lowest, f'an integer >= {lowest}')
    raise ValueError(f'optim.{field} must be {kind}{" or None" if optional else ""}, got {value!r}')


def _boolean(cfg: ml_collections.ConfigDict, field: str, default: bool) -> None:
  value = cfg.get(field, default)
  if not isinstance(value, bool):
    raise ValueError(f'optim.{field} must be True or False, got {value!r}')


def _patterns(cfg: ml_collections.ConfigDict, field: str) -> None:
  """`cfg.field` is None or a list or tuple of non-empty glob patterns."""
  patterns = cfg.get(field)
  if patterns is not None and (not isinstance(patterns, (list, tuple))
                               or not all(isinstance(p, str) and p for p in patterns)):
    raise ValueError(f'optim.{field} must be a list or tuple of non-empty glob patterns '
                     f'(strings), got {patterns!r}')


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
  _integer(optim_cfg, 'warmup_steps', 0, 0)
  _finite_number(optim_cfg, 'end_learning_rate_factor', 0.0)
  _finite_number(optim_cfg, 'decay_rate', 0.1, 1.0, positive=True)
  _integer(optim_cfg, 'transition_steps', None, 1, optional=True)
  _boolean(optim_cfg, 'staircase', False)
  _finite_number(optim_cfg, 'momentum', 0.0, 1.0, optional=True)
  _finite_number(optim_cfg, 'b1', 0.9, 1.0)
  _finite_number(optim_cfg, 'b2', 0.999, 1.0)
  _finite_number(optim_cfg, 'eps', 1e-8, positive=True)
  _finite_number(optim_cfg, 'decay', 0.9, 1.0, positive=True)
  _finite_number(optim_cfg, 'weight_decay', 0.0)
  if optim_cfg.get('weight_decay') and optim_cfg.name not in DECAYING:
    raise ValueError(f'optim.weight_decay={optim_cfg.weight_decay!r} is not applied by '
                     f'optim.name={optim_cfg.name!r}; use one of {list(DECAYING)} (e.g. '
                     "'adamw' for Adam with decoupled weight decay), or 0")
  _patterns(optim_cfg, 'weight_decay_exclude')
  _integer(optim_cfg, 'accumulate_steps', 1, 1)
  _finite_number(optim_cfg, 'ema_decay', None, 1.0, optional=True, note=' (None: off)')
  for field in ('clip_norm', 'clip_value'):
    _finite_number(optim_cfg, field, None, optional=True, note=' (0 or None: off)')
  _validate_plateau(optim_cfg)
  _patterns(optim_cfg, 'freeze')
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
