"""Ablation: which recurrent cells learn to count? RNN vs LSTM vs GRU on aⁿbⁿ and aⁿbⁿcⁿ.

  python -m experiments.ablate --config=configs/ablate_formal.py --workdir=runs/ablate
  python -m experiments.ablate --config=configs/ablate_formal.py:demo --workdir=runs/demo   # = make demo

Cells {elman (tanh), elman (ReLU), lstm, lstm + peepholes, gru} × languages
{aⁿbⁿ, aⁿbⁿcⁿ}, `num_seeds` seeds each trained side by side (vmap). Every cell
gets the same budget: hidden size, optimizer, learning rate, steps. The report
(`report.md`, `results.json`, `accuracy_vs_n.png`) gives, per cell and
language, how many seeds learned the training range and the largest n up to
which every string is right (median and best over seeds).
"""

import ml_collections

from configs import anbn

CELLS = {
    'elman_tanh': {'model.cell': 'elman', 'model.activation': 'tanh'},
    'elman_relu': {'model.cell': 'elman', 'model.activation': 'relu'},
    'lstm': {'model.cell': 'lstm', 'model.use_peepholes': False},
    'lstm_peephole': {'model.cell': 'lstm', 'model.use_peepholes': True},
    'gru': {'model.cell': 'gru'},
}
LANGUAGES = ('anbn', 'anbncn')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = anbn.get_config()
  config.num_seeds = 5
  config.data.test_n = (1, 1000)
  if arg == 'demo':
    config.num_seeds = 3
    config.data.test_n = (1, 200)
  elif arg == 'smoke':
    config.num_seeds = 2
    config.data.test_n = (1, 15)
    config.model.hidden_size = 3
    config.train.update(num_train_steps=6, log_every_steps=3, eval_every_steps=6,
                        checkpoint_every_steps=6)
  elif arg:
    raise ValueError(f'configs/ablate_formal.py: unknown mode {arg!r}; valid: demo, smoke')
  return config


def sweep(arg: str | None = None) -> list[dict]:
  """One override dict per run; `name` names its sub-directory of the workdir."""
  if arg == 'smoke':
    return [{'name': 'anbn-elman_relu', 'data.language': 'anbn', **CELLS['elman_relu']},
            {'name': 'anbncn-lstm_peephole', 'data.language': 'anbncn', **CELLS['lstm_peephole']}]
  return [{'name': f'{language}-{cell}', 'data.language': language, **overrides}
          for language in LANGUAGES for cell, overrides in CELLS.items()]
