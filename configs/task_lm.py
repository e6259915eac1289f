"""A word-level LSTM language model of a task's own training text, to initialise that task's
tagger or classifier (`config.init_from`):

  python -m experiments.main --config=configs/task_lm.py:wnut17 --workdir=runs/wnut17_lm
  python -m experiments.main --config=configs/wnut17.py:pretrained --workdir=runs/wnut17_pretrained

  python -m experiments.main --config=configs/task_lm.py:sst2 --workdir=runs/sst2_lm
  python -m experiments.main --config=configs/sst2_rnn.py:pretrained --workdir=runs/sst2_pretrained

Each mode reads the sentences of the task's training file (its dev file validates) and
tokenises them as the task does (WNUT-17: tokens as written, lowercased; SST-2: words
and punctuation, lowercased), so the vocabularies agree. The embedding and the LSTM
have the sizes of the task model's embedding and forward recurrence, so they transfer
whole; the fine-tuned model keeps the rest of its layers fresh (transfer.json in its
workdir lists what was reused).

Modes: wnut17, sst2, smoke (tiny; --config.data.path=... --config.data.eval_path=...).
"""

import ml_collections

TASKS = {
    # mode: (train file, dev file, file_format, word_split, embedding size, LSTM size);
    # files relative to the data root, $SEQNETS_DATA_DIR (docs/data.md)
    'wnut17': ('wnut17/wnut17train.conll', 'wnut17/emerging.dev.conll',
               'conll', 'whitespace', 100, 100),
    'sst2': ('sst2/train.tsv', 'sst2/dev.tsv', 'tsv',
             'punctuation', 300, 150),
    'smoke': ('', '', 'conll', 'whitespace', 8, 8),
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  if arg not in TASKS:
    raise ValueError(f'configs/task_lm.py: mode {arg!r}; valid: {sorted(TASKS)}')
  path, eval_path, file_format, word_split, embedding, hidden = TASKS[arg]
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_seeds = 1
  config.init_from = ''
  config.task = 'language_model'       # seqnets/tasks/language_model.py
  config.data = dict(
      source='file', path=path, eval_path=eval_path, file_format=file_format, level='word',
      word_split=word_split, lowercase=True, min_count=1, max_vocab_size=0, batch_size=32,
      bptt=35, update_steps=0, carry_state=True, eval_length=256, eval_context=35,
      document_separator='')
  config.model = dict(
      name='recurrent_lm', cell=dict(name='lstm', hidden_size=hidden, forget_bias=1.0),
      num_layers=1, embedding_size=embedding, tie_embeddings=False, embedding_dropout_rate=0.1,
      dropout_rate=0.0, output_dropout_rate=0.5)
  config.model.dtype = 'float32'   # 'bfloat16' on a GPU or TPU: parameters stay float32
  config.optim = dict(name='adam', learning_rate=2e-3, schedule='warmup_cosine', warmup_steps=100,
                      end_learning_rate_factor=0.05, clip_norm=1.0, clip_value=0.0, freeze=())
  config.train = dict(num_train_steps=2000, log_every_steps=100, checkpoint_every_steps=500,
                      max_checkpoints_to_keep=1)
  config.evals = dict(validation=dict(type='language_model', split='validation', every_steps=500,
                                      batch_size=32))
  if arg == 'smoke':
    config.data.update(batch_size=8, bptt=6, eval_length=12, eval_context=3)
    config.optim.warmup_steps = 0
    config.train.update(num_train_steps=4, log_every_steps=2, checkpoint_every_steps=4)
    config.evals.validation.update(every_steps=2, batch_size=4)
  return config
