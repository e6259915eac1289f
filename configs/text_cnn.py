"""Kim's (2014) CNN for sentence classification on SST-2 (GLUE train → dev): CNN-rand,
and with pretrained word vectors CNN-static, CNN-non-static and CNN-multichannel.

  python -m experiments.main --config=configs/text_cnn.py --workdir=runs/text_cnn
  python -m experiments.main --config=configs/text_cnn.py:multichannel --workdir=runs/text_cnn_mc
  python -m experiments.main --config=configs/text_cnn.py --workdir=runs/text_cnn \
      --config.data.train_path=my_train.tsv --config.data.eval_path=my_dev.tsv

Reads `sentence<TAB>label` files (here sst2/ under the data root $SEQNETS_DATA_DIR,
docs/data.md; any TSV or CSV with a header, or `<label> <text>` lines, works).
For the TFDS catalogue copy instead (online):
--config.data.source=tfds --config.data.tfds_name=glue/sst2.

Random 300-d embeddings, filters of widths 3, 4, 5 with 100 maps each,
max-over-time pooling, dropout 0.5, softmax (Kim's CNN-rand reports 82.7 on SST-2).

Modes (Kim's four variants; `-smoke` after any: a tiny model for tests, e.g.
`multichannel-smoke`, which needs an 8-dimensional vectors file):
  rand          (the default) embeddings learned from random
  static        the word2vec vectors, held fixed (optim.freeze: static_embedding/*)
  non-static    the word2vec vectors, fine-tuned
  multichannel  two channels from the word2vec vectors: one held fixed, one fine-tuned
  smoke         rand, tiny
The vectors are Kim's, word2vec's GoogleNews-vectors-negative300.bin.gz, under the data
root (docs/data.md says where to get them); any word2vec, GloVe or fastText file of 300
dimensions works: --config.model.pretrained_embeddings=glove/glove.840B.300d.txt. Words
are looked up as written, then lowercased (SST-2's words are lowercased here, the Google
News vectors are cased); words without a vector start random. With
--config.data.vocabulary_from=pretrained the file's words join the vocabulary, so dev
words never seen in training keep their vectors (--config.data.pretrained_max_words
limits them to the file's first, most frequent, words).
docs/tagging_and_classification.md ("Pretrained word vectors") has the details.
"""

import ml_collections

VECTORS = 'word2vec/GoogleNews-vectors-negative300.bin.gz'   # under the data root (docs/data.md)
VARIANTS = ('rand', 'static', 'non-static', 'multichannel')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variant, smoke = _mode(arg)
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
                      dropout_rate=0.5, channels=variant)
  config.model.dtype = 'float32'   # 'bfloat16' on a GPU or TPU: parameters stay float32
  if variant != 'rand':
    config.data.update(vocabulary_from='train',   # train | pretrained (the file's words join)
                       pretrained_max_words=0)    # with 'pretrained': the file's first words
    config.model.update(pretrained_embeddings=VECTORS, pretrained_lowercase=True,
                        pretrained_oov='random')  # random | zero: the rows of words not found
  static = variant in ('static', 'multichannel')
  config.optim = dict(name='adam', learning_rate=1e-3, schedule='constant', warmup_steps=0,
                      end_learning_rate_factor=0.0, clip_norm=3.0, clip_value=0.0,
                      freeze=('static_embedding/*',) if static else ())
  config.train = dict(num_train_steps=4000, log_every_steps=200, checkpoint_every_steps=1000,
                      max_checkpoints_to_keep=1)
  config.evals = dict(dev=dict(type='classification', split='dev', every_steps=1000, batch_size=512))
  if smoke:
    config.data.update(max_length=12, batch_size=4)
    config.model.update(embedding_size=8, num_filters=3)
    config.train.update(num_train_steps=6, log_every_steps=3, checkpoint_every_steps=6)
    config.evals.dev.every_steps = 3
  return config


def _mode(arg: str | None) -> tuple[str, bool]:
  """(Kim's variant, smoke) of a mode: 'static', 'static-smoke', 'smoke', ..."""
  if arg in (None, 'smoke'):
    return 'rand', arg == 'smoke'
  variant, _, rest = arg.partition('-smoke')
  if variant not in VARIANTS or rest:
    valid = [*VARIANTS, 'smoke', *(f'{v}-smoke' for v in VARIANTS)]
    raise ValueError(f'configs/text_cnn.py: unknown mode {arg!r}; valid: {", ".join(valid)}')
  return variant, arg.endswith('-smoke')
