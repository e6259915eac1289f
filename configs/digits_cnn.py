"""A small CNN on scikit-learn's 8×8 digits (offline), stratified 80/20 split.

  python -m experiments.main --config=configs/digits_cnn.py --workdir=runs/digits
  python -m experiments.main --config=configs/digits_cnn.py:smoke --workdir=/tmp/digits_smoke

Three blocks conv 3×3 (32, 64, 128 filters, SAME) → ReLU → spatial dropout 0.1
→ max-pool 2, then dense 128 → 10 classes with dropout 0.5; Adam with warm-up
and cosine decay, 3,000 steps of 64 images. Writes the test accuracy to results.json and
the confusion matrix to confusion_test.png (docs/tagging_and_classification.md has the figure).
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_seeds = 1
  config.init_from = ''                 # a workdir to take initial params from (fine-tuning)
  config.task = 'image_classification'   # seqnets/tasks/image_classification.py
  config.data = dict(source='digits', test_fraction=0.2, split_seed=0, batch_size=64,
                     eval_file_format='npz')    # experiments.evaluate --eval_file: inputs, labels
  config.model = dict(
      name='image_cnn',
      features=(32, 64, 128),
      kernel_size=(3, 3),
      strides=1,
      padding='SAME',
      activation='relu',
      pool_kind='max',
      pool_window=2,
      pool_strides=2,
      pool_padding='VALID',
      spatial_dropout_rate=0.1,
      dense_features=(128,),
      dropout_rate=0.5,
  )
  config.model.dtype = 'float32'   # 'bfloat16' on a GPU or TPU: parameters stay float32
  config.optim = dict(name='adam', learning_rate=2e-3, schedule='warmup_cosine', warmup_steps=100,
                      end_learning_rate_factor=0.0, clip_norm=1.0, clip_value=0.0, freeze=())
  config.train = dict(num_train_steps=3000, log_every_steps=100, checkpoint_every_steps=1000,
                      max_checkpoints_to_keep=1)
  config.evals = dict(test=dict(type='classification', split='test', every_steps=1000, batch_size=512))
  if arg == 'smoke':
    config.model.update(features=(4,), dense_features=(8,))
    config.train.update(num_train_steps=6, log_every_steps=3, checkpoint_every_steps=6)
    config.evals.test.every_steps = 3
  elif arg:
    raise ValueError(f'configs/digits_cnn.py: unknown mode {arg!r}; valid: smoke')
  return config
