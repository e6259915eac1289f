"""Builds an ablation report from run directories: `report.md`, `results.json` and plots.

Reads only each run's `config.json`, the final records of its `metrics.jsonl`
and the data summary of its `results.json`, so it works on any finished runs,
here or copied from elsewhere, for any task. The table has one row per run
directory: the config fields that differ between the runs (the sweep's varied
fields), the number of seeds, failed seeds, the task's reported metrics over
seeds and, when the data states one (`baseline/loss` in the data summary, e.g.
the loss of a model without memory), the baseline loss. Plots:
`train_loss.png` (training loss per run, a panel per task and baseline with the
baseline as a dashed line), `metrics.png` (each reported metric,
one point per seed) and, for evaluators that score each size n,
`accuracy_vs_n.png` (fraction of seeds right at each n), `accuracy_by_n.png`
(accuracy at each n, mean over seeds) and a table of the accuracy by range of n.

  table = write_report(workdir)     # workdir: one sub-directory per run
"""

from __future__ import annotations

import fnmatch
import json
import pathlib
import statistics
from typing import Any

from seqnets import files
from seqnets import plotting
from seqnets.tasks import factory as task_factory
from seqnets.training import resume
from seqnets.training import writers

BASELINE_KEY = 'baseline/loss'      # in a run's data summary: the loss to beat
# Fields that name a run rather than define it.
IGNORED_FIELDS = ('seed', 'init_from', 'launch.*', 'train.log_every_steps', 'train.checkpoint_every_steps',
                  'train.max_checkpoints_to_keep', 'evals.*.every_steps', 'evals.*.batch_size')


def _final_records(run_dir: pathlib.Path) -> list[dict]:
  """The last final record of each seed (a rerun or extended run counts each seed once)."""
  last = {}
  for record in writers.read_metrics(run_dir):
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
                   'data': _data_summary(run_dir)})
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


def _aggregate(metric, values: list) -> dict[str, Any]:
  if metric.aggregate == 'count_true':
    return {'count': sum(bool(v) for v in values), 'of': len(values)}
  numbers = [v for v in values if isinstance(v, (int, float))]
  if not numbers:
    return {'median': None, 'best': None}
  return {'median': statistics.median(numbers),
          'best': max(numbers) if metric.higher_is_better else min(numbers)}


def summarise(runs: list[dict]) -> tuple[list[str], list[dict], list[dict]]:
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
                                      **_aggregate(metric, [f.get(metric.key) for f in healthy])}
    rows.append(row)
    for final in run['finals']:
      seeds.append({'run': run['run'], **{f: flat.get(f) for f in fields},
                    **{k: v for k, v in final.items() if k not in ('final', 'step')}, 'step': final['step']})
  return fields, rows, seeds


def _cell(summary: dict) -> str:
  if summary['aggregate'] == 'count_true':
    return f"{summary['count']}/{summary['of']}"
  fmt = lambda v: '–' if v is None else f'{v:.4g}'
  return f"{fmt(summary['median'])} / {fmt(summary['best'])}"


def markdown_table(fields: list[str], rows: list[dict]) -> str:
  labels = list(dict.fromkeys(label for row in rows for label in row['metrics']))
  metric_headers = [label + ('' if rows[0]['metrics'].get(label, {}).get('aggregate') == 'count_true'
                             else ': median / best') for label in labels]
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
  """One panel per reported (numeric) metric: a point per seed, a bar at the median."""
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
      ax.scatter([x] * len(values), values, s=12)
      if values:
        ax.hlines(statistics.median(values), x - 0.3, x + 0.3, color='k')
    ax.set_xticks(range(len(rows)), [r['run'] for r in rows], rotation=45, ha='right', fontsize=7)
    ax.set_ylabel(label)
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


def _mean_by_n(seeds: list[dict], key: str) -> dict[str, dict[int, float]]:
  """run -> n -> accuracy at n, mean over the run's healthy seeds."""
  by_run: dict[str, list[dict]] = {}
  for s in seeds:
    if key in s and not s.get('failed'):
      by_run.setdefault(s['run'], []).append(s[key])
  return {run: {int(n): statistics.mean(c[n] for c in curves) for n in curves[0]}
          for run, curves in by_run.items()}


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


def plot_mean_accuracy_by_n(seeds: list[dict], path: pathlib.Path) -> bool:
  """Accuracy at each n, mean over seeds, one line per run. False without sizes n."""
  key = _by_n_key(seeds)
  if key is None:
    return False
  plt = plotting.pyplot()
  fig, ax = plt.subplots(figsize=(8, 4))
  for run, curve in _mean_by_n(seeds, key).items():
    ns = sorted(curve)
    ax.plot(ns, [curve[n] for n in ns], marker='.', label=run)
  ax.set(xlabel='n', ylabel='accuracy (mean over seeds)', ylim=(-0.02, 1.02), title=key)
  ax.legend(fontsize=8)
  plotting.save_figure(fig, path)
  return True


def write_report(workdir: str | pathlib.Path) -> str:
  """Writes report.md, results.json and the plots into `workdir`; returns the markdown table."""
  workdir = pathlib.Path(workdir)
  runs = load_runs(workdir)
  if not runs:
    raise FileNotFoundError(f'no finished runs (*/metrics.jsonl with a final record) under {workdir}')
  fields, rows, seeds = summarise(runs)
  table = markdown_table(fields, rows)
  failed = failed_table(seeds)
  plot_train_loss(workdir, runs, workdir / 'train_loss.png')
  plot_metrics(rows, seeds, workdir / 'metrics.png')
  by_n = plot_accuracy_by_n(fields, seeds, workdir / 'accuracy_vs_n.png')
  plot_mean_accuracy_by_n(seeds, workdir / 'accuracy_by_n.png')
  by_n_table = accuracy_by_n_table(seeds)
  text = [f'# Report: {len(runs)} runs\n',
          'Varied fields: ' + (', '.join(f'`{f}`' for f in fields) or 'none') +
          '. Metrics over the healthy seeds of each run: median / best.' +
          (' Baseline loss: the loss to beat that the data states (`baseline/loss` of the data '
           'summary, e.g. the best loss without memory).' if any('baseline_loss' in r for r in rows)
           else '') + '\n', table, '']
  if by_n_table:
    text += [by_n_table, '']
  if failed:
    text += ['## Failed seeds\n', failed, '']
  text += ['![metrics](metrics.png)', '![training loss](train_loss.png)']
  if by_n:
    text += ['![accuracy vs n](accuracy_vs_n.png)', '![accuracy by n](accuracy_by_n.png)']
  (workdir / 'report.md').write_text('\n'.join(text) + '\n')
  results = {'varied': fields, 'summary': rows, 'runs': seeds}
  files.write_atomically(workdir / 'results.json',
                         json.dumps(writers.to_json_value(results), indent=1) + '\n')
  return (table + ('\n\n' + by_n_table if by_n_table else '')
          + ('\n\nFailed seeds:\n' + failed if failed else ''))
