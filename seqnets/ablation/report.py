"""Builds an ablation report from run directories: `report.md`, `results.json` and plots.

Reads only each run's `config.json`, the final records of its `metrics.jsonl`
and the data summary of its `results.json`, so it works on any finished runs,
here or copied from elsewhere, for any task. The table has one row per run
directory: the config fields that differ between the runs (the sweep's varied
fields), the number of seeds, failed seeds, the task's reported metrics over
seeds and, when the data states one (`baseline/loss` in the data summary, e.g.
the loss of a model without memory), the baseline loss. Each numeric metric is given as its median and mean over the
seeds, each with a percentile bootstrap interval, and the best seed's value.

The pairs of variants that `config.report` names (`report_settings`) are tested:
a two-sided permutation test of the difference of the means of their seeds, with
Cliff's δ as the effect size and a sentence stating the outcome; a pair whose
seed counts cannot reach the test's level says so. Seeds a variant gained in later
rounds (`DIR/<run>/more_seeds/*/`, `experiments.ablate` with
`report.until_significant`) count with its own. Plots: `train_loss.png`
(training loss per run, a panel per task and baseline with the baseline as a
dashed line), `metrics.png` (each reported metric, a point per seed, the mean
with its interval) and, for evaluators that score each size n,
`accuracy_vs_n.png` (fraction of seeds right at each n), `accuracy_by_n.png`
(accuracy at each n, mean over seeds with its bootstrap band) and a table of the
accuracy by range of n.

  table = write_report(workdir)     # workdir: one sub-directory per run
  table = write_report(workdir, report_settings.from_config(config.report))
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import pathlib
import statistics
from typing import Any

import numpy as np

from seqnets import files
from seqnets import plotting
from seqnets.ablation import report_settings
from seqnets.ablation import significance
from seqnets.ablation.report_settings import ReportSettings
from seqnets.tasks import factory as task_factory
from seqnets.training import resume
from seqnets.training import writers

BASELINE_KEY = 'baseline/loss'      # in a run's data summary: the loss to beat
# Fields that name a run rather than define it.
IGNORED_FIELDS = ('seed', 'init_from', 'launch.*', 'report.*', 'train.log_every_steps', 'train.checkpoint_every_steps',
                  'train.max_checkpoints_to_keep', 'evals.*.every_steps', 'evals.*.batch_size')


MORE_SEEDS = 'more_seeds'           # DIR/<run>/more_seeds/<round>/: that variant's later seeds


def _final_records(run_dir: pathlib.Path) -> list[dict]:
  """The last final record of each seed (a rerun or extended run counts each seed once),
  with those of the runs under `run_dir/more_seeds/`."""
  last = {}
  for directory in [run_dir, *sorted(p.parent for p in run_dir.glob(f'{MORE_SEEDS}/*/config.json'))]:
    if not (directory / 'metrics.jsonl').exists():
      continue
    for record in writers.read_metrics(directory):
      if record.get('final'):
        last[record['seed']] = record
  return [last[seed] for seed in sorted(last)]


def _data_summary(run_dir: pathlib.Path) -> dict:
  """The data summary in the run's results.json (`{}` when there is none)."""
  try:
    summary = json.loads((run_dir / 'results.json').read_text()).get('data')
  except (OSError, ValueError, AttributeError):
    return {}
  return summary if isinstance(summary, dict) else {}


def load_runs(workdir: str | pathlib.Path) -> list[dict]:
  """`[{'run', 'config', 'finals', 'data'}]` for every `*/` with config.json and a final
  record; `data` is the run's data summary."""
  runs = []
  for config_path in sorted(pathlib.Path(workdir).glob('*/config.json')):
    run_dir = config_path.parent
    if not (run_dir / 'metrics.jsonl').exists():
      continue
    finals = _final_records(run_dir)
    if finals:
      runs.append({'run': run_dir.name, 'config': json.loads(config_path.read_text()), 'finals': finals,
                   'data': _data_summary(run_dir), 'mtime': config_path.stat().st_mtime})
  return runs


def baseline(run: dict) -> float | None:
  """The run's baseline loss (`baseline/loss` of its data summary), or None."""
  value = run.get('data', {}).get(BASELINE_KEY)
  return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def varied_fields(configs: list[dict]) -> list[str]:
  """Dotted config fields whose values differ between the runs (sorted)."""
  flat = [resume.flatten(c) for c in configs]
  fields = set().union(*flat)
  return sorted(f for f in fields
                if len({json.dumps(c.get(f), sort_keys=True) for c in flat}) > 1
                and not any(fnmatch.fnmatchcase(f, p) for p in IGNORED_FIELDS))


def _numbers(values: list) -> list[float]:
  return [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _aggregate(metric, values: list, settings: ReportSettings) -> dict[str, Any]:
  if metric.aggregate == 'count_true':
    return {'count': sum(bool(v) for v in values), 'of': len(values)}
  numbers = _numbers(values)
  if not numbers:
    return {'median': None, 'best': None, 'mean': None, 'median_ci': None, 'mean_ci': None,
            'higher_is_better': metric.higher_is_better}
  interval = lambda statistic: significance.bootstrap_interval(
      numbers, statistic, settings.confidence, settings.resamples, settings.bootstrap_seed)
  return {'median': statistics.median(numbers), 'median_ci': interval('median'),
          'mean': statistics.mean(numbers), 'mean_ci': interval('mean'),
          'best': max(numbers) if metric.higher_is_better else min(numbers),
          'higher_is_better': metric.higher_is_better}


def summarise(runs: list[dict], settings: ReportSettings = ReportSettings()
              ) -> tuple[list[str], list[dict], list[dict]]:
  """(varied fields, one summary row per run, one record per seed)."""
  fields = varied_fields([r['config'] for r in runs])
  rows, seeds = [], []
  for run in runs:
    flat = resume.flatten(run['config'])
    task = task_factory.get(run['config']['task'])
    metrics = task.reported_metrics(run['config'])
    healthy = [f for f in run['finals'] if not f.get('failed')]
    row = {'run': run['run'], **{f: flat.get(f) for f in fields}, 'seeds': len(run['finals']),
           'failed': len(run['finals']) - len(healthy), 'metrics': {}}
    if baseline(run) is not None:
      row['baseline_loss'] = baseline(run)
    for metric in metrics:
      row['metrics'][metric.label] = {'key': metric.key, 'aggregate': metric.aggregate,
                                      **_aggregate(metric, [f.get(metric.key) for f in healthy],
                                                   settings)}
    rows.append(row)
    for final in run['finals']:
      seeds.append({'run': run['run'], **{f: flat.get(f) for f in fields},
                    **{k: v for k, v in final.items() if k not in ('final', 'step')}, 'step': final['step']})
  return fields, rows, seeds


def _fmt(value) -> str:
  return '–' if value is None else f'{value:.4g}'


def _interval(interval) -> str:
  return '' if interval is None else f' [{_fmt(interval[0])}, {_fmt(interval[1])}]'


def _cell(summary: dict) -> str:
  if summary['aggregate'] == 'count_true':
    return f"{summary['count']}/{summary['of']}"
  return (f"{_fmt(summary['median'])}{_interval(summary.get('median_ci'))} / "
          f"{_fmt(summary.get('mean'))}{_interval(summary.get('mean_ci'))} / {_fmt(summary['best'])}")


def markdown_table(fields: list[str], rows: list[dict],
                   confidence: float = report_settings.ReportSettings.confidence) -> str:
  labels = list(dict.fromkeys(label for row in rows for label in row['metrics']))
  ci = f'{100 * confidence:g} % CI'
  metric_headers = [label + ('' if rows[0]['metrics'].get(label, {}).get('aggregate') == 'count_true'
                             else f': median [{ci}] / mean [{ci}] / best') for label in labels]
  baselines = any('baseline_loss' in row for row in rows)
  header = ['run', *fields, 'seeds', 'failed', *(['baseline loss'] if baselines else []),
            *metric_headers]
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for row in rows:
    values = [row['run'], *(json.dumps(row[f]) if not isinstance(row[f], str) else row[f] for f in fields),
              str(row['seeds']), str(row['failed']),
              *([f"{row['baseline_loss']:.4g}" if 'baseline_loss' in row else '–'] if baselines else []),
              *(_cell(row['metrics'][l]) if l in row['metrics'] else '' for l in labels)]
    lines.append('| ' + ' | '.join(values) + ' |')
  return '\n'.join(lines)


def _pairs(runs: list[dict], settings: ReportSettings) -> list[tuple[str, str]]:
  """The named pairs, then each baseline against every run of its task and data."""
  pairs = [(a, b) for a, b in settings.compare]
  by_name = {run['run']: run for run in runs}
  same_data = lambda a, b: (a['config'].get('task'), a['config'].get('data')) == (
      b['config'].get('task'), b['config'].get('data'))
  for name in settings.baseline:
    if name in by_name:
      pairs += [(run['run'], name) for run in runs
                if run['run'] != name and same_data(run, by_name[name])]
  return list(dict.fromkeys(pairs))


def tested_metrics(rows: list[dict], settings: ReportSettings) -> list[tuple[str, dict]]:
  """`[(label, metric summary)]` the tests run on: `settings.metric`, or every numeric
  reported metric. ValueError when `report.metric` is not one of them."""
  numeric = {}
  for row in rows:
    for label, summary in row['metrics'].items():
      if summary['aggregate'] != 'count_true':
        numeric.setdefault(summary['key'], (label, summary))
  if settings.metric is None:
    return list(numeric.values())
  if settings.metric not in numeric:
    raise ValueError(f'report.metric={settings.metric!r} is not a numeric metric of these '
                     f'runs; valid: {sorted(numeric)}')
  return [numeric[settings.metric]]


def seed_values(seeds: list[dict], run: str, key: str) -> list[float]:
  """The metric `key` of every healthy seed of `run`."""
  return _numbers([s.get(key) for s in seeds if s['run'] == run and not s.get('failed')])


def comparisons(runs: list[dict], rows: list[dict], seeds: list[dict],
                settings: ReportSettings) -> list[dict]:
  """One record per (pair, tested metric): the permutation test, Cliff's δ, the medians
  and means with their intervals, and the verdict at `settings.alpha`."""
  found = []
  by_name = {row['run']: row for row in rows}
  for a, b in _pairs(runs, settings):
    for label, metric in tested_metrics(rows, settings):
      record = {'a': a, 'b': b, 'metric': label, 'key': metric['key'],
                'higher_is_better': metric['higher_is_better']}
      missing = [name for name in (a, b) if name not in by_name]
      result = None if missing else significance.compare(
          seed_values(seeds, a, metric['key']), seed_values(seeds, b, metric['key']),
          settings.resamples, settings.bootstrap_seed)
      if result is None:
        found.append({**record, 'verdict': 'no results' + (f' for {missing}' if missing else '')})
        continue
      record.update(dataclasses.asdict(result), mean_difference=result.mean_difference,
                    interval_a=by_name[a]['metrics'][label].get('median_ci'),
                    interval_b=by_name[b]['metrics'][label].get('median_ci'))
      if result.decided(settings.alpha):
        better = a if (result.mean_a > result.mean_b) == metric['higher_is_better'] else b
        record['verdict'] = f'{better} better'
      elif result.too_few_seeds(settings.alpha):
        record['verdict'] = 'too few seeds'
      else:
        record['verdict'] = 'not separated'
      found.append(record)
  for key in {r['key'] for r in found}:
    family = [r for r in found if r['key'] == key and 'p_value' in r]
    for r, adjusted in zip(family, significance.holm([r['p_value'] for r in family])):
      r['p_holm'] = adjusted
  return found


def _test_name(record: dict) -> str:
  kind = 'exact' if record['exact'] else f"{record['resamples']:,} random splits"
  return f'two-sided permutation test of the means, {kind}'


def sentence(record: dict, settings: ReportSettings) -> str:
  """The outcome of one comparison as a paper states it."""
  a, b, label = record['a'], record['b'], record['metric']
  if 'p_value' not in record:
    return f'`{a}` vs `{b}` on {label}: {record["verdict"]}.'
  ci = f'{100 * settings.confidence:g} % CI'
  numbers = (f"median {_fmt(record['median_a'])}{_interval(record['interval_a'])} vs "
             f"{_fmt(record['median_b'])}{_interval(record['interval_b'])} ({ci}), "
             f"mean {_fmt(record['mean_a'])} vs {_fmt(record['mean_b'])}; "
             f"p = {record['p_value']:.3g}, {_test_name(record)}; "
             f"Cliff's δ = {record['cliffs_delta']:+.2f}; {record['n_a']} + {record['n_b']} seeds")
  if record['verdict'].endswith(' better'):
    winner = record['verdict'][:-len(' better')]
    loser = b if winner == a else a
    verb = 'scores higher' if record['higher_is_better'] else 'scores lower'
    return f'`{winner}` {verb} than `{loser}` on {label} ({numbers}).'
  if record['verdict'] == 'too few seeds':
    return (f'`{a}` and `{b}` cannot be told apart on {label} with these seeds: the '
            f"smallest p-value {record['n_a']} + {record['n_b']} seeds can give is "
            f"{record['floor']:.3g}, not below α = {settings.alpha:g} ({numbers}).")
  return (f'`{a}` and `{b}` are not separated on {label} at α = {settings.alpha:g} '
          f'({numbers}).')


def comparisons_table(records: list[dict]) -> str:
  if not records:
    return ''
  lines = ['| A | B | metric | seeds | median A / B | mean A − B | Cliff\'s δ | p | p (Holm) | '
           'verdict |', '|---|---|---|---|---|---|---|---|---|---|']
  for r in records:
    if 'p_value' not in r:
      lines.append(f"| {r['a']} | {r['b']} | {r['metric']} | | | | | | | {r['verdict']} |")
      continue
    lines.append(f"| {r['a']} | {r['b']} | {r['metric']} | {r['n_a']} + {r['n_b']} | "
                 f"{_fmt(r['median_a'])} / {_fmt(r['median_b'])} | {r['mean_difference']:+.4g} | "
                 f"{r['cliffs_delta']:+.2f} | {r['p_value']:.3g} | {r['p_holm']:.3g} | "
                 f"{r['verdict']} |")
  return '\n'.join(lines)


def failed_table(seeds: list[dict]) -> str:
  failed = [s for s in seeds if s.get('failed')]
  if not failed:
    return ''
  lines = ['| run | seed | failed at step | cause |', '|---|---|---|---|']
  lines += [f"| {s['run']} | {s['seed']} | {s.get('failed_step')} | {s.get('cause')} |" for s in failed]
  return '\n'.join(lines)


def loss_panels(runs: list[dict]) -> list[tuple[str, float | None, list[dict]]]:
  """`[(task, baseline loss or None, runs)]`: the runs grouped by task and baseline, in order
  of first appearance (one group when the runs share both)."""
  groups: dict[tuple[str, float | None], list[dict]] = {}
  for run in runs:
    groups.setdefault((run['config'].get('task', ''), baseline(run)), []).append(run)
  return [(task, value, members) for (task, value), members in groups.items()]


def plot_train_loss(workdir: pathlib.Path, runs: list[dict], path: pathlib.Path) -> None:
  """Training loss against step, mean over the seeds of each run; a panel per task and
  baseline, the baseline loss (when the data states one) as a dashed line."""
  plt = plotting.pyplot()
  panels = loss_panels(runs)
  fig, axes = plt.subplots(len(panels), 1, figsize=(9, 4 if len(panels) == 1 else 3.4 * len(panels)),
                           squeeze=False)
  for ax, (task, value, members) in zip(axes[:, 0], panels):
    for run in members:
      by_step: dict[int, list[float]] = {}
      for record in writers.read_metrics(workdir / run['run']):
        if isinstance(record.get('train/loss'), (int, float)):
          by_step.setdefault(record['step'], []).append(record['train/loss'])
      steps = sorted(by_step)
      ax.plot(steps, [statistics.mean(by_step[s]) for s in steps], label=run['run'])
    if value is not None:
      ax.axhline(value, color='k', linestyle='--', lw=1, label=f'baseline {value:.4g}')
    ax.set(xlabel='step', ylabel='training loss', yscale='log')
    if len(panels) > 1 or value is not None:
      ax.set_title(task + ('' if value is None else f', baseline loss {value:.4g}'), fontsize=9)
    ax.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.01, 0.5))
  plotting.save_figure(fig, path)


def plot_metrics(rows: list[dict], seeds: list[dict], path: pathlib.Path) -> None:
  """One panel per reported (numeric) metric: a point per seed, a bar at the median, the
  mean with its bootstrap interval beside them."""
  plt = plotting.pyplot()
  labels = [(l, s['key']) for l, s in rows[0]['metrics'].items() if s['aggregate'] != 'count_true']
  if not labels:
    return
  fig, axes = plt.subplots(len(labels), 1, figsize=(max(6, 0.5 * len(rows) + 3), 3.2 * len(labels)),
                           squeeze=False)
  for ax, (label, key) in zip(axes[:, 0], labels):
    for x, row in enumerate(rows):
      values = [s[key] for s in seeds if s['run'] == row['run'] and not s.get('failed')
                and isinstance(s.get(key), (int, float))]
      ax.scatter([x - 0.1] * len(values), values, s=12)
      if values:
        ax.hlines(statistics.median(values), x - 0.3, x + 0.1, color='k')
      summary = row['metrics'].get(label, {})
      if summary.get('mean_ci') is not None:
        lo, hi = summary['mean_ci']
        ax.errorbar([x + 0.15], [summary['mean']], yerr=[[summary['mean'] - lo], [hi - summary['mean']]],
                    fmt='D', color='k', ms=4, capsize=3)
    ax.set_xticks(range(len(rows)), [r['run'] for r in rows], rotation=45, ha='right', fontsize=7)
    ax.set_ylabel(label)
  axes[0, 0].set_title('seeds (points), median (bar), mean with its bootstrap interval (◆)',
                       fontsize=8)
  plotting.save_figure(fig, path)


def plot_accuracy_by_n(fields: list[str], seeds: list[dict], path: pathlib.Path) -> bool:
  """Fraction of seeds right at each n, one line per run; a panel per value of the
  first varied field. False when no evaluator scored sizes n."""
  keys = sorted({k for s in seeds for k in s if k.endswith('/accuracy_by_n')})
  if not keys:
    return False
  key = next((k for k in keys if 'test' in k), keys[-1])
  plt = plotting.pyplot()
  panel_field = fields[0] if fields else None
  panels = sorted({json.dumps(s.get(panel_field)) for s in seeds})
  fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.6 * len(panels)), squeeze=False)
  for ax, panel in zip(axes[:, 0], panels):
    members = [s for s in seeds if json.dumps(s.get(panel_field)) == panel and key in s]
    for run in sorted({s['run'] for s in members}):
      curves = [s[key] for s in members if s['run'] == run]
      ns = sorted(int(n) for n in curves[0])
      fraction = [sum(c[str(n)] == 1.0 for c in curves) / len(curves) for n in ns]
      ax.plot(ns, fraction, label=run, drawstyle='steps-post')
    ax.set(xscale='log', xlabel='n', ylabel='fraction of seeds correct', ylim=(-0.02, 1.02),
           title=f'{panel_field} = {panel}' if panel_field else key)
    ax.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.01, 0.5))
  plotting.save_figure(fig, path)
  return True


def _by_n_key(seeds: list[dict]) -> str | None:
  keys = sorted({k for s in seeds for k in s if k.endswith('/accuracy_by_n')})
  return next((k for k in keys if 'test' in k), keys[-1]) if keys else None


def _curves_by_n(seeds: list[dict], key: str) -> dict[str, tuple[list[int], np.ndarray]]:
  """run -> (the n its seeds all scored, accuracy `[seeds, n]`), healthy seeds only."""
  by_run: dict[str, list[dict]] = {}
  for s in seeds:
    if key in s and not s.get('failed'):
      by_run.setdefault(s['run'], []).append(s[key])
  found = {}
  for run, curves in by_run.items():
    ns = sorted(set.intersection(*(set(int(n) for n in c) for c in curves)))
    found[run] = ns, np.array([[c[str(n)] for n in ns] for c in curves], dtype=np.float64)
  return found


def _mean_by_n(seeds: list[dict], key: str) -> dict[str, dict[int, float]]:
  """run -> n -> accuracy at n, mean over the run's healthy seeds."""
  return {run: dict(zip(ns, curves.mean(axis=0).tolist()))
          for run, (ns, curves) in _curves_by_n(seeds, key).items()}


def accuracy_by_n_table(seeds: list[dict], ranges: int = 4) -> str:
  """Accuracy (mean over seeds, in %) per run over up to `ranges` equal ranges of n."""
  key = _by_n_key(seeds)
  if key is None:
    return ''
  means = _mean_by_n(seeds, key)
  ns = sorted({n for curve in means.values() for n in curve})
  if not ns:
    return ''
  size = -(-len(ns) // ranges)
  groups = [ns[i:i + size] for i in range(0, len(ns), size)]
  header = ['run', *(f'n = {g[0]}–{g[-1]}' if len(g) > 1 else f'n = {g[0]}' for g in groups)]
  lines = [f'Accuracy by n (`{key}`, mean over seeds, %):\n',
           '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for run, curve in means.items():
    cells = [f'{100 * statistics.mean(curve[n] for n in g if n in curve):.1f}'
             if any(n in curve for n in g) else '–' for g in groups]
    lines.append('| ' + ' | '.join([run, *cells]) + ' |')
  return '\n'.join(lines)


def plot_mean_accuracy_by_n(seeds: list[dict], path: pathlib.Path,
                            settings: ReportSettings = ReportSettings()) -> bool:
  """Accuracy at each n, mean over seeds with its bootstrap band (whole seeds resampled),
  one line per run. False without sizes n."""
  key = _by_n_key(seeds)
  if key is None:
    return False
  plt = plotting.pyplot()
  fig, ax = plt.subplots(figsize=(9, 4.5))
  by_run = _curves_by_n(seeds, key)
  if len(by_run) > 10:                 # the default cycle repeats after 10 colours
    ax.set_prop_cycle(color=plt.get_cmap('tab20').colors)
  for run, (ns, curves) in by_run.items():
    line, = ax.plot(ns, curves.mean(axis=0), marker='.', label=run)
    if len(curves) > 1:
      lo, hi = significance.bootstrap_band(curves, settings.confidence, settings.resamples,
                                           settings.bootstrap_seed)
      ax.fill_between(ns, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
  ax.set(xlabel='n', xscale='log', ylabel='accuracy (mean over seeds)', ylim=(-0.02, 1.02),
         title=f'{key}; bands: {100 * settings.confidence:g} % bootstrap intervals over seeds')
  ax.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.01, 0.5))
  plotting.save_figure(fig, path)
  return True


def saved_settings(runs: list[dict]) -> ReportSettings:
  """The `report` section of the newest run config that has one (the defaults if none)."""
  newest = max((run for run in runs if 'report' in run['config']), default=None,
               key=lambda run: run.get('mtime', 0.0))
  return report_settings.from_config(newest['config']['report'] if newest else None)


def write_report(workdir: str | pathlib.Path, settings: ReportSettings | None = None,
                 rounds_note: str = '') -> str:
  """Writes report.md, results.json and the plots into `workdir`; returns the markdown
  table, the comparisons and their sentences. `settings`: what to test (default: the
  runs' saved `report` section); `rounds_note`: how seeds were added, if they were."""
  workdir = pathlib.Path(workdir)
  runs = load_runs(workdir)
  if not runs:
    raise FileNotFoundError(f'no finished runs (*/metrics.jsonl with a final record) under {workdir}')
  settings = settings or saved_settings(runs)
  fields, rows, seeds = summarise(runs, settings)
  table = markdown_table(fields, rows, settings.confidence)
  compared = comparisons(runs, rows, seeds, settings)
  compared_table = comparisons_table(compared)
  sentences = '\n'.join(f'* {sentence(r, settings)}' for r in compared)
  failed = failed_table(seeds)
  plot_train_loss(workdir, runs, workdir / 'train_loss.png')
  plot_metrics(rows, seeds, workdir / 'metrics.png')
  by_n = plot_accuracy_by_n(fields, seeds, workdir / 'accuracy_vs_n.png')
  plot_mean_accuracy_by_n(seeds, workdir / 'accuracy_by_n.png', settings)
  by_n_table = accuracy_by_n_table(seeds)
  ci = f'{100 * settings.confidence:g} %'
  text = [f'# Report: {len(runs)} runs\n',
          'Varied fields: ' + (', '.join(f'`{f}`' for f in fields) or 'none') +
          f'. Metrics over the healthy seeds of each run: median and mean, each with its {ci} '
          f'percentile bootstrap interval over seeds ({settings.resamples:,} resamples, seed '
          f'{settings.bootstrap_seed}; none with one seed), and the best seed.' +
          (' Baseline loss: the loss to beat that the data states (`baseline/loss` of the data '
           'summary, e.g. the best loss without memory).' if any('baseline_loss' in r for r in rows)
           else '') + '\n', table, '']
  if compared:
    text += ['## Comparisons\n',
             f'Two-sided permutation tests of the difference of the means over seeds (exact '
             f'when the splits of the pooled seeds number at most {settings.resamples:,}), at '
             f"α = {settings.alpha:g}; effect size Cliff's δ = P(A > B) − P(A < B) over pairs "
             f'of seeds. "too few seeds": no result of these seed counts could reach α. The '
             f'verdicts read each p alone; p (Holm) is adjusted for the number of pairs tested '
             f'on the metric (Holm-Bonferroni), the one to read when asking whether any of '
             f'them differ.\n',
             compared_table, '', sentences, '']
  if rounds_note:
    text += ['## Seeds added until significant\n', rounds_note, '']
  if by_n_table:
    text += [by_n_table, '']
  if failed:
    text += ['## Failed seeds\n', failed, '']
  text += ['![metrics](metrics.png)', '![training loss](train_loss.png)']
  if by_n:
    text += ['![accuracy vs n](accuracy_vs_n.png)', '![accuracy by n](accuracy_by_n.png)']
  (workdir / 'report.md').write_text('\n'.join(text) + '\n')
  results = {'varied': fields, 'summary': rows, 'runs': seeds, 'comparisons': compared,
             'settings': dataclasses.asdict(settings)}
  files.write_atomically(workdir / 'results.json',
                         json.dumps(writers.to_json_value(results), indent=1) + '\n')
  return (table + ('\n\n' + by_n_table if by_n_table else '')
          + ('\n\n' + compared_table + '\n\n' + sentences if compared else '')
          + ('\n\n' + rounds_note if rounds_note else '')
          + ('\n\nFailed seeds:\n' + failed if failed else ''))
