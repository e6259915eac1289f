"""Seeds until significant: more seeds for the compared variants, in rounds, until each
pair's test decides at `report.alpha` or the variants reach `report.max_seeds`.

  while (round_ := plan_next_round(configs, root, settings)) is not None:
    train(round_)                              # (name, config, workdir) of each new run

After the sweep's own runs, each round gives every variant of an undecided pair
`report.seeds_per_round` more seeds (fewer where `max_seeds` stops it): a run in
`DIR/<variant>/more_seeds/seeds_<first>-<last>/`, its config the variant's with the next
free seeds, which the report counts with the variant's own. The test is the report's on
`report.metric` (default: the task's first numeric reported metric). Rounds are written
to `DIR/seed_rounds.json` before they train, so an interrupted ablation, rerun, finishes
the same rounds and decides from the same results.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Callable

import ml_collections

from seqnets import files
from seqnets.ablation import report
from seqnets.ablation import sweeps
from seqnets.ablation.report_settings import ReportSettings

PLAN = 'seed_rounds.json'


def read_plan(root: pathlib.Path) -> list[dict]:
  """The rounds planned so far: `[{'round': k, 'runs': [{'variant', 'first_seed',
  'num_seeds', 'dir'}]}]` (empty when none)."""
  try:
    return json.loads((root / PLAN).read_text())['rounds']
  except FileNotFoundError:
    return []
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f'{root / PLAN} is not a seed-round plan ({e}); move it away to start '
                     'the rounds again') from None


def round_configs(configs: dict, plan: list[dict], root: pathlib.Path) -> list[tuple]:
  """`(name, config, workdir)` of every run of the planned rounds (done or not)."""
  found = []
  for round_ in plan:
    for run in round_['runs']:
      config = configs[run['variant']].copy_and_resolve_references()
      with config.unlocked():
        config.seed = run['first_seed']
        config.num_seeds = run['num_seeds']
      found.append((f"{run['variant']}/{run['dir'].split('/', 1)[1]}", config,
                    str(root / run['dir'])))
  return found


def tested(settings: ReportSettings, rows: list[dict]) -> ReportSettings:
  """`settings` narrowed to one metric: `report.metric`, or the first numeric one."""
  _, metric = report.tested_metrics(rows, settings)[0]
  return dataclasses.replace(settings, metric=metric['key'])


def pair_states(root: pathlib.Path, settings: ReportSettings) -> tuple[str, list[dict]]:
  """(the tested metric's key, each compared pair's test on it with the seeds of every
  run so far)."""
  runs = report.load_runs(root)
  if not runs:
    return '', []
  _, rows, seeds = report.summarise(runs, settings)
  narrowed = tested(settings, rows)
  return narrowed.metric, report.comparisons(runs, rows, seeds, narrowed)


def seed_counts(configs: dict, plan: list[dict]) -> dict[str, int]:
  """Seeds each variant has been given: its own `num_seeds` and its rounds'."""
  counts = {name: config.num_seeds for name, config in configs.items()}
  for round_ in plan:
    for run in round_['runs']:
      counts[run['variant']] += run['num_seeds']
  return counts


def plan_next_round(configs: dict, root: pathlib.Path, settings: ReportSettings
                    ) -> list[tuple] | None:
  """Plans (and writes to `DIR/seed_rounds.json`) the next round from the finished
  results, or returns None when every pair is decided or out of seeds. `configs`: variant
  name -> its config."""
  plan = read_plan(root)
  counts = seed_counts(configs, plan)
  wanting = []
  for state in pair_states(root, settings)[1]:
    if 'p_value' in state and state['p_value'] < settings.alpha:
      continue
    for name in (state['a'], state['b']):
      if counts.get(name, settings.max_seeds) < settings.max_seeds and name not in wanting:
        wanting.append(name)
  if not wanting:
    return None
  runs = []
  for name in wanting:
    first = configs[name].seed + counts[name]
    number = min(settings.seeds_per_round, settings.max_seeds - counts[name])
    runs.append({'variant': name, 'first_seed': first, 'num_seeds': number,
                 'dir': f'{name}/{report.MORE_SEEDS}/seeds_{first}-{first + number - 1}'})
  plan.append({'round': len(plan) + 1, 'runs': runs})
  files.write_atomically(root / PLAN, json.dumps({'rounds': plan}, indent=1) + '\n')
  return round_configs(configs, plan[-1:], root)


def outcome(root: pathlib.Path, settings: ReportSettings, configs: dict) -> str:
  """What the rounds did, per pair, for the report: decided after which round and with how
  many seeds, or the seed budget spent."""
  plan = read_plan(root)
  counts = seed_counts(configs, plan)
  metric, states = pair_states(root, settings)
  lines = [f'Seeds were added to the variants of undecided pairs in rounds of '
           f'{settings.seeds_per_round} (at most {settings.max_seeds} per variant), testing '
           f'`{metric}` at α = {settings.alpha:g}; {len(plan)} round(s) ran.\n']
  last_round = {run['variant']: round_['round'] for round_ in plan for run in round_['runs']}
  for state in states:
    a, b = state['a'], state['b']
    p_value = state.get('p_value', float('nan'))
    seeds = f"p = {p_value:.3g}, {state.get('n_a', 0)} + {state.get('n_b', 0)} seeds"
    rounds = max(last_round.get(a, 0), last_round.get(b, 0))
    if p_value < settings.alpha:
      when = f'after round {rounds}' if rounds else "with the sweep's own seeds"
      lines.append(f'* `{a}` vs `{b}`: decided {when} ({seeds}).')
    elif min(counts.get(a, 0), counts.get(b, 0)) >= settings.max_seeds:
      lines.append(f'* `{a}` vs `{b}`: undecided, the seed budget is spent ({seeds}).')
    else:
      lines.append(f'* `{a}` vs `{b}`: undecided so far ({seeds}); rerun to go on.')
  return '\n'.join(lines)


def variant_configs(config, sweep: list[dict]) -> dict:
  """Variant name -> its config (the sweep's overrides applied)."""
  return {overrides['name']: sweeps.apply_overrides(config, overrides) for overrides in sweep}


def saved_outcome(root: pathlib.Path) -> str:
  """`outcome` from the run directories alone (their saved configs and `report` section),
  for `experiments.report`; '' when no rounds were planned."""
  if not (root / PLAN).exists():
    return ''
  runs = report.load_runs(root)
  configs = {run['run']: ml_collections.ConfigDict(run['config']) for run in runs}
  return outcome(root, report.saved_settings(runs), configs)


def run(config, sweep: list[dict], root: pathlib.Path, settings: ReportSettings,
        train: Callable[[list[tuple]], bool]) -> bool:
  """Trains the planned rounds' unfinished runs, then rounds until every pair is decided
  or out of seeds. `train(variants) -> complete`. False when training stopped early."""
  configs = variant_configs(config, sweep)
  unfinished = [v for v in round_configs(configs, read_plan(root), root)
                if not sweeps.is_done(pathlib.Path(v[2]), v[1])]
  if unfinished and not train(unfinished):
    return False
  while (next_round := plan_next_round(configs, root, settings)) is not None:
    if not train(next_round):
      return False
  return True
