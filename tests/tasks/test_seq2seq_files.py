"""The sequence-to-sequence task on parallel text files: tokenizers saved with the run, batches
bucketed by length, BLEU as an evaluator that agrees with decoding and sacrebleu."""

import gzip

import numpy as np
import pytest
import sacrebleu

from configs import multi30k
from seqnets.decoding import encoder_decoder
from seqnets.tasks import seq2seq
from seqnets.tasks.seq2seq import files as seq2seq_files
from seqnets.training import loop, saved_run

WORDS = {'hund': 'dog', 'katze': 'cat', 'läuft': 'runs', 'schläft': 'sleeps', 'ein': 'a',
         'der': 'the', 'rote': 'red', 'kleine': 'small', 'im': 'in the', 'park': 'park'}


def write_corpus(directory, count, seed):
  rng = np.random.default_rng(seed)
  german = list(WORDS)
  sources = [' '.join(rng.choice(german, rng.integers(2, 12))) for _ in range(count)]
  targets = [' '.join(WORDS[w] for w in s.split()) + ' .' for s in sources]
  (directory / f'{seed}.de').write_text('\n'.join(sources) + '\n', encoding='utf-8')
  with gzip.open(directory / f'{seed}.en.gz', 'wt', encoding='utf-8') as f:
    f.write('\n'.join(targets) + '\n')
  return directory / f'{seed}.de', directory / f'{seed}.en.gz'


def config(tmp_path, **data):
  train_source, train_target = write_corpus(tmp_path, 200, 0)
  eval_source, eval_target = write_corpus(tmp_path, 24, 1)
  cfg = multi30k.get_config('smoke')
  cfg.data.update(train_source=str(train_source), train_target=str(train_target),
                  eval_source=str(eval_source), eval_target=str(eval_target), **data)
  return cfg


@pytest.mark.parametrize('tokenizer,vocab_size', [('word', 0), ('sentencepiece', 30)])
def test_batches_are_bucketed_and_tokenizers_saved(tmp_path, tokenizer, vocab_size):
  cfg = config(tmp_path, tokenizer=tokenizer, source_vocab_size=vocab_size,
               target_vocab_size=vocab_size)
  data = seq2seq.build_data(cfg.data)
  source_tok, target_tok = seq2seq_files.tokenizers(data.preprocessing)
  assert data.preprocessing.target_vocabulary == target_tok.vocabulary
  batches = [next(data.train_batches(0, s)) for s in range(12)]
  for batch in batches:
    width = batch['source'].shape[1]
    assert width % 4 == 0 and batch['targets'].shape == (8, width) and len(batch['valid']) == 8
    real = batch['valid'] > 0
    longest = np.maximum(batch['source_lengths'], batch['target_lengths'])[real]
    assert longest.max() < width and longest.max() - longest.min() < 4     # one bucket
  assert seq2seq_files.padding_fraction(batches) < 0.5
  rows = data.eval_sets['validation']
  pair = data.texts['validation'][0]
  n = rows['target_lengths'][0]
  assert target_tok.decode(rows['targets'][0, :n]) == pair[1]
  assert seq2seq.decode_targets(cfg.data, data.preprocessing, target_tok.encode(pair[1])) == pair[1]


def test_config_errors_name_the_field(tmp_path):
  cfg = config(tmp_path)
  for field, value, message in [('tokenizer', 'bpe', 'data.tokenizer'),
                                ('source_vocab_size', -1, 'data.source_vocab_size'),
                                ('bucket_width', 0, 'data.bucket_width')]:
    bad = config(tmp_path, **{field: value})
    with pytest.raises(ValueError, match=message):
      seq2seq.validate(bad.data)
  spm = config(tmp_path, tokenizer='sentencepiece', source_vocab_size=30, target_vocab_size=4)
  with pytest.raises(ValueError, match='data.target_vocab_size must be at least 8'):
    seq2seq.validate(spm.data)
  cfg.data.max_length = 1
  with pytest.raises(ValueError, match='training pairs within data.max_length=1'):
    seq2seq.build_data(cfg.data)


def test_bleu_evaluator_agrees_with_decoding_and_sacrebleu(tmp_path):
  cfg = config(tmp_path, bucket_width=16)            # one bucket: one training compile
  workdir = tmp_path / 'run'
  final = loop.train_and_evaluate(cfg, workdir).final[0]
  run = saved_run.load_run(workdir)
  pairs = seq2seq.build_data(cfg.data).texts['validation']
  hypotheses = encoder_decoder.translate(run, [s for s, _ in pairs], beam_size=2, max_length=12,
                                         batch_size=8)
  references = [t for _, t in pairs]
  assert final['eval/bleu/bleu'] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
  assert final['eval/bleu/bleu_lowercase'] == pytest.approx(
      sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score)
  # What experiments.evaluate --eval_file prints for a file of pairs, bare names.
  (tmp_path / 'pairs.tsv').write_text(''.join(f'{s}\t{t}\n' for s, t in pairs), encoding='utf-8')
  scores = run.evaluate(tmp_path / 'pairs.tsv')
  assert scores['eval/bleu/bleu'] == pytest.approx(final['eval/bleu/bleu'])
  assert 'eval/metrics/accuracy' in scores
