"""Tuning study behind the settings of configs/ablate_formal.py (LSTM + peepholes, aⁿbⁿ).

  python -m experiments.ablate --config=configs/tune_formal.py --workdir=runs/tune

Each run changes one thing (or a named combination) relative to the plain
set-up, 5 seeds each, test n = 1..1000; see report.md in the workdir.
"""

import ml_collections

from configs import ablate_formal

PLAIN = {'data.language': 'anbn', 'model.cell': 'lstm', 'model.use_peepholes': True}
VARIANTS = {
    'plain': {},
    'h4': {'model.hidden_size': 4},
    'h2': {'model.hidden_size': 2},
    'fb3': {'model.forget_bias': 3.0},
    'cos10k': {'optim.schedule': 'warmup_cosine', 'train.num_train_steps': 10000},
    'lr3e-3_cos10k': {'optim.learning_rate': 3e-3, 'optim.schedule': 'warmup_cosine',
                      'train.num_train_steps': 10000},
    'h4_fb3_cos10k': {'model.hidden_size': 4, 'model.forget_bias': 3.0,
                      'optim.schedule': 'warmup_cosine', 'train.num_train_steps': 10000},
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return ablate_formal.get_config(arg)


def sweep(arg: str | None = None) -> list[dict]:
  del arg
  return [{'name': name, **PLAIN, **overrides} for name, overrides in VARIANTS.items()]
