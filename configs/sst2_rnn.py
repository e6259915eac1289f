"""Sentiment of movie-review sentences (SST-2, GLUE train → dev): a BiLSTM classifier.

  python -m experiments.main --config=configs/sst2_rnn.py --workdir=runs/sst2_rnn
  python -m experiments.evaluate --workdir=runs/sst2_rnn          # accuracy on dev

Reads `sentence<TAB>label` files (here sst2/ under the data root $SEQNETS_DATA_DIR,
docs/data.md; any TSV or CSV with a header, or `<label> <text>` lines, works).
Random 300-d word embeddings, a
BiLSTM of 150 per direction, max pooling over the real time steps (Conneau et al.
2017 found max pooling the best of the poolings for BiLSTM sentence encoders),
dropout, softmax over the two classes.
Dev accuracy every 250 steps; the checkpoint of the best is kept beside the latest
(`checkpoints_best/`; `experiments.evaluate` reads it by default).

Modes: (default); `pretrained`: the word embedding and the forward LSTM initialised from
a language model of the training sentences (first `python -m experiments.main
--config=configs/task_lm.py:sst2 --workdir=runs/sst2_lm`); `smoke`: a tiny model for tests.
"""

import ml_collections

DATA = 'sst2'   # under the data root, $SEQNETS_DATA_DIR (docs/data.md)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_seeds = 1
  config.init_from = ''
  config.task = 'text_classification'      # seqnets/tasks/text_classification.py
  config.data = dict(
      source='files', train_path=f'{DATA}/train.tsv', eval_path=f'{DATA}/dev.tsv',
      file_format='tsv', max_length=56, min_count=1, max_vocab_size=0, batch_size=64,
      bucket_width=8)
  config.model = dict(
      name='recurrent_classifier', cell=dict(name='lstm', hidden_size=150), num_layers=1,
      bidirectional=True, embedding_size=300, pooling='max', attention_size=100,
      embedding_dropout_rate=0.3, dropout_rate=0.5,
      # word vectors, e.g. glove/glove.840B.300d.txt ('': none; docs/tagging_and_classification.md)
      pretrained_embeddings='', pretrained_lowercase=False, pretrained_oov='random')
  config.model.dtype = 'float32'   # 'bfloat16' on a GPU or TPU: parameters stay float32
  config.optim = dict(name='adam', learning_rate=1e-3, schedule='warmup_cosine', warmup_steps=200,
                      end_learning_rate_factor=0.05, clip_norm=5.0, clip_value=0.0, freeze=(),
                      learning_rate_factors=(), unfreeze_steps=())
  config.train = dict(num_train_steps=3000, log_every_steps=100, checkpoint_every_steps=500,
                      max_checkpoints_to_keep=1, best_metric='dev/accuracy', best_mode='max')
  config.evals = dict(dev=dict(type='classification', split='dev', every_steps=250,
                               batch_size=512))
  if arg == 'pretrained':
    config.init_from = 'runs/sst2_lm'
  elif arg == 'smoke':
    config.data.update(max_length=12, batch_size=4)
    config.model.cell.hidden_size = 6
    config.model.update(embedding_size=8, attention_size=4,
                        embedding_dropout_rate=0.0, dropout_rate=0.0)
    config.optim.warmup_steps = 0
    config.train.update(num_train_steps=6, log_every_steps=3, checkpoint_every_steps=6)
    config.evals.dev.update(every_steps=3, batch_size=16)
  elif arg:
    raise ValueError(f'configs/sst2_rnn.py: unknown mode {arg!r}; valid: pretrained, smoke')
  return config
