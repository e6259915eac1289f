"""The report: `rnn_bench.md` (targets, tables per shape and allocator, round
agreement, allocator effect) and `rnn_bench.json`, also re-rendered from an
earlier JSON (`--from_json`).
"""

from __future__ import annotations

import json
import os
import pathlib

from benchmarks.contenders import CONTENDERS
from benchmarks.runner import DISTURBED_PROBE_FRACTION
from benchmarks.summary import COMPILE_BUDGET_S, evaluate_targets, summarise


def write(report: dict, out: pathlib.Path) -> None:
  """Writes `<out>/rnn_bench.json` and `<out>/rnn_bench.md`."""
  out.mkdir(parents=True, exist_ok=True)
  (out / 'rnn_bench.json').write_text(json.dumps(report, indent=1) + '\n')
  (out / 'rnn_bench.md').write_text(render_markdown(report))


def from_json(path: pathlib.Path) -> dict:
  """An earlier `rnn_bench.json`, its summary and targets recomputed from its runs."""
  report = json.loads(path.read_text())
  shapes = {k: tuple(v) for k, v in report['meta']['shapes'].items()}
  for run in report['runs']:
    run.setdefault('discarded', [])
  report['meta'].setdefault('retries', 0)
  report['meta'].setdefault('disturbed_probe_fraction', DISTURBED_PROBE_FRACTION)
  report['summary'] = summarise(report['runs'], shapes)
  report['targets'] = evaluate_targets(report['summary'])
  return report


def _fmt(value: float | None, digits: int = 2) -> str:
  return 'n/a' if value is None else f'{value:.{digits}f}'


def render_markdown(report: dict) -> str:
  """`rnn_bench.md` of a report."""
  meta, summary, checks = report['meta'], report['summary'], report['targets']
  lines = [
      '# RNN benchmark: seqnets vs flax.linen.RNN vs PyTorch', '',
      f"Generated {meta['date']} by `{meta['command']}` in {meta['wall_s']:.0f} s.  ",
      f"Machine: {meta['machine']}; {meta['versions']}.  ",
      f"Method: each (contender, shape, allocator, round) in a fresh process; AOT compile; "
      f"1 first exec + {meta['warmup']} warm-up, then {meta['reps']} timed reps per round, "
      f"{meta['rounds']} interleaved rounds pooled (median, p10–p90 over all pooled reps); "
      f"a worker whose 1024³-matmul speed probe fell below {meta['disturbed_probe_fraction']:.0%} "
      f"of the run's best was repeated (up to {meta['retries']}×; "
      f"{sum(len(r['discarded']) for r in report['runs'])} repeats in this run). "
      'Train step = forward + backward + SGD update of loss = mean(outputs²); '
      'infer = forward only.  ',
      'Ratios are reference median / this median, so **> 1 means faster than the reference**. '
      '`vs flax` = the fastest flax cell of the same kind (LSTM: min of nn.LSTMCell and '
      'nn.OptimizedLSTMCell; GRU: nn.GRUCell; Elman: nn.SimpleCell); `vs torch` = torch.nn.LSTM / '
      'GRU / RNN. Noise on this 2-vCPU VM is ±25 % run to run (benchmarks/README.md).', '',
      _load_line(meta), '',
      'Allocators: ' + '; '.join(
          f'`{name}` = ' + (', '.join(f'{k}={v}' for k, v in env.items() if v) or 'glibc defaults')
          for name, env in meta['allocators'].items()), '',
  ]
  lines += ['## Targets', '']
  lines += _render_targets(checks)
  for shape, by_allocator in summary.items():
    batch, time_steps, features, hidden = meta['shapes'][shape]
    for allocator, entries in by_allocator.items():
      lines += ['', f'## Shape {shape}: B={batch}, T={time_steps}, E={features}, H={hidden} '
                f'— allocator `{allocator}`', '',
                '| contender | train ms (p10–p90) | train vs flax | train vs torch | '
                'infer ms (p10–p90) | infer vs flax | infer vs torch | train tok/s | '
                'compile train s (trace+lower / XLA) | compile infer s | peak RSS MB |',
                '|---|---|---|---|---|---|---|---|---|---|---|']
      for name in (n for n in CONTENDERS if n in entries):
        entry, label = entries[name], CONTENDERS[name].label
        train, infer = entry['train'], entry['infer']
        compile_train = (f"{train['total_compile_s']:.2f} ({train['trace_lower_s']:.2f} / "
                         f"{train['compile_s']:.2f})" if 'compile_s' in train else 'n/a')
        compile_infer = _fmt(infer.get('total_compile_s'))
        bold = '**' if CONTENDERS[name].framework == 'seqnets' else ''
        lines.append(
            f"| {bold}{label}{bold} | {train['median_ms']:.1f} ({train['p10_ms']:.1f}–"
            f"{train['p90_ms']:.1f}) | {_fmt(train['vs_flax'])} | {_fmt(train['vs_torch'])} | "
            f"{infer['median_ms']:.1f} ({infer['p10_ms']:.1f}–{infer['p90_ms']:.1f}) | "
            f"{_fmt(infer['vs_flax'])} | {_fmt(infer['vs_torch'])} | {train['tokens_per_s']:.0f} | "
            f"{compile_train} | {compile_infer} | {entry['peak_rss_mb']:.0f} |")
  lines += ['', '## Round agreement', '',
            'Rounds whose medians differ by more than 25 % (a busy machine during one of them; '
            'the slower speed probe of each round in GFLOP/s says which). The pooled median '
            'of such a contender is between the two rounds and its ratios are unreliable.', '']
  lines += _render_round_agreement(summary)
  lines += ['', '## Allocator effect (default median / tuned median; > 1: tuned is faster)', '']
  lines += _render_allocator_effect(summary)
  failures = [r for r in report['runs'] if 'error' in r['result']]
  if failures:
    lines += ['', '## Failed workers', '']
    lines += [f"* {r['contender']} shape {r['shape']} {r['allocator']} round {r['round']}: "
              f"`{r['result']['error'][-300:]}`" for r in failures]
  return '\n'.join(lines) + '\n'


def _load_line(meta: dict) -> str:
  load = meta.get('load_avg_1min')
  if not load:
    return ''
  return (f'Machine load during the workers (1-min load average, this VM has {os.cpu_count()} '
          f'CPUs): min {load[0]:.1f}, median {load[1]:.1f}, max {load[2]:.1f}. '
          'Above ~1, other processes shared the cores and every number is slower and noisier. '
          f"OMP_WAIT_POLICY={meta.get('omp_wait_policy') or 'unset'}.")


def _render_targets(checks: list[dict]) -> list[str]:
  if not checks:
    return ['No seqnets contender was run.']
  lines = []
  descriptions = {
      'vs_fastest_flax': 'every seqnets cell ≥ 1.0× the fastest flax cell of its kind, '
                         'every shape, train and inference (GRU: reset_after=True); '
                         'sn.LSTMCell training ≥ 1.1×',
      'vs_torch': 'sn.LSTMCell training ≥ 1.05× torch.nn.LSTM, GRUCell(reset_after=True) '
                  'training ≥ 1.5× torch.nn.GRU, both ≥ 1.0× in inference, every shape',
      'train_compile_s': f'compile (trace+lower+XLA) of one train step < {COMPILE_BUDGET_S:.0f} s',
  }
  allocators = sorted({c['allocator'] for c in checks})
  for target, text in descriptions.items():
    mine = [c for c in checks if c['target'] == target]
    if not mine:
      lines.append(f'* {text}: not measured in this run.')
      continue
    verdicts = []
    for allocator in allocators:
      these = [c for c in mine if c['allocator'] == allocator]
      if not these:
        continue
      missed = [c for c in these if not c['met']]
      if target == 'train_compile_s':
        worst = max(these, key=lambda c: c['value'])
        detail = f"max {worst['value']:.2f} s ({worst['contender']}, shape {worst['shape']})"
      else:
        worst = min(these, key=lambda c: c['value'])
        detail = (f"min {worst['value']:.2f}× ({worst['contender']} {worst['mode']}, "
                  f"shape {worst['shape']})")
      status = 'MET' if not missed else f'NOT MET ({len(missed)}/{len(these)} checks missed)'
      verdicts.append(f'`{allocator}`: **{status}**, {detail}')
    lines.append(f'* {text}: ' + '; '.join(verdicts) + '.')
  for target, label in (('vs_fastest_flax', 'flax'), ('vs_torch', 'PyTorch')):
    misses = [c for c in checks if not c['met'] and c['target'] == target]
    if misses:
      lines += ['', f'Missed {label} checks: ' + ', '.join(
          f"{c['contender']} {c['mode']} {c['shape']}/{c['allocator']} {c['value']:.2f}×"
          for c in misses) + '.']
  return lines


def _render_round_agreement(summary: dict) -> list[str]:
  lines = ['| shape | allocator | contender | mode | round medians ms | round probes GFLOP/s |',
           '|---|---|---|---|---|---|']
  for shape, by_allocator in summary.items():
    for allocator, entries in by_allocator.items():
      for name in (n for n in CONTENDERS if n in entries):
        entry = entries[name]
        for mode in ('train', 'infer'):
          medians = entry[mode]['round_medians_ms']
          if len(medians) > 1 and max(medians) > 1.25 * min(medians):
            probes = ', '.join(f'{p:.0f}' for p in entry.get('round_min_probe_gflops', []))
            lines.append(f"| {shape} | {allocator} | {CONTENDERS[name].label} | {mode} | "
                         f"{', '.join(f'{m:.1f}' for m in medians)} | {probes} |")
  return lines if len(lines) > 2 else ['All rounds agree within 25 %.']


def _render_allocator_effect(summary: dict) -> list[str]:
  lines = ['| shape | contender | train | infer |', '|---|---|---|---|']
  for shape, by_allocator in summary.items():
    if not {'default', 'tuned'} <= set(by_allocator):
      continue
    for name in CONTENDERS:
      if name in by_allocator['default'] and name in by_allocator['tuned']:
        d, t = by_allocator['default'][name], by_allocator['tuned'][name]
        lines.append(f"| {shape} | {CONTENDERS[name].label} | "
                     f"{d['train']['median_ms'] / t['train']['median_ms']:.2f} | "
                     f"{d['infer']['median_ms'] / t['infer']['median_ms']:.2f} |")
  return lines if len(lines) > 2 else ['(needs both allocators)']
