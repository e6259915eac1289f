"""The regularisers a recurrent cell applies inside its step (the cells' attributes).

  update dropout (Semeniuta, Severyn & Barth 2016): the update only, e.g. for the LSTM
      c_t = f ⊙ c_{t-1} + i ⊙ d(g),  d(v) = m ⊙ v,  m ~ Bernoulli(1 − rate) / (1 − rate)
  zoneout (Krueger et al. 2017):
      h_t = m ⊙ h_{t-1} + (1 − m) ⊙ h̃_t,  m ~ Bernoulli(rate) per unit and step
  weight drop (DropConnect on U, as in AWD-LSTM; Merity, Keskar & Socher 2018):
      U ← M ⊙ U,  M ~ Bernoulli(1 − rate) / (1 − rate), one M per call
  layer norm (Ba, Kiros & Hinton 2016), per gate block of H units:
      LN(a) = γ ⊙ (a − μ) / √(σ² + ε),  ε = 1e-5

Random masks come from the 'dropout' rng stream and are sown into the
'intermediates' collection (when it is mutable) under the names used below.
In evaluation (`deterministic=True`) dropout is the identity and zoneout its
expectation, `rate · h_{t-1} + (1 − rate) · h̃_t`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

Array = jax.Array

RNG_STREAM = 'dropout'
EPSILON = 1e-5
RATES = ('update_dropout_rate', 'zoneout_rate', 'weight_drop_rate')


def check_rates(owner: nn.Module, names=RATES) -> None:
  """ValueError naming the attribute unless each rate is in [0, 1)."""
  for name in names:
    rate = getattr(owner, name)
    if not 0 <= rate < 1:
      raise ValueError(f'{type(owner).__name__}.{name} must be in [0, 1), got {rate!r}')


def is_random(cell: nn.Module) -> bool:
  """Whether the cell draws masks in training (and so needs `deterministic`)."""
  return any(getattr(cell, name) > 0 for name in RATES)


def is_active(cell: nn.Module) -> bool:
  return cell.layer_norm or is_random(cell)


def resolve_deterministic(owner: nn.Module, deterministic: bool | None) -> bool:
  """The call's `deterministic` or the attribute's: exactly one must be given."""
  return nn.merge_param('deterministic', owner.deterministic, deterministic)


def kernel_is_exact(cell: nn.Module, deterministic: bool | None) -> bool:
  """Whether the cell's scan kernel computes its regularised step.

  Layer norm and zoneout: never. Update dropout: in evaluation only (the
  identity). Weight drop: always, since `sn.RNN` hands the kernel `M ⊙ U` as U.
  """
  check_rates(cell)
  if cell.layer_norm or cell.zoneout_rate > 0:
    return False
  if deterministic is None:
    deterministic = cell.deterministic
  return cell.update_dropout_rate == 0 or deterministic is True


def keep_mask(owner: nn.Module, rate: float, shape: tuple[int, ...], dtype, name: str) -> Array:
  """`Bernoulli(1 − rate) / (1 − rate)` (mean 1), sown as `name`."""
  keep = jax.random.bernoulli(owner.make_rng(RNG_STREAM), 1.0 - rate, shape)
  mask = keep.astype(dtype) / jnp.asarray(1.0 - rate, dtype)
  owner.sow('intermediates', name, mask)
  return mask


def dropout(owner: nn.Module, x: Array, rate: float, deterministic: bool, name: str) -> Array:
  """`d(x) = m ⊙ x` with a fresh `keep_mask`; the identity when deterministic or rate 0."""
  if rate == 0 or deterministic:
    return x
  return x * keep_mask(owner, rate, x.shape, x.dtype, name)


def zoneout(owner: nn.Module, old: Array, new: Array, rate: float, deterministic: bool,
            name: str) -> Array:
  """`m ⊙ old + (1 − m) ⊙ new`, m ~ Bernoulli(rate) per unit (sown as `name`);
  in evaluation `rate · old + (1 − rate) · new`."""
  if rate == 0:
    return new
  if deterministic:
    return rate * old + (1 - rate) * new
  m = jax.random.bernoulli(owner.make_rng(RNG_STREAM), rate, new.shape)
  owner.sow('intermediates', name, m)
  return jnp.where(m, old, new)


def recurrent_kernel_mask(cell: nn.Module, shape: tuple[int, ...],
                          deterministic: bool | None) -> dict[str, Array]:
  """`{'recurrent_kernel': M}` for weight drop in training, else `{}` (drawn once per call)."""
  check_rates(cell)
  if not is_random(cell) or resolve_deterministic(cell, deterministic) or not cell.weight_drop_rate:
    return {}
  keep = jax.random.bernoulli(cell.make_rng(RNG_STREAM), 1.0 - cell.weight_drop_rate, shape)
  return {'recurrent_kernel': keep.astype(cell.param_dtype) / (1.0 - cell.weight_drop_rate)}


def prepare_step(cell: nn.Module, deterministic: bool | None,
                 masks: dict[str, Array] | None) -> tuple[bool, dict[str, Array]]:
  """`(deterministic, masks)` for one regularised step. Without `masks` (the cell
  called alone, not by `sn.RNN`) the weight-drop mask is drawn for this call
  (sown as 'recurrent_kernel_mask')."""
  if masks is None:
    masks = cell.sequence_masks(deterministic)
    if masks:
      cell.sow('intermediates', 'recurrent_kernel_mask', masks['recurrent_kernel'])
  check_rates(cell)
  return (resolve_deterministic(cell, deterministic) if is_random(cell) else True), masks


def masked_recurrence(params: dict[str, Array], h: Array,
                      masks: dict[str, Array]) -> tuple[Array, Array]:
  """`(h_{t-1} as the recurrent matmul sees it, U)`: `m_h ⊙ h` and `M ⊙ U` where given."""
  u = params['recurrent_kernel']
  if 'recurrent_kernel' in masks:
    u = u * masks['recurrent_kernel'].astype(u.dtype)
  if 'state' in masks:
    h = h * masks['state'].astype(h.dtype)
  return h, u


def layer_norm(a: Array, scale: Array, bias: Array | None = None, groups: int = 1) -> Array:
  """`γ ⊙ (a − μ) / √(σ² + ε) [+ β]`, μ and σ² over each of `groups` equal blocks of the
  last axis (computed in at least float32, returned in `a`'s dtype)."""
  shape = a.shape
  blocks = a.reshape(shape[:-1] + (groups, shape[-1] // groups))
  blocks = blocks.astype(jnp.promote_types(a.dtype, jnp.float32))
  mean = jnp.mean(blocks, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(blocks - mean), axis=-1, keepdims=True)
  normed = ((blocks - mean) * jax.lax.rsqrt(var + EPSILON)).reshape(shape).astype(a.dtype)
  out = normed * scale.astype(a.dtype)
  return out if bias is None else out + bias.astype(a.dtype)


def norm_params(cell: nn.Module, gates: int) -> dict[str, Array]:
  """The gains `input_norm_scale`, `recurrent_norm_scale` `[G·H]` (ones), to be declared
  in the cell's compact `cell_params`."""
  size = gates * cell.features
  return {name: cell.param(name, nn.initializers.ones_init(), (size,), cell.param_dtype)
          for name in ('input_norm_scale', 'recurrent_norm_scale')}
