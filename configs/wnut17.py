"""Named entities in noisy user text (WNUT-17): a BiLSTM-CRF with character features.

  python -m experiments.main --config=configs/wnut17.py --workdir=runs/wnut17
  python -m experiments.evaluate --workdir=runs/wnut17          # accuracy, entity_f1, ...

Reads the CoNLL files in wnut17/ under the data root $SEQNETS_DATA_DIR (docs/data.md;
token<TAB>tag, BIO tags of six entity types; any such files work:
--config.data.train_path=... --config.data.eval_path=...).
Words are embedded (100-d, lowercased ids; in training each word id is `<unk>` with
probability 0.3, so the model learns to tag unseen words from their characters) and read
by a character BiLSTM (50 per direction) over each word as written; a BiLSTM of 100 per
direction reads the sentence,
and a linear-chain CRF with BIO transition rules gives the tags (Lample et al. 2016).
The 'entity' evaluator reports seqeval's span-level F1 (CoNLL definition).
It runs every 250 steps, and the checkpoint of the best entity F1 is kept beside the
latest (`checkpoints_best/`; `experiments.evaluate` reads it by default).

Modes: (default); `softmax`: per-word softmax instead of the CRF; `pretrained` and
`softmax_pretrained`: the same, the word embedding and the forward LSTM initialised
from a language model of the training text (first `python -m experiments.main
--config=configs/task_lm.py:wnut17 --workdir=runs/wnut17_lm`); `smoke`: a tiny model
for tests (--config.data.train_path=... --config.data.eval_path=...).
"""

import ml_collections

DATA = 'wnut17'   # under the data root, $SEQNETS_DATA_DIR (docs/data.md)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_seeds = 1
  config.init_from = ''
  config.task = 'tagging'                  # seqnets/tasks/tagging.py
  config.data = dict(
      format='conll', train_path=f'{DATA}/wnut17train.conll',
      eval_path=f'{DATA}/emerging.dev.conll', token_column=0, label_column=-1,
      lowercase=True, min_count=1, max_vocab_size=0, max_word_length=20,
      unknown_labels='error', word_dropout=0.3, batch_size=32, bucket_width=8)
  config.model = dict(
      name='sequence_tagger', cell=dict(name='lstm', hidden_size=100), num_layers=1,
      bidirectional=True,
      embedding_size=100, char_encoder='bilstm', char_embedding_size=50, char_features=50,
      embedding_dropout_rate=0.5, dropout_rate=0.5, crf=True, crf_constraints='bio',
      # word vectors, e.g. glove/glove.6B.100d.txt ('': none; docs/tagging_and_classification.md)
      pretrained_embeddings='', pretrained_lowercase=False, pretrained_oov='random')
  config.model.dtype = 'float32'   # 'bfloat16' on a GPU or TPU: parameters stay float32
  config.optim = dict(name='adam', learning_rate=2e-3, schedule='warmup_cosine', warmup_steps=100,
                      end_learning_rate_factor=0.05, clip_norm=5.0, clip_value=0.0, freeze=(),
                      learning_rate_factors=(), unfreeze_steps=())
  config.train = dict(num_train_steps=3000, log_every_steps=100, checkpoint_every_steps=500,
                      max_checkpoints_to_keep=1, best_metric='entity/entity_f1', best_mode='max')
  config.evals = dict(
      entity=dict(type='entity_f1', split='dev', every_steps=250, batch_size=256),
      tags=dict(type='classification', split='dev', every_steps=0, batch_size=256))
  if arg in ('softmax', 'softmax_pretrained'):
    config.model.update(crf=False, crf_constraints='none')
  if arg in ('pretrained', 'softmax_pretrained'):
    config.init_from = 'runs/wnut17_lm'
  if arg == 'smoke':
    config.data.update(batch_size=8, bucket_width=4, max_word_length=8)
    config.model.cell.hidden_size = 8
    config.model.update(embedding_size=8, char_embedding_size=4, char_features=4,
                        embedding_dropout_rate=0.0, dropout_rate=0.0)
    config.optim.warmup_steps = 0
    config.train.update(num_train_steps=4, log_every_steps=2, checkpoint_every_steps=4)
    config.evals.entity.update(every_steps=2, batch_size=16)
    config.evals.tags.update(batch_size=16)
  elif arg not in (None, 'softmax', 'pretrained', 'softmax_pretrained'):
    raise ValueError(f'configs/wnut17.py: unknown mode {arg!r}; valid: softmax, pretrained, '
                     f'softmax_pretrained, smoke')
  return config
