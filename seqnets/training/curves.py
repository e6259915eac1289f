"""A run's learning curves as a PNG: training loss and every evaluator's loss against step.

Written at the end of every run as `workdir/curves.png` (matplotlib, imported
only when called), from `metrics.jsonl`; one line per seed.
"""

from __future__ import annotations

import pathlib

from seqnets import plotting
from seqnets.training import writers


def curves(records: list[dict]) -> dict[str, dict[int, list[tuple[int, float]]]]:
  """`{metric: {seed: [(step, value)]}}` for 'train/loss' and every 'eval/<name>/loss',
  from metrics records (the final records excluded)."""
  found: dict[str, dict[int, list[tuple[int, float]]]] = {}
  for record in records:
    if record.get('final'):
      continue
    for key, value in record.items():
      if key == 'train/loss' or (key.startswith('eval/') and key.endswith('/loss')):
        if isinstance(value, (int, float)):
          found.setdefault(key, {}).setdefault(record.get('seed', 0), []).append(
              (record['step'], float(value)))
  return found


def save_png(workdir: str | pathlib.Path, path: str | pathlib.Path | None = None) -> pathlib.Path:
  """Plots the curves of `workdir` into `path` (default `workdir/curves.png`)."""
  plt = plotting.pyplot()
  workdir = pathlib.Path(workdir)
  path = pathlib.Path(path) if path else workdir / 'curves.png'
  fig, ax = plt.subplots(figsize=(8, 4.5))
  for metric, by_seed in sorted(curves(writers.read_metrics(workdir)).items()):
    for seed, points in sorted(by_seed.items()):
      steps, values = zip(*sorted(points))
      style = dict(marker='o', markersize=3) if metric.startswith('eval/') else dict(lw=1)
      label = metric if len(by_seed) == 1 else f'{metric} (seed {seed})'
      ax.plot(steps, values, label=label, **style)
  ax.set(xlabel='step', ylabel='loss', title=workdir.name)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  plotting.save_figure(fig, path)
  return path
