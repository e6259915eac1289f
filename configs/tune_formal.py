"""The tuning study behind configs/ablate_formal.py: LSTM + peepholes, 10 seeds per variant.

  python -m experiments.ablate --config=configs/tune_formal.py --workdir=runs/tune         # ~25 min
  python -m experiments.ablate --config=configs/tune_formal.py:anbn --workdir=runs/tune_anbn

Every variant changes a few fields of the plain set-up (configs/anbn.py: hidden
size 8, forget bias 1, Adam 1e-2 constant, clip 1, 3,000 full-batch steps on
n = 1..10) and is scored on n = 1..1000 by the median and best over seeds of
the largest n up to which every string is right.

What each variant bought, as measured while tuning (median / best over 10 seeds):

  aⁿbⁿ     plain 23–50 / 101–218 (two runs of 5 seeds: seed-to-seed spread is large)
           fewer steps (600 / 1000 / 1500): 17.5 / 19 / 21 — stopping once the training
             range is learned, as Gers & Schmidhuber did, does not help
           hidden 4: 34 / 192;  hidden 2: 44 / 1000 (5 seeds)
           hidden 2 + forget bias 3: 65.5 / 1000;  hidden 2 + 10k steps: 62.5 / 1000
           hidden 2 + forget bias 3 + 10k steps: 157 / 1000        <- chosen
             … + 20k steps 161.5 / 1000; forget bias 5: 134.5 / 1000; hidden 4: 50.5 / 1000
             … + input/output gate biases −1/−2 (Gers): 71.5 / 1000; lr 3e-2: 24 / 135
           cosine decay to 0 over 10k steps: 21 / 441 (5 seeds)
  aⁿbⁿcⁿ   plain 13–14 / 18–25 (5 seeds);  with forget bias 3, 10k steps:
           hidden 2: 16.5 / 28;  3: 14.5 / 54;  4: 16 / 270       <- chosen (hidden 4)
           hidden 8: 12 / 21;  forget bias 5: 18 / 149;  random batches of 32: 19 / 302
           Adam 3e-3 30k steps: 20 / 70;  1e-3 60k: 12 / 24;  SGD+momentum: 15.5 / 27;
           RMSProp: 13.5 / 31;  no peepholes: 13.5 / 18;  gate biases −1/−2: 16.5 / 1000;
           input-gate bias +2: 19.5 / 176
           No variant lifted the median above ~20: the learned counters are off by one
           at the end of the b- or c-block beyond n ≈ 12–20 (their increments per
           symbol differ slightly); the best seeds saturate their gates and count to
           n = 1000.
"""

import ml_collections

from configs import ablate_formal

PLAIN = {'model.cell': dict(name='lstm', hidden_size=8, use_peepholes=True, forget_bias=1.0,
                            input_bias=0.0, output_bias=0.0),
         'train.num_train_steps': 3000}
CHOSEN_ANBNCN = {'data.language': 'anbncn', 'model.cell.hidden_size': 4, 'model.cell.forget_bias': 3.0,
                 'train.num_train_steps': 10_000}
SAMPLED = {'data.full_batch': False, 'data.batch_size': 32}

ANBN = {
    'plain': {},
    'steps600': {'train.num_train_steps': 600},
    'steps1500': {'train.num_train_steps': 1500},
    'h4': {'model.cell.hidden_size': 4},
    'h2': {'model.cell.hidden_size': 2},
    'h2_fb3': {'model.cell.hidden_size': 2, 'model.cell.forget_bias': 3.0},
    'h2_10k': {'model.cell.hidden_size': 2, 'train.num_train_steps': 10_000},
    'h2_fb3_10k': {'model.cell.hidden_size': 2, 'model.cell.forget_bias': 3.0, 'train.num_train_steps': 10_000},
    'h2_fb3_20k': {'model.cell.hidden_size': 2, 'model.cell.forget_bias': 3.0, 'train.num_train_steps': 20_000},
    'h2_fb5_10k': {'model.cell.hidden_size': 2, 'model.cell.forget_bias': 5.0, 'train.num_train_steps': 10_000},
    'h4_fb3_10k': {'model.cell.hidden_size': 4, 'model.cell.forget_bias': 3.0, 'train.num_train_steps': 10_000},
    'h2_fb3_10k_gate_biases': {'model.cell.hidden_size': 2, 'model.cell.forget_bias': 3.0,
                               'train.num_train_steps': 10_000, 'model.cell.input_bias': -1.0,
                               'model.cell.output_bias': -2.0},
    'cosine10k': {'optim.schedule': 'warmup_cosine', 'train.num_train_steps': 10_000},
}
ANBNCN = {
    'plain': {'data.language': 'anbncn'},
    'h2': {**CHOSEN_ANBNCN, 'model.cell.hidden_size': 2},
    'h4': CHOSEN_ANBNCN,
    'h8': {**CHOSEN_ANBNCN, 'model.cell.hidden_size': 8},
    'h4_fb5': {**CHOSEN_ANBNCN, 'model.cell.forget_bias': 5.0},
    'h4_sampled32': {**CHOSEN_ANBNCN, **SAMPLED},
    'h4_adam3e-3_30k': {**CHOSEN_ANBNCN, 'optim.learning_rate': 3e-3, 'train.num_train_steps': 30_000},
    'h4_momentum': {**CHOSEN_ANBNCN, 'optim.name': 'momentum', 'optim.learning_rate': 0.1,
                    'train.num_train_steps': 20_000},
    'h4_rmsprop': {**CHOSEN_ANBNCN, 'optim.name': 'rmsprop', 'optim.learning_rate': 3e-3},
    'h4_no_peepholes': {**CHOSEN_ANBNCN, 'model.cell.use_peepholes': False},
    'h4_gate_biases': {**CHOSEN_ANBNCN, 'model.cell.input_bias': -1.0, 'model.cell.output_bias': -2.0},
    'h4_input_bias2': {**CHOSEN_ANBNCN, 'model.cell.input_bias': 2.0},
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ablate_formal.get_config()
  config.num_seeds = 10
  return config


def sweep(arg: str | None = None) -> list[dict]:
  """`arg` 'anbn' or 'anbncn' runs one language's variants; None runs both."""
  studies = {'anbn': ANBN, 'anbncn': ANBNCN}
  if arg not in (None, *studies):
    raise ValueError(f'configs/tune_formal.py: unknown mode {arg!r}; valid: anbn, anbncn')
  return [{'name': f'{language}-{name}', 'data.language': language, **PLAIN, **overrides}
          for language, variants in studies.items() if arg in (None, language)
          for name, overrides in variants.items()]
