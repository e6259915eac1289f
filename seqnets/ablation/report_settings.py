"""`config.report`: what an ablation report tests, at which level, and how seeds are added.

  config.report = dict(
      compare=(('anbn-lstm-h2', 'anbn-lstm_peephole-h2'),),   # pairs of variant names
      baseline=(),            # variant names: each against every variant on its task and data
      metric=None,            # the tested metric's key (None: each numeric reported metric)
      confidence=0.95,        # of the bootstrap intervals over seeds
      resamples=10_000,       # bootstrap resamples; permutations (exact when fewer splits)
      bootstrap_seed=0,
      alpha=0.05,             # the level of the two-sided tests
      until_significant=False,  # add seeds to undecided pairs in rounds (experiments.ablate)
      seeds_per_round=5,
      max_seeds=30,           # per variant, over all rounds
  )

Every key is optional (these are the defaults); a key not listed is an error naming it.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Mapping

from seqnets.models import config_fields
from seqnets.models.config_fields import Range


@dataclasses.dataclass(frozen=True)
class ReportSettings:
  compare: tuple[tuple[str, ...], ...] = ()
  baseline: tuple[str, ...] = ()
  metric: str | None = None
  confidence: Annotated[float, Range(0.5, 0.999)] = 0.95
  resamples: Annotated[int, Range(100, None)] = 10_000
  bootstrap_seed: Annotated[int, Range(0, None)] = 0
  alpha: Annotated[float, Range(1e-6, 0.5)] = 0.05
  until_significant: bool = False
  seeds_per_round: int = 5
  max_seeds: Annotated[int, Range(2, None)] = 30


def from_config(section: Mapping | None) -> ReportSettings:
  """The settings of a config's `report` section (None or absent: the defaults).
  ValueError naming `report.<key>` for an unknown key or a bad value."""
  given = dict(section.items()) if section is not None else {}
  fields = config_fields.settable_fields(ReportSettings)
  settings = config_fields.resolve('report', 'the ablation report', fields, given)
  for i, pair in enumerate(settings['compare']):
    if len(pair) != 2 or pair[0] == pair[1]:
      raise ValueError(f'report.compare[{i}] must be a pair of two different variant names, '
                       f'got {pair!r}')
  return ReportSettings(**settings)


def check_names(settings: ReportSettings, names: list[str]) -> None:
  """ValueError naming the first variant of `compare` or `baseline` that the sweep lacks."""
  named = [(f'report.compare[{i}]', n) for i, pair in enumerate(settings.compare) for n in pair]
  named += [(f'report.baseline[{i}]', n) for i, n in enumerate(settings.baseline)]
  for where, name in named:
    if name not in names:
      raise ValueError(f'{where}: no variant named {name!r} in the sweep; valid: {names}')
  if settings.until_significant and not (settings.compare or settings.baseline):
    raise ValueError('report.until_significant needs pairs to decide: set report.compare or '
                     'report.baseline')
