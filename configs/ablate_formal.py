"""Ablation: which recurrent cells learn to count? RNN vs LSTM vs GRU on aⁿbⁿ and aⁿbⁿcⁿ.

  python -m experiments.ablate --config=configs/ablate_formal.py --workdir=runs/ablate
  python -m experiments.ablate --config=configs/ablate_formal.py:demo --workdir=runs/demo   # = make demo

Cells {elman (tanh), elman (ReLU), lstm, lstm + peepholes, gru} × languages
{aⁿbⁿ, aⁿbⁿcⁿ} × two hidden sizes: the small size that suits LSTMs here (2 for
aⁿbⁿ, 4 for aⁿbⁿcⁿ, found by configs/tune_formal.py) and 8 for every cell, so
no cell is judged only at a size tuned for another. Every run has the same
budget: Adam 1e-2, clipping at global norm 1, 10,000 full-batch steps on
n = 1..10; the LSTMs start with forget-gate bias 3. `num_seeds` seeds per run
train side by side (vmap). Writes report.md, results.json, accuracy_vs_n.png.

The report gives every cell's median and mean n with bootstrap intervals over seeds and
tests the pairs of `COMPARED` (on each language and size: LSTM + peepholes vs LSTM,
LSTM vs GRU, GRU vs Elman): a two-sided permutation test, Cliff's δ and a sentence each.
With `--until_significant` the ablation adds 5 seeds at a time to the cells of each
undecided pair, up to 30 per cell:

  python -m experiments.ablate --config=configs/ablate_formal.py --workdir=runs/ablate \
      --until_significant

Measured on a loaded 2-core CPU: the full ablation (5 seeds, n ≤ 1000) took
10–14 minutes; `:demo` (3 seeds, n ≤ 200) 5 (numbers in docs/formal_languages.md).
"""

import ml_collections

from configs import anbn

CELLS = {                           # name -> model.cell, less its hidden_size
    'elman_tanh': dict(name='elman', activation='tanh'),
    'elman_relu': dict(name='elman', activation='relu'),
    'lstm': dict(name='lstm', use_peepholes=False, forget_bias=3.0),
    'lstm_peephole': dict(name='lstm', use_peepholes=True, forget_bias=3.0),
    'gru': dict(name='gru'),
}
SMALL_HIDDEN_SIZE = {'anbn': 2, 'anbncn': 4}
WIDE_HIDDEN_SIZE = 8
# The questions the report tests, on every language and size: (A, B) cell pairs.
COMPARED = (('lstm_peephole', 'lstm'), ('lstm', 'gru'), ('gru', 'elman_tanh'))


def variant_name(language: str, cell: str, size: int) -> str:
  return f'{language}-{cell}-h{size}'


def compared_pairs() -> tuple[tuple[str, str], ...]:
  return tuple((variant_name(language, a, size), variant_name(language, b, size))
               for language, small in SMALL_HIDDEN_SIZE.items()
               for size in (small, WIDE_HIDDEN_SIZE) for a, b in COMPARED)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = anbn.get_config()
  config.num_seeds = 5
  config.data.test_n = (1, 1000)
  config.model.cell = dict(CELLS['lstm'], hidden_size=WIDE_HIDDEN_SIZE)
  config.train.update(num_train_steps=10_000, log_every_steps=500, checkpoint_every_steps=2500)
  config.evals.train_range.every_steps = 2500
  config.report = dict(
      compare=compared_pairs(),
      metric='eval/test_range/max_correct_n',  # the largest n every string is right up to
      confidence=0.95, resamples=10_000, bootstrap_seed=0, alpha=0.05,
      until_significant=False,         # --until_significant: seeds in rounds, see above
      seeds_per_round=5, max_seeds=30,
  )
  config.launch = dict(             # --executor=local | slurm: one submitit job per variant
      timeout_min=60, cpus_per_task=2, mem_gb=4,
      slurm_partition=None,            # e.g. 'cpu'; None: the cluster's default
      max_parallel_jobs=1,             # at a time (local: this machine's cores are few)
  )
  if arg == 'demo':
    config.num_seeds = 3
    config.data.test_n = (1, 200)
  elif arg == 'smoke':
    config.num_seeds = 2
    config.data.test_n = (1, 15)
    config.train.update(num_train_steps=6, log_every_steps=3, checkpoint_every_steps=6)
    config.evals.train_range.every_steps = 6
    config.report.compare = (('anbn-elman_relu-h3', 'anbncn-lstm_peephole-h3'),)
    config.report.update(seeds_per_round=1, max_seeds=3)
  elif arg:
    raise ValueError(f'configs/ablate_formal.py: unknown mode {arg!r}; valid: demo, smoke')
  return config


def sweep(arg: str | None = None) -> list[dict]:
  """One override dict per run; `name` names its sub-directory of the workdir."""
  if arg == 'smoke':
    return [{'name': 'anbn-elman_relu-h3', 'data.language': 'anbn',
             'model.cell': dict(CELLS['elman_relu'], hidden_size=3)},
            {'name': 'anbncn-lstm_peephole-h3', 'data.language': 'anbncn',
             'model.cell': dict(CELLS['lstm_peephole'], hidden_size=3)}]
  return [{'name': variant_name(language, cell, size), 'data.language': language,
           'model.cell': dict(entry, hidden_size=size)}
          for language, small in SMALL_HIDDEN_SIZE.items()
          for size in (small, WIDE_HIDDEN_SIZE)
          for cell, entry in CELLS.items()]
