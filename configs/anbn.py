"""One LSTM learning aⁿbⁿ as next-symbol prediction (Gers & Schmidhuber 2001).

  python -m experiments.main --config=configs/anbn.py --workdir=runs/anbn
  python -m experiments.main --config=configs/anbn.py --workdir=runs/anbn_gru --config.model.cell.name=gru
  python -m experiments.main --config=configs/anbn.py:smoke --workdir=/tmp/smoke   # seconds

Training strings n = 1..10 (all of them in every batch), evaluation of every
n = 1..1000 at the end; `results.json` reports `max_correct_n`, the largest n
up to which every string is predicted exactly right.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_seeds = 1                 # seeds seed, seed+1, ... train side by side (vmap)

  config.task = 'formal_language'     # seqnets/tasks/formal_languages.py
  config.data = dict(
      language='anbn',
      train_n=(1, 10),
      test_n=(1, 1000),
      full_batch=True,                 # every n of train_n once per step
      batch_size=10,                   # used when full_batch=False
  )
  config.model = dict(
      name='recurrent_tagger',
      # Any cell of seqnets/models/cells.py, with that cell's own keys (LSTM: forget_bias,
      # use_peepholes, ...; GRU: reset_after; Elman: activation); the rest keep their defaults.
      cell=dict(name='lstm', hidden_size=8),
      num_layers=1,
      embedding_size=0,                # 0: one-hot inputs
      bidirectional=False,
      dropout_rate=0.0,
      unroll=1,
  )
  config.model.dtype = 'float32'   # 'bfloat16' on a GPU or TPU: parameters stay float32
  config.optim = dict(
      name='adam',
      learning_rate=1e-2,
      schedule='constant',             # constant | warmup_cosine | warmup_linear | inverse_sqrt | exponential
      warmup_steps=0,
      end_learning_rate_factor=0.0,
      momentum=0.9,
      clip_norm=1.0,
      clip_value=0.0,
  )
  config.train = dict(
      num_train_steps=3000,
      log_every_steps=100,
      checkpoint_every_steps=1000,
      max_checkpoints_to_keep=2,
  )
  config.evals = dict(                 # name -> evaluator; every_steps 0: only at the end
      train_range=dict(type='accuracy_by_n', split='train_range', every_steps=500, batch_size=256),
      test_range=dict(type='accuracy_by_n', split='test_range', every_steps=0, batch_size=256),
  )

  if arg == 'smoke':
    config.data.test_n = (1, 20)
    config.model.cell.hidden_size = 4
    config.train.update(num_train_steps=20, log_every_steps=5, checkpoint_every_steps=10)
    config.evals.train_range.every_steps = 10
  elif arg:
    raise ValueError(f'configs/anbn.py: unknown mode {arg!r}; valid: smoke')
  return config
