"""Pretrained word vectors in a new run's embeddings: every model with a word embedding,
every file format, lowercasing, OOV rows, coverage, the vocabulary from the file, Kim's
static and multichannel variants (the static table bit-identical after training), and
resuming without the file."""

import functools
import gzip
import json

import flax
import jax
import ml_collections
import numpy as np
import pytest

from configs import text_cnn, wnut17
from seqnets.data import word_vectors
from seqnets.models import factory
from seqnets.tasks import base, tagging, text_classification
from seqnets.training import loop, pretrained, saved_run, validation

DIM = 8
VOCAB = ('<pad>', '<unk>', 'good', 'bad', 'movie', 'Film', 'zebra')
FILE_WORDS = ['bad', 'good', 'film', 'the', 'movie', '<unk>', 'good']   # a second 'good': ignored
RNG = np.random.default_rng(0)
FILE_VECTORS = RNG.standard_normal((len(FILE_WORDS), DIM)).astype(np.float32)
FILE_VECTORS_TAGS = RNG.standard_normal((4, DIM)).astype(np.float32)
FILE_ROW = {'good': 1, 'bad': 0, 'movie': 4, 'Film': 2}                  # lowercase: Film -> film


def write_vectors(path, kind='word2vec', words=FILE_WORDS, vectors=FILE_VECTORS, compress=False):
  """A vectors file of `kind` ('word2vec' text with header, 'glove', 'binary')."""
  if kind == 'binary':
    data = f'{len(words)} {vectors.shape[1]}\n'.encode() + b''.join(
        w.encode() + b' ' + v.astype('<f4').tobytes() + b'\n' for w, v in zip(words, vectors))
  else:
    lines = [f'{len(words)} {vectors.shape[1]}'] if kind == 'word2vec' else []
    lines += [w + ' ' + ' '.join(repr(float(x)) for x in v) for w, v in zip(words, vectors)]
    data = ('\n'.join(lines) + '\n').encode()
  path.write_bytes(gzip.compress(data) if compress else data)
  return path


def model_params(name, settings, vocab=VOCAB, target_vocab=('<pad>', '<unk>', 'a', 'b')):
  """(resolved settings, params of 2 seeds `[2, ...]`) of model `name` for `vocab`."""
  resolved = factory.resolve(ml_collections.ConfigDict({'name': name, **settings}))
  seq2seq = name.endswith('seq2seq')
  info = base.DataInfo(vocab_size=len(vocab), num_outputs=len(target_vocab) if seq2seq else 3)
  model = factory.from_config(ml_collections.ConfigDict({'name': name, **settings}), info)
  tokens, lengths = np.array([[2, 3, 4, 5]]), np.array([4])
  args = (tokens, lengths, tokens % len(target_vocab), lengths) if seq2seq else (tokens, lengths)
  init = jax.jit(functools.partial(model.init, deterministic=True))
  seeds = [init(jax.random.key(seed), *args)['params'] for seed in (0, 1)]
  params = jax.tree_util.tree_map(lambda *a: np.stack([np.asarray(x) for x in a]), *seeds)
  return resolved, params


def table(params, path):
  for part in path.split('/'):
    params = params[part]
  return np.asarray(params)


LSTM = dict(cell=dict(name='lstm', hidden_size=4))
MODELS = {    # name: (settings, tables of its source-side embedding)
    'text_cnn': (dict(embedding_size=DIM, num_filters=2, filter_widths=(2,), channels='multichannel'),
                 ['embedding/embedding', 'static_embedding/embedding']),
    'recurrent_classifier': (dict(embedding_size=DIM, **LSTM), ['embed/embedding']),
    'sequence_tagger': (dict(embedding_size=DIM, **LSTM), ['embed/embedding']),
    'recurrent_lm': (dict(embedding_size=DIM, **LSTM), ['embed/embedding']),
    'sequence_readout': (dict(embedding_size=DIM, **LSTM), ['Embed_0/embedding']),
    'recurrent_tagger': (dict(embedding_size=DIM, **LSTM), ['Embed_0/embedding']),
}


def check_rows(before, after, path, vocab, rows, oov='random'):
  """Found words have the file's vector in every seed; `<pad>`, `<unk>` keep the fresh
  values; words not found keep them too ('random') or are zero."""
  old, new = table(before, path), table(after, path)
  for index, word in enumerate(vocab):
    if word in rows:
      for seed in range(2):
        np.testing.assert_array_equal(new[seed, index], FILE_VECTORS[rows[word]])
    elif word in ('<pad>', '<unk>') or oov == 'random':
      np.testing.assert_array_equal(new[:, index], old[:, index])
    else:
      np.testing.assert_array_equal(new[:, index], 0)


@pytest.mark.parametrize('name', sorted(MODELS))
def test_every_model_with_a_word_embedding_gets_the_rows(tmp_path, name):
  settings, tables = MODELS[name]
  path = write_vectors(tmp_path / 'vectors.txt')
  resolved, params = model_params(name, {**settings, 'pretrained_embeddings': str(path),
                                         'pretrained_lowercase': True})
  after, report = pretrained.initialise(resolved, base.Preprocessing(
      base.DataInfo(len(VOCAB), 3), VOCAB), params)
  for path_name in tables:
    check_rows(params, after, path_name, VOCAB, FILE_ROW)
  assert report['pretrained_embeddings']['tables'] == tables
  before_flat, after_flat = (flax.traverse_util.flatten_dict(p) for p in (params, after))
  for key, value in before_flat.items():
    if '/'.join(key) not in tables:
      np.testing.assert_array_equal(after_flat[key], value)


@pytest.mark.parametrize('name,size', [('recurrent_seq2seq', 'embedding_size'),
                                       ('transformer_seq2seq', 'model_size')])
def test_seq2seq_maps_each_side_through_its_own_vocabulary(tmp_path, name, size):
  source_file = write_vectors(tmp_path / 'source.vec')
  target_words = ['b', 'zz', 'a']
  target_vectors = RNG.standard_normal((3, DIM)).astype(np.float32)
  target_file = write_vectors(tmp_path / 'target.bin', 'binary', target_words, target_vectors)
  settings = {size: DIM, 'source_pretrained_embeddings': str(source_file),
              'target_pretrained_embeddings': str(target_file)}
  settings.update(dict(**LSTM) if name == 'recurrent_seq2seq' else
                  dict(num_heads=2, num_layers=1, ff_size=4))
  target_vocab = ('<pad>', '<unk>', 'a', 'b')
  resolved, params = model_params(name, settings, target_vocab=target_vocab)
  preprocessing = base.Preprocessing(base.DataInfo(len(VOCAB), len(target_vocab)), VOCAB,
                                     target_vocabulary=target_vocab)
  after, report = pretrained.initialise(resolved, preprocessing, params)
  check_rows(params, after, 'source_embed/embedding', VOCAB, {'good': 1, 'bad': 0, 'movie': 4})
  new = table(after, 'target_embed/embedding')
  np.testing.assert_array_equal(new[:, 2], np.broadcast_to(target_vectors[2], (2, DIM)))
  np.testing.assert_array_equal(new[:, 3], np.broadcast_to(target_vectors[0], (2, DIM)))
  assert report['source_pretrained_embeddings']['found'] == 3
  assert report['target_pretrained_embeddings']['type_coverage'] == 1.0


@pytest.mark.parametrize('compress', [False, True], ids=['plain', 'gzip'])
@pytest.mark.parametrize('kind', ['word2vec', 'glove', 'binary'])
def test_every_file_format_gives_the_same_rows(tmp_path, kind, compress):
  path = write_vectors(tmp_path / 'vectors', kind, compress=compress)
  resolved, params = model_params('recurrent_classifier', {
      'embedding_size': DIM, 'pretrained_embeddings': str(path), 'pretrained_oov': 'zero', **LSTM})
  after, report = pretrained.initialise(resolved, base.Preprocessing(
      base.DataInfo(len(VOCAB), 3), VOCAB), params)
  check_rows(params, after, 'embed/embedding', VOCAB, {'good': 1, 'bad': 0, 'movie': 4}, 'zero')
  assert report['pretrained_embeddings']['format'] == kind
  assert report['pretrained_embeddings']['found'] == 3     # 'Film' not as written


def test_coverage_of_types_and_training_tokens(tmp_path):
  path = write_vectors(tmp_path / 'vectors.txt')
  resolved, params = model_params('recurrent_classifier', {
      'embedding_size': DIM, 'pretrained_embeddings': str(path), 'pretrained_lowercase': True,
      **LSTM})
  #        <pad> <unk> good bad movie Film zebra
  counts = np.array([0, 10, 30, 20, 5, 15, 20])
  _, report = pretrained.initialise(resolved, base.Preprocessing(
      base.DataInfo(len(VOCAB), 3), VOCAB), params, {'source': counts})
  entry = report['pretrained_embeddings']
  assert entry['vocabulary_words'] == 5 and entry['found'] == 4
  assert entry['type_coverage'] == 4 / 5                 # zebra missing
  assert entry['training_tokens'] == 100
  assert entry['token_coverage'] == (30 + 20 + 5 + 15) / 100   # <unk> and zebra tokens are not
  assert pretrained.summary_items(report) == {
      'pretrained_embeddings/type_coverage': 0.8, 'pretrained_embeddings/token_coverage': 0.7}


def test_init_time_keys_belong_to_models_with_a_word_embedding_and_never_reach_the_module():
  assert {'pretrained_embeddings', 'pretrained_lowercase', 'pretrained_oov'} <= set(
      factory.describe('sequence_tagger'))
  assert {'source_pretrained_embeddings', 'target_pretrained_embeddings'} <= set(
      factory.describe('transformer_seq2seq'))
  with pytest.raises(ValueError, match=r'model\.pretrained_embeddings is not a setting of model '
                                       r"'image_cnn'"):
    factory.resolve(ml_collections.ConfigDict(dict(name='image_cnn', pretrained_embeddings='v')))
  with pytest.raises(ValueError, match=r"model\.pretrained_oov='x'; valid: \['random', 'zero'\]"):
    factory.resolve(ml_collections.ConfigDict(dict(name='text_cnn', pretrained_oov='x')))
  with pytest.raises(ValueError, match=r'model\.pretrained_embeddings needs a word embedding: '
                                       r'model\.embedding_size is 0'):
    factory.resolve(ml_collections.ConfigDict(dict(name='sequence_readout', pretrained_embeddings='v',
                                                   **LSTM)))
  model = factory.from_config(ml_collections.ConfigDict(dict(
      name='text_cnn', pretrained_embeddings='absent.txt', pretrained_lowercase=True)),
      base.DataInfo(5, 2))
  assert not hasattr(model, 'pretrained_embeddings')     # no file read when a module is built


# --- Runs: text_cnn's Kim variants on a small TSV ----------------------------------------

def sentence_files(tmp_path):
  rows = ['sentence\tlabel'] + [
      f'{"a good movie" if i % 2 else "a bad film"} number{i % 5}\t{i % 2}' for i in range(24)]
  (tmp_path / 'train.tsv').write_text('\n'.join(rows) + '\n')
  (tmp_path / 'dev.tsv').write_text('\n'.join(rows[:5] + ['a zebra and the movie\t1']) + '\n')
  return tmp_path / 'train.tsv', tmp_path / 'dev.tsv'


def kim_config(tmp_path, mode, vectors, steps=3):
  train, dev = sentence_files(tmp_path)
  config = text_cnn.get_config(f'{mode}-smoke')
  config.data.update(train_path=str(train), eval_path=str(dev))
  config.model.update(filter_widths=(2,), pretrained_embeddings=str(vectors))
  config.train.update(num_train_steps=steps, log_every_steps=steps, checkpoint_every_steps=steps)
  config.evals.dev.every_steps = 0
  return config


def seed0(tree):
  return jax.tree_util.tree_map(lambda a: np.asarray(a[0]), tree)


@pytest.mark.parametrize('mode', ['static', 'multichannel'])
def test_a_static_channel_stays_bit_identical_in_training(tmp_path, mode):
  vectors = write_vectors(tmp_path / 'vectors.bin', 'binary', compress=True)
  result = loop.train_and_evaluate(kim_config(tmp_path, mode, vectors), tmp_path / 'run')
  params = seed0(result.state.params)
  vocab = saved_run.load_run(tmp_path / 'run').preprocessing.vocabulary
  static = params['static_embedding']['embedding']
  for word, row in (('good', 1), ('bad', 0), ('movie', 4), ('film', 2)):
    np.testing.assert_array_equal(static[vocab.index(word)], FILE_VECTORS[row])
  if mode == 'multichannel':             # the trained channel started there and moved
    trained = params['embedding']['embedding'][vocab.index('good')]
    assert not np.array_equal(trained, FILE_VECTORS[1])
    np.testing.assert_allclose(trained, FILE_VECTORS[1], atol=0.05)
  else:
    assert 'embedding' not in params
  results = json.loads((tmp_path / 'run' / 'results.json').read_text())
  # 'a' and 'numberK' are not in the file: 4 of 10 words; 'good'/'bad', 'movie'/'film' tokens
  assert results['data']['pretrained_embeddings/type_coverage'] == 4 / 10
  assert results['data']['pretrained_embeddings/token_coverage'] == 48 / 96
  report = json.loads((tmp_path / 'run' / 'pretrained_embeddings.json').read_text())
  assert report['pretrained_embeddings']['format'] == 'binary'


def test_non_static_trains_the_vectors_and_a_resume_never_reads_the_file(tmp_path):
  vectors = write_vectors(tmp_path / 'vectors.txt', 'glove')
  config = kim_config(tmp_path, 'non-static', vectors, steps=2)
  first = loop.train_and_evaluate(config, tmp_path / 'run')
  vectors.unlink()                                       # a resume must not need it
  config.train.num_train_steps = 4
  second = loop.train_and_evaluate(config, tmp_path / 'run')
  assert second.step == 4
  assert not np.array_equal(seed0(second.state.params)['embedding']['embedding'],
                            seed0(first.state.params)['embedding']['embedding'])
  results = json.loads((tmp_path / 'run' / 'results.json').read_text())
  assert results['data']['pretrained_embeddings/type_coverage'] == 4 / 10    # kept from the start


def test_the_vocabulary_from_the_file_and_evaluating_without_it(tmp_path):
  words = ['bad', 'good', 'film', 'the', 'movie', 'Zebra', 'U.S.', 'New_York', 'good']
  vectors = write_vectors(tmp_path / 'vectors.txt', 'word2vec', words,
                          RNG.standard_normal((len(words), DIM)).astype(np.float32))
  config = kim_config(tmp_path, 'static', vectors, steps=1)
  config.data.vocabulary_from = 'pretrained'
  loop.train_and_evaluate(config, tmp_path / 'run')
  run = saved_run.load_run(tmp_path / 'run')
  vocab = run.preprocessing.vocabulary
  # after the training words: the file's words the tokenizer gives as one token, lowercased
  assert vocab[-3:] == ('the', 'zebra', 'new_york') and len(vocab) == 2 + 10 + 3
  results = json.loads((tmp_path / 'run' / 'results.json').read_text())
  assert results['data']['vocabulary/from_pretrained'] == 3
  assert results['data']['pretrained_embeddings/type_coverage'] == 7 / 13
  static = seed0(run.params)['static_embedding']['embedding']
  found = word_vectors.read(vectors)
  np.testing.assert_array_equal(static[vocab.index('zebra')], found.vectors[words.index('Zebra')])
  vectors.unlink()                                       # evaluating a file needs no vectors
  assert 'eval/classification/accuracy' in run.evaluate(eval_file=str(tmp_path / 'dev.tsv'))


def test_pretrained_max_words_takes_the_files_first_words(tmp_path):
  train, dev = sentence_files(tmp_path)
  words = ['bad', 'good', 'film', 'the', 'movie', 'zebra']
  vectors = write_vectors(tmp_path / 'vectors.txt', 'glove', words, FILE_VECTORS[:6])
  cfg = text_cnn.get_config('static-smoke').data
  cfg.update(train_path=str(train), eval_path=str(dev), vocabulary_from='pretrained',
             pretrained_max_words=4)
  data = text_classification.build_data(cfg, vectors_file=str(vectors))
  vocab = data.preprocessing.vocabulary
  assert vocab[-1] == 'the' and 'zebra' not in vocab
  assert data.summary['vocabulary/from_pretrained'] == 1
  counts = data.token_counts['source']
  assert counts.sum() == 96 and counts[vocab.index('a')] == 24 and counts[vocab.index('the')] == 0
  dev_ids = data.eval_sets['dev']['inputs'][-1]          # 'a zebra and the movie'
  assert vocab[dev_ids[3]] == 'the' and dev_ids[1] == 1  # 'zebra': <unk>


def test_tagging_vocabulary_from_the_file(tmp_path, tagged_files):
  train, dev = tagged_files
  vectors = write_vectors(tmp_path / 'vectors.txt', 'glove', ['Rome', 'paris', 'Smith', 'rome'],
                          FILE_VECTORS_TAGS)
  config = wnut17.get_config('smoke')
  config.data.update(train_path=str(train), eval_path=str(dev), vocabulary_from='pretrained',
                     lowercase=True)
  config.model.update(char_encoder='none', pretrained_embeddings=str(vectors),
                      pretrained_lowercase=True)
  validation.validate(config)
  data = pretrained.build_data(tagging.TASK, config)
  vocab = data.preprocessing.vocabulary
  assert vocab[-1] == 'paris' and vocab.count('rome') == 1       # the file's words, lowercased
  assert data.summary['vocabulary/from_pretrained'] == 1
  settings = factory.resolve(config.model)
  model = factory.from_config(config.model, data.info)
  words, lengths = np.array([[2, 3]]), np.array([2])
  params = jax.tree_util.tree_map(lambda a: np.asarray(a)[None], model.init(
      jax.random.key(0), words, lengths, deterministic=True)['params'])
  after, report = pretrained.initialise(settings, data.preprocessing, params, data.token_counts)
  embedding = after['embed']['embedding'][0]
  for word, row in (('paris', 1), ('rome', 3), ('smith', 2)):     # 'rome' as written wins
    np.testing.assert_array_equal(embedding[vocab.index(word)], FILE_VECTORS_TAGS[row])
  entry = report['pretrained_embeddings']
  assert entry['found'] == 3 and entry['training_tokens'] == data.summary['train/words']


def test_config_errors_name_the_key_and_the_file(tmp_path):
  vectors = write_vectors(tmp_path / 'vectors.txt')
  config = kim_config(tmp_path, 'multichannel', vectors)
  config.model.embedding_size = 6
  with pytest.raises(validation.ConfigError, match=r'config\.model\.embedding_size=6 does not '
                     r'match the 8-dimensional vectors of \S+vectors\.txt \(model\.'
                     r'pretrained_embeddings\); set model\.embedding_size=8'):
    loop.train_and_evaluate(config, tmp_path / 'run')
  assert not (tmp_path / 'run' / 'preprocessing.json').exists()     # before any data load
  config = kim_config(tmp_path, 'multichannel', tmp_path / 'absent.txt')
  with pytest.raises(validation.ConfigError, match=r'config\.model\.pretrained_embeddings: '
                                                   r'\S+absent\.txt: no such file'):
    loop.train_and_evaluate(config, tmp_path / 'run')
  (tmp_path / 'bad.txt').write_text('2 8\nthe ' + '1 ' * 7 + '1\nfilm 1 2\n')
  config = kim_config(tmp_path, 'multichannel', tmp_path / 'bad.txt')
  with pytest.raises(validation.ConfigError, match=r'config\.model\.pretrained_embeddings: '
                                                   r'\S+bad\.txt:3: expected 8 numbers, got 2'):
    loop.train_and_evaluate(config, tmp_path / 'run2')


def test_the_default_vectors_file_says_how_to_get_it(tmp_path, monkeypatch):
  monkeypatch.setenv('SEQNETS_DATA_DIR', str(tmp_path / 'root'))
  config = kim_config(tmp_path, 'static', text_cnn.VECTORS)
  with pytest.raises(validation.ConfigError, match=r'config\.model\.pretrained_embeddings: data '
                     r'file word2vec/GoogleNews-vectors-negative300\.bin\.gz is missing under '
                     r'the data root .*code\.google\.com/archive/p/word2vec'):
    loop.train_and_evaluate(config, tmp_path / 'run')


def test_data_keys_are_checked_against_the_model():
  config = text_cnn.get_config('static-smoke')
  config.data.vocabulary_from = 'pretrained'
  config.model.pretrained_embeddings = ''
  with pytest.raises(validation.ConfigError, match=r"config\.data\.vocabulary_from='pretrained' "
                                                   r'needs config\.model\.pretrained_embeddings'):
    validation.validate(config)
  config = text_cnn.get_config('static-smoke')
  config.data.pretrained_max_words = 10
  with pytest.raises(validation.ConfigError, match=r"data\.pretrained_max_words=10 applies with "
                                                   r"data\.vocabulary_from='pretrained' only"):
    validation.validate(config)
  config.data.vocabulary_from = 'file'
  with pytest.raises(validation.ConfigError, match=r"data\.vocabulary_from='file'; valid: "
                                                   r"\['train', 'pretrained'\]"):
    validation.validate(config)
