"""The tagging task: vocabularies and tag names from the training file, bucketed batches that
replay on resume, unseen tags, the loss written out in NumPy, token-level confusion, entity F1
through seqeval, and a whole run through experiments.main's loop and `evaluate`."""

import json

import jax
import numpy as np
import pytest
from seqeval import metrics as seqeval_metrics

from configs import udpos, wnut17
from seqnets.data import batching
from seqnets.models import factory
from seqnets.tasks import tagging
from seqnets.training import evaluators, loop, saved_run

def config(files, **data):
  cfg = wnut17.get_config('smoke')
  cfg.data.update(train_path=str(files[0]), eval_path=str(files[1]))
  cfg.data.update(data)
  return cfg


def test_vocabularies_tags_and_arrays(tmp_path, tagged_files):
  cfg = config(tagged_files, lowercase=True)
  data = tagging.build_data(cfg.data)
  prep = data.preprocessing
  names = prep.target_vocabulary
  assert names[0] == 'O' and set(names) == {'O', 'B-PER', 'I-PER', 'B-LOC'}
  assert prep.info.label_names == names and prep.info.num_outputs == 4
  assert 'éva' in prep.vocabulary and 'Éva' not in prep.vocabulary   # ids lowercased
  assert 'É' in prep.char_vocabulary                                  # characters as written
  dev = data.eval_sets['dev']
  sentences = tagging.read_file(cfg.data, cfg.data.eval_path)
  for row, sentence in enumerate(sentences):
    n = len(sentence.tokens)
    assert dev['lengths'][row] == n and np.all(dev['inputs'][row, n:] == 0)
    assert [names[i] for i in dev['labels'][row, :n]] == list(sentence.labels)
    assert [prep.vocabulary[i] for i in dev['inputs'][row, :n]] == [
        t.lower() for t in sentence.tokens]
    for position, token in enumerate(sentence.tokens):
      k = min(len(token), cfg.data.max_word_length)
      assert dev['char_lengths'][row, position] == k
      assert ''.join(prep.char_vocabulary[i] for i in dev['chars'][row, position, :k]) == token[:k]
  assert 0 < data.summary['train/padding_fraction'] < 0.6
  assert data.summary['train/sentences'] == 60


def test_batches_are_bucketed_and_replay_from_any_step(tmp_path, tagged_files):
  cfg = config(tagged_files)
  data = tagging.build_data(cfg.data)
  first = [next(data.train_batches(3, s)) for s in range(20)]
  for batch in first:
    real = batch['lengths'] > 0
    width = batch['inputs'].shape[1]
    assert width % 4 == 0 and batch['lengths'].max() < width and len(batch['lengths']) == 8
    assert batch['lengths'][real].max() - batch['lengths'][real].min() < 4
  resumed = data.train_batches(3, 11)
  for step in range(11, 20):
    batch = next(resumed)
    for key in batch:
      np.testing.assert_array_equal(batch[key], first[step][key])
  # Every training sentence is seen once per epoch.
  per_epoch = len(batching.bucket_epoch(
      np.array([len(s.tokens) for s in tagging.read_file(cfg.data, cfg.data.train_path)]),
      8, 4, 3, 0))
  assert sum(int((b['lengths'] > 0).sum()) for b in first[:per_epoch]) == 60


def test_word_dropout_replaces_word_ids_only_in_training(tmp_path, tagged_files):
  plain = tagging.build_data(config(tagged_files, word_dropout=0.0).data)
  dropped = tagging.build_data(config(tagged_files, word_dropout=0.5).data)
  a, b = next(plain.train_batches(0, 5)), next(dropped.train_batches(0, 5))
  changed = a['inputs'] != b['inputs']
  assert 0.2 < changed.sum() / (a['inputs'] > 0).sum() < 0.8 and np.all(b['inputs'][changed] == 1)
  np.testing.assert_array_equal(a['chars'], b['chars'])
  np.testing.assert_array_equal(next(dropped.train_batches(0, 5))['inputs'], b['inputs'])
  np.testing.assert_array_equal(plain.eval_sets['dev']['inputs'], dropped.eval_sets['dev']['inputs'])


def test_unseen_tags_are_an_error_naming_file_and_line_or_unk(tmp_path, tagged_files):
  cfg = config(tagged_files)
  dev = tmp_path / 'dev.conll'
  dev.write_text('Ann\tB-PER\nwent\tO\n\nto\tO\nParis\tB-GPE\n', encoding='utf-8')
  with pytest.raises(ValueError, match=r'dev.conll:5: tag .B-GPE. never appears'):
    tagging.build_data(cfg.data)
  cfg.data.unknown_labels = 'unk'
  data = tagging.build_data(cfg.data)
  names = data.preprocessing.target_vocabulary
  assert names[-1] == '<unk>'
  assert names[data.eval_sets['dev']['labels'][1, 1]] == '<unk>'


@pytest.mark.parametrize('bad,field', [
    (dict(format='json'), 'data.format'), (dict(batch_size=0), 'data.batch_size'),
    (dict(unknown_labels='skip'), 'data.unknown_labels'), (dict(label_column=None),
                                                           'data.label_column'),
    (dict(lowercase=None), 'data.lowercase'), (dict(train_path=''), 'data.train_path'),
    (dict(word_dropout=1.0), 'data.word_dropout')])
def test_validate_names_the_field(tmp_path, tagged_files, bad, field):
  cfg = config(tagged_files, **bad)
  with pytest.raises(ValueError, match=field):
    tagging.validate(cfg.data)


def outputs_and_batch(crf):
  rng = np.random.default_rng(0)
  lengths = np.array([3, 1, 0], np.int32)
  labels = np.where(np.arange(4)[None] < lengths[:, None], rng.integers(0, 3, (3, 4)), 0)
  logits = rng.normal(size=(3, 4, 3)).astype(np.float32)
  outputs = {'logits': logits, 'predictions': np.argmax(logits, -1)}
  if crf:
    outputs['log_likelihood'] = np.array([-2.0, -0.5, 0.0], np.float32)
  return outputs, {'labels': labels.astype(np.int32), 'lengths': lengths}


@pytest.mark.parametrize('crf', [False, True])
def test_loss_is_the_mean_over_words(crf):
  outputs, batch = outputs_and_batch(crf)
  loss, sums = tagging.loss(outputs, batch)
  mask = np.arange(4)[None] < batch['lengths'][:, None]
  logits = outputs['logits']
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  cross_entropy = -np.take_along_axis(log_p, batch['labels'][..., None], -1)[..., 0]
  expected = 2.5 / 4 if crf else cross_entropy[mask].mean()
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  right = (outputs['predictions'] == batch['labels'])[mask]
  assert sums['tags_correct'] == right.sum() and sums['token_count'] == 4
  assert sums['sentence_count'] == 2
  whole = [np.all((outputs['predictions'] == batch['labels'])[r, :n])
           for r, n in enumerate(batch['lengths']) if n]
  assert sums['sentences_correct'] == sum(whole)


def test_confusion_counts_real_words_only():
  outputs, batch = outputs_and_batch(False)
  sums = evaluators._confusion_sums(tagging.TASK, factory_info(), batch)(outputs, batch)
  expected = np.zeros((3, 3))
  for row, n in enumerate(batch['lengths']):
    for t in range(n):
      expected[batch['labels'][row, t], outputs['predictions'][row, t]] += 1
  np.testing.assert_array_equal(sums['confusion'], expected)


def factory_info():
  return tagging.base.DataInfo(vocab_size=5, num_outputs=3)


def test_a_run_reports_accuracy_and_seqeval_entity_f1(tmp_path, tagged_files):
  cfg = config(tagged_files, bucket_width=32)        # one batch width: one compile
  cfg.train.num_train_steps = 12
  cfg.optim.learning_rate = 0.05
  del cfg.evals['tags']
  result = loop.train_and_evaluate(cfg, tmp_path / 'run')
  final = result.final[0]
  run = saved_run.load_run(tmp_path / 'run')
  data = tagging.build_data(cfg.data)
  dev = data.eval_sets['dev']
  args, kwargs = tagging.model_inputs(dev)
  predict = jax.jit(lambda params: run.model.apply({'params': params}, *args, **kwargs,
                                                   deterministic=True)['predictions'])
  predicted = np.asarray(predict(jax.tree_util.tree_map(lambda a: a[0], run.params)))
  names = data.preprocessing.target_vocabulary
  truth = [[names[i] for i in dev['labels'][r, :n]] for r, n in enumerate(dev['lengths'])]
  guess = [[names[i] for i in predicted[r, :n]] for r, n in enumerate(dev['lengths'])]
  assert final['eval/entity/entity_f1'] == pytest.approx(seqeval_metrics.f1_score(truth, guess))
  words = np.concatenate([np.array(t) == np.array(g) for t, g in zip(truth, guess)])
  assert final['eval/entity/accuracy'] == pytest.approx(words.mean())
  results = json.loads((tmp_path / 'run' / 'results.json').read_text())
  assert 0 < results['data']['train/padding_fraction'] < 1
  evaluated = run.evaluate(cfg.data.eval_path)
  assert evaluated['eval/entity_f1/entity_f1'] == pytest.approx(final['eval/entity/entity_f1'])


def test_vmapped_seeds_with_bucketed_batches_equal_separate_runs(tmp_path, tagged_files):
  """Each seed draws its own buckets, so the seeds' batches differ in width; stacked side
  by side they are zero-padded to the widest, which changes no seed's training."""
  def run(name, **top):
    cfg = config(tagged_files, bucket_width=6)      # widths 6, 12, 18: a few compiles
    cfg.train.update(num_train_steps=2, log_every_steps=2, checkpoint_every_steps=2)
    cfg.evals.entity.every_steps = 0
    cfg.train.update(best_metric=None, best_mode=None)       # (no evaluation to keep a best of)
    cfg.model.update(crf=False, crf_constraints='none')     # a softmax tagger: less to compile
    cfg.update(top)
    return loop.train_and_evaluate(cfg, tmp_path / name).state.params
  data = tagging.build_data(config(tagged_files, bucket_width=6).data)
  widths = [[next(data.train_batches(seed, step))['inputs'].shape[1] for seed in (0, 1)]
            for step in (0, 1)]
  assert any(a != b for a, b in widths), widths      # the seeds' batches do differ in width
  # The seed whose batch is the narrower one at some step trains on zero-padded batches.
  index = next(seed for a, b in widths for seed, width in enumerate((a, b)) if width < max(a, b))
  both = run('both', num_seeds=2)
  alone = run(f'seed{index}', seed=index)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(np.asarray(a)[index], np.asarray(b)[0],
                                              rtol=1e-5, atol=1e-6), both, alone)


def test_udpos_reads_a_conllu_column(tmp_path):
  conllu = ('# sent_id = 1\n1-2\tdon\'t\t_\t_\t_\t_\t_\t_\t_\t_\n'
            '1\tdo\tdo\tAUX\tVBP\t_\t0\troot\t_\t_\n2\tn\'t\tnot\tPART\tRB\t_\t1\tadvmod\t_\t_\n'
            '3\tgo\tgo\tVERB\tVB\t_\t1\txcomp\t_\t_\n\n')
  (tmp_path / 'a.conllu').write_text(conllu * 10, encoding='utf-8')
  cfg = udpos.get_config('smoke')
  cfg.data.update(train_path=str(tmp_path / 'a.conllu'), eval_path=str(tmp_path / 'a.conllu'))
  data = tagging.build_data(cfg.data)
  assert set(data.preprocessing.target_vocabulary) == {'AUX', 'PART', 'VERB'}
  cfg.data.label_column = 'xpos'
  assert set(tagging.build_data(cfg.data).preprocessing.target_vocabulary) == {'VBP', 'RB', 'VB'}
