"""Fine-tuning: start from a trained digits CNN, freeze every convolution, retrain the classifier.

  python -m experiments.main --config=configs/digits_cnn.py --workdir=runs/digits
  python -m experiments.main --config=configs/finetune_digits.py --workdir=runs/digits_ft \
      --config.init_from=runs/digits

`init_from` names the workdir of the earlier run; its latest checkpoint gives
the initial parameters (its seed 0), and `optim.freeze` keeps every parameter
whose path matches a pattern bit-identical (here the three `conv*` layers).
The resume order is: this workdir's checkpoint → `init_from` → scratch.
"""

import ml_collections

from configs import digits_cnn


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = digits_cnn.get_config(arg)
  config.init_from = 'runs/digits'
  config.optim.update(freeze=('conv*',), learning_rate=1e-3, warmup_steps=0, schedule='constant')
  config.train.num_train_steps = 6 if arg == 'smoke' else 500
  return config
