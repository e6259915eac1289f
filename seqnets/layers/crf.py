"""A linear-chain conditional random field (CRF) output layer over per-position tag scores.

Synopsis:
  crf = CRF(num_tags=K, allowed=bio_constraints(tag_names))      # `allowed` is optional
  params = crf.init(key, emissions, lengths)              # emissions [B, T, K], lengths [B]
  ll = crf.apply(params, emissions, tags, lengths, method='log_likelihood')      # [B]
  loss = -ll.mean()
  tags, scores = crf.apply(params, emissions, lengths)    # Viterbi: [B, T] int32, [B]
  # from a parent module: self.crf.log_likelihood(emissions, tags, lengths),
  #                       self.crf.decode(emissions, lengths), self.crf.log_partition(...)

Shapes: emissions e `[B, T, K]` (any float dtype, computed in float32), tags `[B, T]` int,
lengths `[B]` int (clipped to [0, T]; None means T). Positions t >= length are padding:
whatever they hold never changes a result, and a row of length 0 has the single empty path
(score 0, log Z 0, log-likelihood 0, decoded tags all 0).

Parameters `transitions [K, K]` (score of tag i followed by tag j), `start [K]`, `end [K]`.
The score of a path y_1..y_n of a row of length n is

  s(y) = start[y_1] + Σ_{t=1..n} e[t, y_t] + Σ_{t=2..n} transitions[y_{t-1}, y_t] + end[y_n]
  log Z = log Σ_y exp s(y)           (`log_partition`: forward algorithm in log space)
  log p(y) = s(y) − log Z            (`log_likelihood`; a training loss is its negated mean)
  ŷ = argmax_y s(y)                  (`decode`: Viterbi with back-pointers)

Constraints `allowed = (start [K], transitions [K, K], end [K])` of bools (e.g. from
`bio_constraints`) forbid some first tags, tag pairs and last tags. They are module data,
given at construction as arrays or nested sequences and stored as a hashable tuple of tuples.
In `log_partition`, `log_likelihood` and `score` a forbidden score is replaced by
`forbidden_score` (finite, so gradients stay finite and a forbidden gold path only gets a very
low likelihood; log Z is then log Σ over the allowed paths to float32 precision). In `decode`
it is -inf, so Viterbi never returns a forbidden path when an allowed one exists (if none
does, the score is -inf).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

Array = jax.Array
Constraints = tuple[tuple[bool, ...], tuple[tuple[bool, ...], ...], tuple[bool, ...]]
SCHEMES = ('BIO', 'IOB2')
_PREFIXED = re.compile(r'^([A-Za-z]+)-(.*)$')


def freeze_constraints(allowed: Any, num_tags: int) -> Constraints:
  """`(start [K], transitions [K, K], end [K])` of bools (arrays or sequences) -> tuples."""
  try:
    start, transitions, end = allowed
  except (TypeError, ValueError):
    raise ValueError('CRF allowed must be (start [K], transitions [K, K], end [K]) of bools, '
                     f'got {type(allowed).__name__}') from None
  k = num_tags
  frozen = []
  for name, value, shape in (('start', start, (k,)), ('transitions', transitions, (k, k)),
                             ('end', end, (k,))):
    value = np.asarray(value)
    if value.shape != shape:
      raise ValueError(f'CRF allowed {name} has shape {value.shape}; '
                       f'num_tags={k} needs {shape}')
    if value.dtype != bool and not np.isin(value, (0, 1)).all():
      raise ValueError(f'CRF allowed {name} must hold booleans (or 0/1), got {value.dtype}')
    value = value.astype(bool)
    frozen.append(tuple(map(bool, value)) if value.ndim == 1
                  else tuple(tuple(map(bool, row)) for row in value))
  return tuple(frozen)


class CRF(nn.Module):
  """Linear-chain CRF over emissions `[B, T, K]` (see the module docstring).

  `__call__` is `decode`. Parameters are created in `setup`, so whichever method runs
  first (at `init` or from a parent module) creates them.

  Attributes:
    num_tags: K.
    allowed: None, or `(start [K], transitions [K, K], end [K])` bools, True = allowed
      (e.g. `bio_constraints(names)`); stored as tuples of tuples.
    forbidden_score: the score a forbidden start, transition or end gets in the
      likelihood (Viterbi uses -inf). Keep it far below any real score difference.
    param_init: initialiser of `transitions`, `start` and `end` (zeros by default).
  """
  num_tags: int
  allowed: Constraints | None = None
  forbidden_score: float = -1e4
  param_init: Callable[..., Array] = nn.initializers.zeros_init()

  def __post_init__(self):
    if not isinstance(self.num_tags, (int, np.integer)) or self.num_tags < 1:
      raise ValueError(f'CRF num_tags={self.num_tags!r} must be a positive int')
    if self.allowed is not None:
      # Frozen dataclass: the normalised (hashable) value is written the way dataclasses do it.
      object.__setattr__(self, 'allowed', freeze_constraints(self.allowed, int(self.num_tags)))
    super().__post_init__()

  def setup(self):
    k = self.num_tags
    self.transitions = self.param('transitions', self.param_init, (k, k), jnp.float32)
    self.start = self.param('start', self.param_init, (k,), jnp.float32)
    self.end = self.param('end', self.param_init, (k,), jnp.float32)

  def _parameters(self, fill: float) -> tuple[Array, Array, Array]:
    """`(start, transitions, end)` with forbidden entries set to `fill`."""
    params = (self.start, self.transitions, self.end)
    if self.allowed is None:
      return params
    return tuple(jnp.where(np.asarray(a, bool), p, jnp.float32(fill))
                 for a, p in zip(self.allowed, params))

  def _prepare(self, emissions: Array, lengths: Array | None) -> tuple[Array, Array, Array]:
    """-> float32 emissions with 0 at padding, lengths clipped to [0, T], mask `[B, T]`."""
    emissions = jnp.asarray(emissions)
    if emissions.ndim != 3 or emissions.shape[-1] != self.num_tags:
      raise ValueError(f'CRF emissions must be [B, T, K={self.num_tags}], '
                       f'got shape {emissions.shape}')
    b, t, _ = emissions.shape
    if lengths is None:
      lengths = jnp.full((b,), t, jnp.int32)
    lengths = jnp.clip(jnp.asarray(lengths).astype(jnp.int32), 0, t)
    if lengths.shape != (b,):
      raise ValueError(f'CRF lengths must be [B={b}], got shape {lengths.shape}')
    mask = jnp.arange(t)[None, :] < lengths[:, None]
    emissions = jnp.where(mask[..., None], emissions.astype(jnp.float32), 0.0)
    return emissions, lengths, mask

  def log_partition(self, emissions: Array, lengths: Array | None = None) -> Array:
    """log Z per row: `emissions [B, T, K], lengths [B] -> [B]` float32 (0 for length 0)."""
    e, lengths, mask = self._prepare(emissions, lengths)
    start, transitions, end = self._parameters(self.forbidden_score)
    if e.shape[1] == 0:
      return jnp.zeros(e.shape[:1], jnp.float32)

    def step(alpha, inputs):                                       # alpha [B, K]
      e_t, m_t = inputs
      new = jax.nn.logsumexp(alpha[:, :, None] + transitions, axis=1) + e_t
      return jnp.where(m_t[:, None], new, alpha), None

    alpha, _ = jax.lax.scan(step, start + e[:, 0],
                            (jnp.swapaxes(e[:, 1:], 0, 1), mask[:, 1:].T))
    return jnp.where(lengths > 0, jax.nn.logsumexp(alpha + end, axis=-1), 0.0)

  def score(self, emissions: Array, tags: Array, lengths: Array | None = None) -> Array:
    """s(tags) per row: `emissions [B, T, K], tags [B, T], lengths [B] -> [B]` float32
    (forbidden parts scored `forbidden_score`; 0 for length 0)."""
    e, lengths, mask = self._prepare(emissions, lengths)
    start, transitions, end = self._parameters(self.forbidden_score)
    if e.shape[1] == 0:
      return jnp.zeros(e.shape[:1], jnp.float32)
    tags = jnp.asarray(tags)
    if tags.shape != e.shape[:2]:
      raise ValueError(f'CRF tags must be [B, T]={e.shape[:2]}, got shape {tags.shape}')
    tags = jnp.where(mask, tags, 0).astype(jnp.int32)
    emitted = jnp.take_along_axis(e, tags[..., None], axis=-1)[..., 0]          # [B, T]
    total = jnp.sum(jnp.where(mask, emitted, 0.0), axis=-1)
    pairs = transitions[tags[:, :-1], tags[:, 1:]]                              # [B, T - 1]
    total += jnp.sum(jnp.where(mask[:, 1:], pairs, 0.0), axis=-1)
    last = jnp.take_along_axis(tags, jnp.maximum(lengths - 1, 0)[:, None], axis=1)[:, 0]
    return jnp.where(lengths > 0, total + start[tags[:, 0]] + end[last], 0.0)

  def log_likelihood(self, emissions: Array, tags: Array,
                     lengths: Array | None = None) -> Array:
    """log p(tags) = s(tags) − log Z: `[B, T, K], [B, T], [B] -> [B]` (0 for length 0).
    A loss is `-log_likelihood(...).mean()`."""
    return self.score(emissions, tags, lengths) - self.log_partition(emissions, lengths)

  def decode(self, emissions: Array, lengths: Array | None = None) -> tuple[Array, Array]:
    """Viterbi: `emissions [B, T, K], lengths [B] -> (tags [B, T] int32, scores [B] float32)`,
    the best allowed path and its score s(ŷ); tags are 0 at t >= length, score 0 for length 0."""
    e, lengths, mask = self._prepare(emissions, lengths)
    start, transitions, end = self._parameters(-jnp.inf)
    b, t, k = e.shape
    if t == 0:
      return jnp.zeros((b, 0), jnp.int32), jnp.zeros((b,), jnp.float32)
    stay = jnp.broadcast_to(jnp.arange(k, dtype=jnp.int32), (b, k))

    def forward(delta, inputs):                                    # delta [B, K]
      e_t, m_t = inputs
      candidates = delta[:, :, None] + transitions                 # [B, K (from), K (to)]
      pointers = jnp.argmax(candidates, axis=1).astype(jnp.int32)
      new = jnp.max(candidates, axis=1) + e_t
      keep = m_t[:, None]
      # Past the length the best score is carried and the pointers point to the same tag,
      # so the backtrace walks through the padding to the row's own last tag.
      return jnp.where(keep, new, delta), jnp.where(keep, pointers, stay)

    delta, pointers = jax.lax.scan(forward, start + e[:, 0],
                                   (jnp.swapaxes(e[:, 1:], 0, 1), mask[:, 1:].T))
    final = delta + end
    best_last = jnp.argmax(final, axis=-1).astype(jnp.int32)
    scores = jnp.where(lengths > 0, jnp.max(final, axis=-1), 0.0)

    def backward(tag, pointers_t):                                 # tag at t, pointers [B, K]
      return jnp.take_along_axis(pointers_t, tag[:, None], axis=1)[:, 0], tag

    first, rest = jax.lax.scan(backward, best_last, pointers, reverse=True)
    tags = jnp.concatenate([first[:, None], rest.T], axis=1)
    return jnp.where(mask, tags, 0).astype(jnp.int32), scores

  def __call__(self, emissions: Array, lengths: Array | None = None) -> tuple[Array, Array]:
    """`decode`: `[B, T, K], [B] -> (tags [B, T] int32, scores [B])`."""
    return self.decode(emissions, lengths)


def _parse_bio(name: str) -> tuple[str, str | None]:
  """'B-X' -> ('B', 'X'), 'I-X' -> ('I', 'X'), anything else unconstrained -> ('', None)."""
  if not isinstance(name, str):
    raise ValueError(f'tag {name!r} is not a string')
  match = _PREFIXED.match(name)
  if match is None:
    if name in ('B', 'I'):
      raise ValueError(f'tag {name!r} has no entity type (expected {name}-TYPE)')
    return '', None
  prefix, kind = match.groups()
  if prefix not in ('B', 'I'):
    raise ValueError(f'tag {name!r} is malformed for BIO: prefix {prefix!r} is not B or I')
  if not kind:
    raise ValueError(f'tag {name!r} has an empty entity type (expected {prefix}-TYPE)')
  return prefix, kind


def bio_constraints(tag_names: Sequence[str],
                    scheme: str = 'BIO') -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Allowed `(start [K], transitions [K, K], end [K])` bools for BIO (IOB2) tags.

  `I-X` may only follow `B-X` or `I-X` and may not start a sequence; everything else is
  allowed (any tag may end a sequence). `O` and names without a `P-` prefix (e.g. '<pad>',
  '<unk>') are unconstrained tags. Raises ValueError for a malformed name (`I-`, `B`,
  `X-foo`, `b-per`) or a scheme other than 'BIO' (alias 'IOB2').
  """
  if not isinstance(scheme, str) or scheme.upper() not in SCHEMES:
    raise ValueError(f'scheme={scheme!r} is not supported; valid: {list(SCHEMES)}')
  parsed = [_parse_bio(name) for name in tag_names]
  k = len(parsed)
  start = np.ones(k, bool)
  transitions = np.ones((k, k), bool)
  end = np.ones(k, bool)
  for j, (prefix, kind) in enumerate(parsed):
    if prefix != 'I':
      continue
    start[j] = False
    transitions[:, j] = [p in ('B', 'I') and q == kind for p, q in parsed]
  return start, transitions, end
