"""The sequence-to-sequence task's data from parallel text files (source 'files').

`config.data`:
  train_source, train_target   line i of one translates line i of the other (plain or gzip)
  eval_source, eval_target     the 'validation' split (never length-filtered)
  tokenizer                    'word' | 'sentencepiece' (`parallel_text.Tokenizer`), one per
                               side, trained on the training side and saved with the run
  source_vocab_size, target_vocab_size   SentencePiece sizes / the most words kept (0: all)
  min_count                    words seen fewer times are `<unk>` (word tokenizer)
  lowercase                    lowercase both sides before tokenising
  max_length                   training pairs with more tokens on either side are dropped (0: none)
  bucket_width                 batches hold pairs whose longer side differs by < this
  batch_size                   pairs per step
Every batch is padded to its bucket's width (a multiple of `bucket_width`) and to
`batch_size` rows, so training compiles once per bucket.
"""

from __future__ import annotations


import numpy as np

from seqnets.data import batching
from seqnets.data import parallel_text
from seqnets.data.seq2seq import batches as seq2seq_batches
from seqnets.tasks import base
from seqnets.tasks import fields

PATHS = ('train_source', 'train_target', 'eval_source', 'eval_target')


def validate(cfg) -> None:
  for field in PATHS:
    fields.non_empty_string(cfg, field, 'a text file, one sentence per line (plain or gzip)')
  kind = fields.one_of(cfg, 'tokenizer', parallel_text.KINDS)
  for field in ('source_vocab_size', 'target_vocab_size'):
    size = fields.non_negative_int(cfg, field)
    if kind == 'sentencepiece' and size < 8:
      raise ValueError(f'data.{field} must be at least 8 for a SentencePiece model, got {size}')
  for field in ('min_count', 'bucket_width', 'batch_size'):
    fields.positive_int(cfg, field)
  fields.non_negative_int(cfg, 'max_length')
  if not isinstance(cfg.get('lowercase', False), bool):
    raise ValueError(f'data.lowercase must be True or False, got {cfg.get("lowercase")!r}')


def train_tokenizers(cfg, pairs) -> tuple[parallel_text.Tokenizer, parallel_text.Tokenizer]:
  options = dict(lowercase=cfg.get('lowercase', False), min_count=cfg.get('min_count', 1))
  return (parallel_text.Tokenizer.train(cfg.tokenizer, [s for s, _ in pairs],
                                        cfg.source_vocab_size, **options),
          parallel_text.Tokenizer.train(cfg.tokenizer, [t for _, t in pairs],
                                        cfg.target_vocab_size, **options))


def tokenizers(preprocessing: base.Preprocessing) -> tuple[parallel_text.Tokenizer, ...]:
  """The run's (source, target) tokenizers."""
  return tuple(parallel_text.Tokenizer.from_json(t) for t in preprocessing.tokenizers)


def encode_pairs(source_tok, target_tok, pairs, **kwargs) -> base.Batch:
  return seq2seq_batches.pair_batch([source_tok.encode(s) for s, _ in pairs],
                                    [target_tok.encode(t) for _, t in pairs],
                                    bos_id=parallel_text.BOS_ID, eos_id=parallel_text.EOS_ID,
                                    **kwargs)


def build_data(cfg) -> base.TaskData:
  train = parallel_text.read_pairs(cfg.train_source, cfg.train_target)
  evaluation = [(s, t) for s, t in parallel_text.read_pairs(cfg.eval_source, cfg.eval_target)
                if s.strip() or t.strip()]
  source_tok, target_tok = train_tokenizers(cfg, train)
  sources = [source_tok.encode(s) for s, _ in train]
  targets = [target_tok.encode(t) for _, t in train]
  limit = cfg.get('max_length', 0)
  keep = [i for i, (s, t) in enumerate(zip(sources, targets))
          if len(s) > 0 and (not limit or (len(s) <= limit and len(t) <= limit))]
  if len(keep) < cfg.batch_size:
    raise ValueError(f'{cfg.train_source}: {len(keep)} training pairs within data.max_length='
                     f'{limit}, fewer than data.batch_size={cfg.batch_size}')
  sources = [sources[i] for i in keep]
  targets = [targets[i] for i in keep]
  longest = np.asarray([max(len(s), len(t) + 1) for s, t in zip(sources, targets)])
  width, batch_size = cfg.bucket_width, cfg.batch_size

  def train_batches(seed: int, start: int):
    for rows, bucket in batching.bucketed_steps(longest, batch_size, width, seed, start):
      yield seq2seq_batches.pair_batch([sources[i] for i in rows], [targets[i] for i in rows],
                                       bos_id=parallel_text.BOS_ID, eos_id=parallel_text.EOS_ID,
                                       widths=(bucket, bucket), rows=batch_size)

  info = base.DataInfo(vocab_size=len(source_tok), num_outputs=len(target_tok), pad_id=0,
                       unit=cfg.tokenizer)
  preprocessing = base.Preprocessing(info, source_tok.vocabulary,
                                     target_vocabulary=target_tok.vocabulary,
                                     tokenizers=(source_tok.to_json(), target_tok.to_json()))
  eval_sets = {'validation': encode_pairs(source_tok, target_tok, evaluation)}
  counts = {side: np.bincount(np.concatenate([np.zeros(0, np.int64), *ids]).astype(np.int64),
                             minlength=size)
            for side, ids, size in (('source', sources, len(source_tok)),
                                    ('target', targets, len(target_tok)))}
  return base.TaskData(preprocessing, train_batches, eval_sets, {'validation': evaluation},
                       token_counts=counts)


def padding_fraction(batches) -> float:
  """The fraction of padded token positions (source and target) over `batches`."""
  real = total = 0
  for batch in batches:
    real += int(batch['source_lengths'].sum() + batch['target_lengths'].sum())
    total += batch['source'].size + batch['targets'].size
  return 1 - real / max(total, 1)
