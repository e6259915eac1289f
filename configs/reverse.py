"""Reverse a string with a recurrent encoder-decoder and additive attention.

  python -m experiments.main --config=configs/reverse.py --workdir=runs/reverse
  python -m experiments.decode --workdir=runs/reverse --input=sources.txt --output=hyp.txt \
      --beam_size=5
  python -m experiments.evaluate --workdir=runs/reverse --eval_file=pairs.tsv

Strings of 5 to 20 symbols from a–j, generated on the fly (seqnets/data/seq2seq/synthetic.py);
evaluation on 1,000 new strings of those lengths ('validation': exact match as `accuracy`)
and on 100 strings of every length 5 to 40 ('lengths': exact match by length). A GRU
encoder and decoder of 128 units, Bahdanau placement. Other problems:
--config.data.problem=copy | sort | addition. Other decoders: --config.model.context=initial
| every_step (configs/bottleneck.py compares them).

Modes: (default); `smoke`: a tiny model and a few steps, for tests.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_seeds = 1
  config.init_from = ''
  config.task = 'seq2seq'                    # seqnets/tasks/seq2seq.py
  config.data = dict(
      source='synthetic',
      problem='reverse',                     # copy | reverse | sort | addition
      num_symbols=10,
      train_lengths=(5, 20),
      eval_lengths=(5, 40),
      eval_examples=1000,
      examples_per_length=100,
      batch_size=64,
      label_smoothing=0.0,
      teacher_forcing_schedule='constant',   # constant | linear | exponential | inverse_sigmoid
      teacher_forcing_ratio=1.0,             # 1: always the true previous token
      teacher_forcing_decay=0.0,
  )
  config.model = dict(
      name='recurrent_seq2seq', cell=dict(name='gru', hidden_size=128), decoder_hidden_size=0,
      embedding_size=32, encoder_layers=1, bidirectional=False, context='attention',
      score='additive', placement='bahdanau', attention_size=0, bridge=True, dropout_rate=0.0)
  config.model.dtype = 'float32'   # 'bfloat16' on a GPU or TPU: parameters stay float32
  config.optim = dict(name='adam', learning_rate=3e-3, schedule='warmup_cosine', warmup_steps=100,
                      end_learning_rate_factor=0.05, clip_norm=1.0, clip_value=0.0, freeze=())
  config.train = dict(num_train_steps=3000, log_every_steps=100, checkpoint_every_steps=1000,
                      max_checkpoints_to_keep=1)
  config.evals = dict(
      validation=dict(type='metrics', split='validation', every_steps=1000, batch_size=500),
      lengths=dict(type='accuracy_by_n', split='lengths', every_steps=0, batch_size=500))
  if arg == 'smoke':
    config.data.update(train_lengths=(2, 5), eval_lengths=(2, 7), eval_examples=16,
                       examples_per_length=4, batch_size=8, num_symbols=4)
    config.model.embedding_size = 4
    config.model.cell.hidden_size = 8
    config.optim.warmup_steps = 0
    config.train.update(num_train_steps=4, log_every_steps=2, checkpoint_every_steps=4)
    config.evals.validation.update(every_steps=2, batch_size=8)
    config.evals.lengths.batch_size = 8
  elif arg:
    raise ValueError(f'configs/reverse.py: unknown mode {arg!r}; valid: smoke')
  return config
