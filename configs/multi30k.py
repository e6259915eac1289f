"""German → English translation on Multi30k: a bidirectional GRU encoder, additive attention.

  python -m experiments.main --config=configs/multi30k.py --workdir=runs/multi30k
  python -m experiments.decode --workdir=runs/multi30k --input=sentences.de --output=out.en \
      --beam_size=5 --length_penalty=0.6
  python -m experiments.evaluate --workdir=runs/multi30k

Reads the gzip files in multi30k/ under the data root $SEQNETS_DATA_DIR (docs/data.md;
29,000 training pairs, 1,014 validation pairs; any parallel files work:
--config.data.train_source=...). Both
sides are lowercased and cut into SentencePiece subwords (4,000 per side), trained on
the training text and saved with the run; pairs longer than 50 subwords are left
out of training. Batches of 64 pairs of similar length. The model follows Bahdanau
et al. (2015), sized for 2 CPU cores: embeddings of 256, a bidirectional GRU encoder
of 256 per direction, a GRU decoder of 256 with additive attention, dropout 0.3
(about 0.5 s per step here; a decoder of 512 and 8,000 subwords per side took 1.1 s). The 'bleu' evaluator
decodes the validation set with beam search (beam 5, length penalty 0.6) and
reports sacrebleu's corpus BLEU against the untokenised references, cased and
lowercased. The validation loss is scored every 500 steps and the checkpoint of the
lowest is kept (`checkpoints_best/`); the last five checkpoints stay, so
`python -m experiments.average_checkpoints --workdir=runs/multi30k --last=5` can average them
(`--checkpoint=average`).

Modes: (default); `transformer`: a Transformer of the same size class (3 + 3 pre-norm
layers, d = 256, 4 heads, feed-forward 1,024) under the same hour (3,600 steps);
`smoke`: a tiny model on files the test writes (--config.data.train_source=...).
"""

import ml_collections

DATA = 'multi30k'   # under the data root, $SEQNETS_DATA_DIR (docs/data.md)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_seeds = 1
  config.init_from = ''
  config.task = 'seq2seq'                  # seqnets/tasks/seq2seq/ (files.py)
  config.data = dict(
      source='files',
      train_source=f'{DATA}/train.de.gz', train_target=f'{DATA}/train.en.gz',
      eval_source=f'{DATA}/val.de.gz', eval_target=f'{DATA}/val.en.gz',
      tokenizer='sentencepiece',           # sentencepiece | word
      source_vocab_size=4000, target_vocab_size=4000,
      min_count=1,                         # word tokenizer only
      lowercase=True,
      max_length=50,
      bucket_width=8,
      batch_size=64,
      label_smoothing=0.1,
      teacher_forcing_schedule='constant',
      teacher_forcing_ratio=1.0,
      teacher_forcing_decay=0.0,
  )
  config.model = dict(
      name='recurrent_seq2seq', cell=dict(name='gru', hidden_size=256), decoder_hidden_size=256,
      embedding_size=256, encoder_layers=1, bidirectional=True, context='attention',
      score='additive', placement='bahdanau', attention_size=256, bridge=True, dropout_rate=0.3)
  config.model.dtype = 'float32'   # 'bfloat16' on a GPU or TPU: parameters stay float32
  config.optim = dict(name='adam', learning_rate=1e-3, schedule='warmup_cosine', warmup_steps=500,
                      end_learning_rate_factor=0.05, clip_norm=1.0, clip_value=0.0, freeze=())
  config.train = dict(num_train_steps=6000, log_every_steps=100, checkpoint_every_steps=500,
                      max_checkpoints_to_keep=5, best_metric='validation/loss', best_mode='min')
  config.evals = dict(
      validation=dict(type='metrics', split='validation', every_steps=500, batch_size=256),
      bleu=dict(type='bleu', split='validation', every_steps=0, batch_size=128, beam_size=5,
                length_penalty=0.6, max_length=80))
  if arg == 'transformer':
    config.model = dict(name='transformer_seq2seq', model_size=256, num_heads=4, num_layers=3,
                        ff_size=1024, positions='sinusoidal', max_positions=256, dropout_rate=0.1)
    config.model.dtype = 'float32'   # 'bfloat16' on a GPU or TPU: parameters stay float32
    config.optim.update(learning_rate=5e-4, warmup_steps=800)
    config.train.num_train_steps = 3600      # its steps cost about 0.85 s: the same hour
    config.evals.validation.every_steps = 1200
  elif arg == 'smoke':
    config.data.update(tokenizer='word', source_vocab_size=0, target_vocab_size=0, batch_size=8,
                       max_length=20, bucket_width=4)
    config.model.update(decoder_hidden_size=0, embedding_size=8, attention_size=0,
                        dropout_rate=0.0)
    config.model.cell.hidden_size = 8
    config.optim.warmup_steps = 0
    config.train.update(num_train_steps=4, log_every_steps=2, checkpoint_every_steps=4)
    config.evals.validation.update(every_steps=2, batch_size=8)
    config.evals.bleu.update(batch_size=8, beam_size=2, max_length=12)
  elif arg:
    raise ValueError(f'configs/multi30k.py: unknown mode {arg!r}; valid: transformer, smoke')
  return config
