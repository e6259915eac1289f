"""Builds an ablation report from run directories: `report.md`, `results.json`, `accuracy_vs_n.png`.

Reads only each run's `config.json` and the final records of its
`metrics.jsonl`, so it works on any finished runs, here or copied from elsewhere.

  python -m experiments.report --workdir=DIR
"""

from __future__ import annotations

import json
import pathlib
import statistics

from absl import app
from absl import flags

from seqnets.training import writers


def cell_label(model: dict) -> str:
  """'elman (tanh)', 'lstm + peepholes', 'gru (reset after)', ..."""
  cell = model['cell']
  if cell == 'elman':
    return f"elman ({model.get('activation', 'tanh')})"
  if cell == 'lstm':
    return 'lstm + peepholes' if model.get('use_peepholes') else 'lstm'
  if cell == 'gru':
    return 'gru (reset after)' if model.get('reset_after') else 'gru'
  return cell


def collect_runs(workdir: str | pathlib.Path) -> list[dict]:
  """One dict per (run directory, seed) with a final evaluation."""
  runs = []
  for config_path in sorted(pathlib.Path(workdir).glob('*/config.json')):
    run_dir = config_path.parent
    config = json.loads(config_path.read_text())
    if not (run_dir / 'metrics.jsonl').exists():
      continue
    for record in writers.read_metrics(run_dir):
      if not record.get('final'):
        continue
      runs.append({
          'run': run_dir.name,
          'cell': cell_label(config['model']),
          'language': config['data']['language'],
          'seed': record['seed'],
          'learned_training_range': record['learned_training_range'],
          'max_correct_n': record['eval/test_range/max_correct_n'],
          'test_range': config['data']['test_n'],
          'accuracy_by_n': {int(n): a for n, a in record['eval/test_range/accuracy_by_n'].items()},
      })
  return runs


def summarise(runs: list[dict]) -> list[dict]:
  """Per run directory (one cell × language × variant): seeds that learned,
  median / best max_correct_n."""
  groups: dict[str, list[dict]] = {}
  for run in runs:
    groups.setdefault(run['run'], []).append(run)
  rows = []
  for name, members in groups.items():
    reached = [m['max_correct_n'] for m in members]
    rows.append({
        'run': name, 'cell': members[0]['cell'], 'language': members[0]['language'],
        'seeds': len(members),
        'learned': sum(m['learned_training_range'] for m in members),
        'median_max_correct_n': statistics.median(reached), 'best_max_correct_n': max(reached),
        'test_up_to': max(m['test_range'][1] for m in members),
    })
  return sorted(rows, key=lambda r: (r['language'], r['cell'], r['run']))


def markdown_table(rows: list[dict]) -> str:
  lines = ['| language | cell | run | seeds that learned the training range | largest all-correct n: median | best | tested up to n |',
           '|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(f"| {r['language']} | {r['cell']} | {r['run']} | {r['learned']}/{r['seeds']} | "
                 f"{r['median_max_correct_n']:g} | {r['best_max_correct_n']} | {r['test_up_to']} |")
  return '\n'.join(lines)


def plot(runs: list[dict], path: pathlib.Path) -> None:
  """Fraction of seeds that get each n right, one panel per language, one line per run."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  languages = sorted({r['language'] for r in runs})
  fig, axes = plt.subplots(len(languages), 1, figsize=(9, 3.6 * len(languages)), squeeze=False)
  for ax, language in zip(axes[:, 0], languages):
    for name in sorted({r['run'] for r in runs if r['language'] == language}):
      members = [r for r in runs if r['run'] == name]
      ns = sorted(members[0]['accuracy_by_n'])
      fraction = [sum(m['accuracy_by_n'][n] for m in members) / len(members) for n in ns]
      variant = name.removeprefix(f'{language}-')
      ax.plot(ns, fraction, label=f"{members[0]['cell']}: {variant}", drawstyle='steps-post')
    ax.set(xscale='log', xlabel='n', ylabel='fraction of seeds correct', title=language, ylim=(-0.02, 1.02))
    ax.legend(fontsize=7, loc='center left', bbox_to_anchor=(1.01, 0.5))
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write_report(workdir: str | pathlib.Path) -> str:
  """Writes the three report files into `workdir`; returns the markdown table."""
  workdir = pathlib.Path(workdir)
  runs = collect_runs(workdir)
  if not runs:
    raise FileNotFoundError(f'no finished runs (*/metrics.jsonl with a final record) under {workdir}')
  rows = summarise(runs)
  table = markdown_table(rows)
  (workdir / 'report.md').write_text(
      '# Generalisation on counter languages\n\n'
      'Largest all-correct n: the largest n such that the strings of every n\' <= n are '
      'predicted exactly (every output, thresholded at 0.5, right at every step).\n\n'
      f'{table}\n\n![accuracy vs n](accuracy_vs_n.png)\n')
  (workdir / 'results.json').write_text(json.dumps({'summary': rows, 'runs': runs}, indent=1) + '\n')
  plot(runs, workdir / 'accuracy_vs_n.png')
  return table


def main(argv):
  del argv
  print(write_report(flags.FLAGS.workdir))


if __name__ == '__main__':
  # Defined here, not at import, so experiments.ablate can import this module.
  flags.DEFINE_string('workdir', None, 'Ablation directory holding one sub-directory per run.')
  flags.mark_flag_as_required('workdir')
  app.run(main)
