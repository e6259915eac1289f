"""Ablation: the digits CNN over peak learning rates, 3 seeds each.

  python -m experiments.ablate --config=configs/ablate_digits_lr.py --workdir=runs/digits_lr
  python -m experiments.ablate --config=configs/ablate_digits_lr.py:smoke --workdir=/tmp/digits_lr

Everything else as configs/digits_cnn.py (Adam, warm-up and cosine decay,
3,000 steps). The report tabulates the test accuracy (median / best over
seeds) per learning rate, with a point per seed in metrics.png (see docs/tagging_and_classification.md
for the measured table).
"""

import ml_collections

from configs import digits_cnn

LEARNING_RATES = (3e-4, 1e-3, 2e-3, 5e-3)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = digits_cnn.get_config('smoke' if arg == 'smoke' else None)
  config.num_seeds = 2 if arg == 'smoke' else 3
  if arg not in (None, 'smoke'):
    raise ValueError(f'configs/ablate_digits_lr.py: unknown mode {arg!r}; valid: smoke')
  return config


def sweep(arg: str | None = None) -> list[dict]:
  rates = LEARNING_RATES[1:3] if arg == 'smoke' else LEARNING_RATES
  return [{'name': f'lr{rate:g}', 'optim.learning_rate': rate} for rate in rates]
