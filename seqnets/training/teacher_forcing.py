"""Teacher-forcing schedules for scheduled sampling (Bengio et al. 2015).

ε_i is the probability of feeding the true previous token at training step i
(1 − ε_i: the model's own prediction):
  constant          ε_i = ratio
  linear            ε_i = max(ratio, 1 − decay · i)
  exponential       ε_i = max(ratio, decay^i)              (decay < 1)
  inverse_sigmoid   ε_i = max(ratio, k / (k + exp(i / k)))  (k = decay ≥ 1)
`ratio` is the constant value, or the floor of a decaying schedule.
"""

from __future__ import annotations

import math

SCHEDULES = ('constant', 'linear', 'exponential', 'inverse_sigmoid')


def validate(schedule: str, ratio: float, decay: float, prefix: str = 'data.') -> None:
  """ValueError naming `<prefix>teacher_forcing_*` for a bad schedule."""
  if schedule not in SCHEDULES:
    raise ValueError(f'{prefix}teacher_forcing_schedule={schedule!r}; valid: {list(SCHEDULES)}')
  if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
    raise ValueError(f'{prefix}teacher_forcing_ratio must be in [0, 1], got {ratio!r}')
  if schedule == 'constant':
    return
  valid = {'linear': decay > 0, 'exponential': 0 < decay < 1, 'inverse_sigmoid': decay >= 1}
  if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not valid[schedule]:
    need = {'linear': '> 0', 'exponential': 'in (0, 1)', 'inverse_sigmoid': '>= 1'}[schedule]
    raise ValueError(f'{prefix}teacher_forcing_decay must be {need} for the {schedule} schedule, '
                     f'got {decay!r}')


def true_token_probability(schedule: str, ratio: float, decay: float, step: int) -> float:
  """ε at `step` (see the module docstring)."""
  if schedule == 'constant':
    return float(ratio)
  if schedule == 'linear':
    value = 1.0 - decay * step
  elif schedule == 'exponential':
    value = decay ** step
  else:
    value = decay / (decay + math.exp(min(step / decay, 700.0)))
  return float(max(ratio, value))
