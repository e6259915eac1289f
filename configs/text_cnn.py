"""Kim's (2014) CNN-rand for sentence classification on SST-2 (GLUE train → dev).

  python -m experiments.main --config=configs/text_cnn.py --workdir=runs/text_cnn
  python -m experiments.main --config=configs/text_cnn.py --workdir=runs/text_cnn \
      --config.data.train_path=my_train.tsv --config.data.eval_path=my_dev.tsv

Reads `sentence<TAB>label` files (here sst2/ under the data root $SEQNETS_DATA_DIR,
docs/data.md; any TSV or CSV with a header, or `<label> <text>` lines, works).
For the TFDS catalogue copy instead (online):
--config.data.source=tfds --config.data.tfds_name=glue/sst2.

Random 300-d embeddings, filters of widths 3, 4, 5 with 100 maps each,
max-over-time pooling, dropout 0.5, softmax (Kim's CNN-rand reports 82.7 on SST-2).
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_seeds = 1
  config.init_from = ''
  config.task = 'text_classification'   # seqnets/tasks/text_classification.py
  config.data = dict(
      source='files',                 # files | tfds
      train_path='sst2/train.tsv',    # under the data root, $SEQNETS_DATA_DIR (docs/data.md)
      eval_path='sst2/dev.tsv',
      file_format='tsv',              # tsv | csv (header with sentence, label) | label_space_text
      max_length=56,                  # longer sentences are cut (SST-2 dev: at most 55 tokens)
      min_count=1,
      max_vocab_size=0,               # 0: every token seen in training
      batch_size=50,
      tfds_name='glue/sst2',          # used with source='tfds'
      train_split='train',
      eval_split='validation',
      data_dir=None,
  )
  config.model = dict(name='text_cnn', embedding_size=300, filter_widths=(3, 4, 5), num_filters=100,
                      dropout_rate=0.5, channels='rand')
  config.optim = dict(name='adam', learning_rate=1e-3, schedule='constant', warmup_steps=0,
                      end_learning_rate_factor=0.0, clip_norm=3.0, clip_value=0.0, freeze=())
  config.train = dict(num_train_steps=4000, log_every_steps=200, checkpoint_every_steps=1000,
                      max_checkpoints_to_keep=1)
  config.evals = dict(dev=dict(type='classification', split='dev', every_steps=1000, batch_size=512))
  if arg == 'smoke':
    config.data.update(max_length=12, batch_size=4)
    config.model.update(embedding_size=8, num_filters=3)
    config.train.update(num_train_steps=6, log_every_steps=3, checkpoint_every_steps=6)
    config.evals.dev.every_steps = 3
  elif arg:
    raise ValueError(f'configs/text_cnn.py: unknown mode {arg!r}; valid: smoke')
  return config
