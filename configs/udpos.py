"""Universal parts of speech (UD English-EWT): a word and character BiLSTM tagger.

  python -m experiments.main --config=configs/udpos.py --workdir=runs/udpos
  python -m experiments.evaluate --workdir=runs/udpos                # accuracy on dev

Reads the CoNLL-U files in ud_english_ewt/ under the data root $SEQNETS_DATA_DIR
(docs/data.md; train → dev; column UPOS, 17 tags; multiword-token ranges and empty nodes
are skipped). Any CoNLL-U files work
(--config.data.train_path=... --config.data.eval_path=...), and any column
(--config.data.label_column=xpos). Words are embedded (100-d, lowercased ids) and read
by a character BiLSTM (50 per direction, 50-d characters) over each word as written
(Plank et al. 2016); a BiLSTM of 150 per direction reads the sentence; a softmax tags
each word. 9,000 steps of 32 sentences (about 23 epochs); the dev set is scored every
500 steps with the moving average of the parameters (decay 0.999), and the best of
those evaluations is kept as the run's best checkpoint, which the commands read.

Modes: (default); `words`: no character encoder; `smoke`: a tiny model for tests.
"""

import ml_collections

DATA = 'ud_english_ewt'   # under the data root, $SEQNETS_DATA_DIR (docs/data.md)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_seeds = 1
  config.init_from = ''
  config.task = 'tagging'                  # seqnets/tasks/tagging.py
  config.data = dict(
      format='conllu', train_path=f'{DATA}/en_ewt-ud-train.conllu.gz',
      eval_path=f'{DATA}/en_ewt-ud-dev.conllu', label_column='upos', lowercase=True,
      min_count=1, max_vocab_size=0, max_word_length=20, unknown_labels='error',
      word_dropout=0.05, batch_size=32, bucket_width=8)
  config.model = dict(
      name='sequence_tagger', cell=dict(name='lstm', hidden_size=150), num_layers=1,
      bidirectional=True,
      embedding_size=100, char_encoder='bilstm', char_embedding_size=50, char_features=50,
      embedding_dropout_rate=0.25, dropout_rate=0.5, crf=False, crf_constraints='none',
      # word vectors, e.g. glove/glove.6B.100d.txt ('': none; docs/tagging_and_classification.md)
      pretrained_embeddings='', pretrained_lowercase=False, pretrained_oov='random')
  config.model.dtype = 'float32'   # 'bfloat16' on a GPU or TPU: parameters stay float32
  config.optim = dict(name='adam', learning_rate=2e-3, schedule='warmup_cosine', warmup_steps=100,
                      end_learning_rate_factor=0.05, clip_norm=5.0, clip_value=0.0, freeze=(),
                      learning_rate_factors=(), unfreeze_steps=(), ema_decay=0.999)
  config.train = dict(num_train_steps=9000, log_every_steps=100, checkpoint_every_steps=500,
                      max_checkpoints_to_keep=1, best_metric='dev/accuracy', best_mode='max')
  config.evals = dict(dev=dict(type='classification', split='dev', every_steps=500,
                               batch_size=256))
  if arg == 'words':
    config.model.char_encoder = 'none'
  elif arg == 'smoke':
    config.data.update(batch_size=8, bucket_width=4, max_word_length=8)
    config.model.cell.hidden_size = 8
    config.model.update(embedding_size=8, char_embedding_size=4, char_features=4,
                        embedding_dropout_rate=0.0, dropout_rate=0.0)
    config.optim.warmup_steps = 0
    config.train.update(num_train_steps=4, log_every_steps=2, checkpoint_every_steps=4)
    config.evals.dev.update(every_steps=2, batch_size=16)
  elif arg:
    raise ValueError(f'configs/udpos.py: unknown mode {arg!r}; valid: words, smoke')
  return config
