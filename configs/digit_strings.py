"""Read strings of handwritten digits from images (Show, Attend and Tell; Xu et al. 2015).

  python -m experiments.main --config=configs/digit_strings.py --workdir=runs/digit_strings
  python -m experiments.evaluate --workdir=runs/digit_strings
  python -c "from seqnets.analysis import attention_maps as a; from seqnets.training import \
saved_run; a.save_digit_attention_maps(saved_run.load_run('runs/digit_strings'), 'maps')"

Images of 1 to 5 of scikit-learn's 8×8 digits side by side (8 × 40 pixels, zeros
right of the digits), generated on the fly (seqnets/tasks/seq2seq/digit_images.py);
evaluation on 1,000 strings written with the 20% of the digits training never sees
('validation': exact match as `accuracy`; the 'lengths' evaluator: exact match by
the number of digits). A CNN of three 3×3 conv layers (32, 64, 64 filters, 2×2
pooling after the first two) gives a 2 × 10 map, one position per half-digit strip
in each of two rows, which a GRU decoder of 128 units attends over (additive,
Bahdanau placement).

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
      source='digit_images',
      digits_per_image=(1, 5),
      eval_examples=1000,
      batch_size=64,
      label_smoothing=0.0,
      teacher_forcing_schedule='constant',   # constant | linear | exponential | inverse_sigmoid
      teacher_forcing_ratio=1.0,             # 1: always the true previous token
      teacher_forcing_decay=0.0,
  )
  config.model = dict(
      name='image_to_sequence', cell=dict(name='gru', hidden_size=128), embedding_size=32,
      conv_features=(32, 64, 64), score='additive', placement='bahdanau', attention_size=0,
      bridge=True, dropout_rate=0.2)
  config.model.dtype = 'float32'   # 'bfloat16' on a GPU or TPU: parameters stay float32
  config.optim = dict(name='adam', learning_rate=2e-3, schedule='warmup_cosine', warmup_steps=100,
                      end_learning_rate_factor=0.02, clip_norm=1.0, clip_value=0.0, freeze=())
  config.train = dict(num_train_steps=3000, log_every_steps=100, checkpoint_every_steps=1000,
                      max_checkpoints_to_keep=1)
  config.evals = dict(
      validation=dict(type='metrics', split='validation', every_steps=1000, batch_size=500),
      lengths=dict(type='accuracy_by_n', split='validation', every_steps=0, batch_size=500))
  if arg == 'smoke':
    config.data.update(digits_per_image=(1, 3), eval_examples=16, batch_size=8)
    config.model.update(embedding_size=4, conv_features=(4, 8))
    config.model.cell.hidden_size = 8
    config.optim.warmup_steps = 0
    config.train.update(num_train_steps=4, log_every_steps=2, checkpoint_every_steps=4)
    config.evals.validation.update(every_steps=2, batch_size=8)
    config.evals.lengths.batch_size = 8
  elif arg:
    raise ValueError(f'configs/digit_strings.py: unknown mode {arg!r}; valid: smoke')
  return config
