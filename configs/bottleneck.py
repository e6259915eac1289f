"""Ablation: the bottleneck attention removes. Reverse strings, trained on lengths 5–20,
tested on lengths 5–40, with four decoders:

  initial       the encoder's final state starts the decoder, nothing else
  every_step    ... and is also fed to every decoder step
  attention     additive (Bahdanau) attention over all encoder states
  transformer   a Transformer encoder-decoder (flax attention layers), same budget

  python -m experiments.ablate --config=configs/bottleneck.py --workdir=runs/bottleneck
  python -m experiments.ablate --config=configs/bottleneck.py:smoke --workdir=/tmp/bottleneck

Everything else as configs/reverse.py (GRU encoder and decoder of 128 units,
Adam, 3,000 steps of 64 strings). The report (report.md) has exact match on
new strings of the training lengths, exact match by input length
(accuracy_by_n.png and a table by length range), and the training losses.
"""

import ml_collections

from configs import reverse

VARIANTS = {
    'initial': {'model.context': 'initial'},
    'every_step': {'model.context': 'every_step'},
    'attention': {'model.context': 'attention'},
}


def transformer(smoke: bool = False) -> dict:
  """The Transformer variant's whole `model` entry (its keys are not the recurrent ones)."""
  if smoke:
    return dict(name='transformer_seq2seq', model_size=8, num_heads=2, num_layers=1, ff_size=16,
                positions='sinusoidal', max_positions=512, dropout_rate=0.0)
  return dict(name='transformer_seq2seq', model_size=128, num_heads=4, num_layers=2,
              ff_size=512, positions='sinusoidal', max_positions=512, dropout_rate=0.0)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = reverse.get_config('smoke' if arg == 'smoke' else None)
  config.num_seeds = 1 if arg == 'smoke' else 2
  if arg not in (None, 'smoke'):
    raise ValueError(f'configs/bottleneck.py: unknown mode {arg!r}; valid: smoke')
  config.launch = dict(timeout_min=60, cpus_per_task=2, mem_gb=4, slurm_partition=None,
                       max_parallel_jobs=1)
  return config


def sweep(arg: str | None = None) -> list[dict]:
  return [*({'name': name, **overrides} for name, overrides in VARIANTS.items()),
          {'name': 'transformer', 'model': transformer(smoke=arg == 'smoke')}]
