"""Character-level LSTM language model on Tiny Shakespeare, truncated BPTT.

  python -m experiments.main --config=configs/char_lm.py --workdir=runs/char_lm
  python -m experiments.main --config=configs/char_lm.py:long --workdir=runs/char_lm_long
  python -m experiments.main --config=configs/char_lm.py:word --workdir=runs/word_lm
  python -m experiments.generate --workdir=runs/char_lm --prime="ROMEO:" --length=500
  python -m experiments.evaluate --workdir=runs/char_lm --eval_file=some.txt

Reads a plain UTF-8 text (here Tiny Shakespeare, tinyshakespeare/input.txt under the data
root $SEQNETS_DATA_DIR, see docs/data.md; any text works: --config.data.path=my.txt);
its first 90% of characters train,
the last 10% validate (nanoGPT's split). 64 parallel streams, each cut into
windows of 128 characters (BPTT(128)), the LSTM state carried from window to
window. For the TFDS copy (online): --config.data.source=tfds.

Modes: (default) one LSTM layer of 512, 2,500 steps (within 30 minutes on 2
CPU cores); `long`: two layers of 384, 3,000 steps (within 60 minutes); `word`:
a word-level model (words seen at least 3 times, the rest <unk>); `smoke`: a
tiny model and a few steps, for tests (with --config.data.path pointing at any
text).
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_seeds = 1
  config.init_from = ''
  config.task = 'language_model'       # seqnets/tasks/language_model.py
  config.data = dict(
      source='file',                   # file | tfds
      path='tinyshakespeare/input.txt',   # under $SEQNETS_DATA_DIR (docs/data.md)
      eval_path='',                    # '': the last validation_fraction of `path`
      validation_fraction=0.1,
      tfds_name='tiny_shakespeare',    # with source='tfds'
      train_split='train',
      eval_split='validation',
      data_dir=None,
      level='char',                    # char | word
      lowercase=False,
      min_count=1,
      max_vocab_size=0,                # 0: every token seen min_count times
      batch_size=64,                   # parallel streams
      bptt=128,                        # k2: steps a gradient goes back
      update_steps=0,                  # k1: tokens per update (0: = bptt)
      carry_state=True,                # False: full BPTT over independent windows
      eval_length=1024,
      eval_context=128,
      document_separator='',           # e.g. '\n\n\n': the state is reset at each document
  )
  config.model = dict(
      name='recurrent_lm', cell=dict(name='lstm', hidden_size=512, forget_bias=1.0),
      num_layers=1, embedding_size=64, tie_embeddings=False, embedding_dropout_rate=0.0,
      dropout_rate=0.0, output_dropout_rate=0.2)
  config.model.dtype = 'float32'   # 'bfloat16' on a GPU or TPU: parameters stay float32
  config.optim = dict(name='adam', learning_rate=2e-3, schedule='warmup_cosine', warmup_steps=200,
                      end_learning_rate_factor=0.05, clip_norm=1.0, clip_value=0.0, freeze=())
  config.train = dict(num_train_steps=2500, log_every_steps=50, checkpoint_every_steps=500,
                      max_checkpoints_to_keep=1)
  config.evals = dict(validation=dict(type='language_model', split='validation', every_steps=500,
                                      batch_size=32))
  if arg == 'long':
    config.model.update(num_layers=2, dropout_rate=0.25, output_dropout_rate=0.25)
    config.model.cell.hidden_size = 384
    config.train.num_train_steps = 3000
  elif arg == 'word':
    config.data.update(level='word', min_count=3, bptt=64, batch_size=32, eval_length=512,
                       eval_context=64)
    config.model.update(embedding_size=256, tie_embeddings=True, embedding_dropout_rate=0.1,
                        output_dropout_rate=0.4)
    config.model.cell.hidden_size = 256
    config.optim.learning_rate = 1e-3
    config.train.num_train_steps = 2000
  elif arg == 'smoke':
    config.data.update(batch_size=8, bptt=8, eval_length=16, eval_context=4)
    config.model.update(embedding_size=4)
    config.model.cell.hidden_size = 8
    config.optim.warmup_steps = 0
    config.train.update(num_train_steps=6, log_every_steps=3, checkpoint_every_steps=6)
    config.evals.validation.update(every_steps=3, batch_size=4)
  elif arg:
    raise ValueError(f'configs/char_lm.py: unknown mode {arg!r}; valid: long, word, smoke')
  return config
