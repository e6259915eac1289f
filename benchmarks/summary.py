"""Pooling the workers' rounds into medians and ratios, and checking the targets."""

from __future__ import annotations

from benchmarks.contenders import CONTENDERS, FLAX_REFERENCES, TORCH_REFERENCES

COMPILE_BUDGET_S = 2.0
# (contender, mode) -> least ratio against the fastest flax cell of its kind / against PyTorch,
# on every shape and allocator; seqnets cells not named here need 1.0 against flax.
FLAX_TARGETS = {('sn_lstm', 'train'): 1.1}
TORCH_TARGETS = {('sn_lstm', 'train'): 1.05, ('sn_lstm', 'infer'): 1.0,
                 ('sn_gru_ra', 'train'): 1.5, ('sn_gru_ra', 'infer'): 1.0}


def percentile(values: list[float], q: float) -> float:
  import numpy as np
  return float(np.percentile(values, q))


def summarise(runs: list[dict], shapes: dict[str, tuple[int, ...]]) -> dict:
  """Pools rounds per (shape, allocator, contender) and adds the ratios."""
  pooled: dict = {}
  for run in runs:
    if 'error' in run['result']:
      continue
    key = (run['shape'], run['allocator'], run['contender'])
    pooled.setdefault(key, []).append(run['result'])
  summary: dict = {}
  for (shape, allocator, name), results in pooled.items():
    batch, time_steps = shapes[shape][:2]
    entry = {'rounds': len(results), 'peak_rss_mb': max(r['peak_rss_mb'] for r in results)}
    for mode in ('train', 'infer'):
      times = [t for r in results for t in r[mode]['times_ms']]
      median = percentile(times, 50)
      stats = {'median_ms': median, 'p10_ms': percentile(times, 10),
               'p90_ms': percentile(times, 90), 'num_reps': len(times),
               'round_medians_ms': [percentile(r[mode]['times_ms'], 50) for r in results],
               'tokens_per_s': batch * time_steps / (median / 1e3),
               'first_exec_s': percentile([r[mode]['first_exec_s'] for r in results], 50)}
      if 'compile_s' in results[0][mode]:
        stats['trace_lower_s'] = percentile([r[mode]['trace_lower_s'] for r in results], 50)
        stats['compile_s'] = percentile([r[mode]['compile_s'] for r in results], 50)
        stats['total_compile_s'] = stats['trace_lower_s'] + stats['compile_s']
      entry[mode] = stats
    entry['speed_probe_gflops'] = [r.get('speed_probe_gflops') for r in results]
    entry['round_min_probe_gflops'] = [min(r['speed_probe_gflops']) for r in results
                                       if r.get('speed_probe_gflops')]
    entry['retried'] = sum(r.get('attempt', 0) > 0 for r in results)
    summary.setdefault(shape, {}).setdefault(allocator, {})[name] = entry

  # Ratios > 1 mean "this contender is faster than the reference".
  for by_allocator in summary.values():
    for entries in by_allocator.values():
      for name, entry in entries.items():
        kind = CONTENDERS[name].kind
        for mode in ('train', 'infer'):
          flax_times = [entries[r][mode]['median_ms'] for r in FLAX_REFERENCES[kind]
                        if r in entries]
          torch_ref = entries.get(TORCH_REFERENCES[kind])
          entry[mode]['vs_flax'] = (min(flax_times) / entry[mode]['median_ms']
                                    if flax_times else None)
          entry[mode]['vs_torch'] = (torch_ref[mode]['median_ms'] / entry[mode]['median_ms']
                                     if torch_ref else None)
  return summary


def evaluate_targets(summary: dict) -> list[dict]:
  """The targets, one record per (target, shape, allocator, ...) check."""
  checks = []
  for shape, by_allocator in summary.items():
    for allocator, entries in by_allocator.items():
      for name, entry in entries.items():
        contender = CONTENDERS[name]
        if contender.framework != 'seqnets':
          continue
        for mode in ('train', 'infer'):
          ratio = entry[mode]['vs_flax']
          if contender.in_targets and ratio is not None:
            least = FLAX_TARGETS.get((name, mode), 1.0)
            checks.append({'target': 'vs_fastest_flax', 'contender': name, 'shape': shape,
                           'allocator': allocator, 'mode': mode, 'value': ratio,
                           'threshold': least, 'met': ratio >= least})
          ratio = entry[mode]['vs_torch']
          if (name, mode) in TORCH_TARGETS and ratio is not None:
            least = TORCH_TARGETS[(name, mode)]
            checks.append({'target': 'vs_torch', 'contender': name, 'shape': shape,
                           'allocator': allocator, 'mode': mode, 'value': ratio,
                           'threshold': least, 'met': ratio >= least})
        compile_s = entry['train']['total_compile_s']
        checks.append({'target': 'train_compile_s', 'contender': name, 'shape': shape,
                       'allocator': allocator, 'mode': 'train', 'value': compile_s,
                       'threshold': COMPILE_BUDGET_S, 'met': compile_s < COMPILE_BUDGET_S})
  return checks
