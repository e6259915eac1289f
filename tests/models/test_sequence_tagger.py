"""SequenceTagger and RecurrentClassifier: padding changes nothing, the CRF head is the CRF
layer on the tagger's logits, poolings written out in NumPy, parameter names shared with the
language model, and the factory entries."""

import functools

import jax
import ml_collections
import numpy as np
import pytest

import seqnets as sn
from seqnets.layers.crf import CRF, bio_constraints, freeze_constraints
from seqnets.models import RecurrentClassifier, RecurrentLM, SequenceTagger, factory
from seqnets.tasks import DataInfo

B, T, C, V, K = 3, 6, 5, 20, 4
RNG = np.random.default_rng(0)
LENGTHS = np.array([6, 3, 1], np.int32)
REAL = np.arange(T)[None] < LENGTHS[:, None]
WORDS = np.where(REAL, RNG.integers(2, V, (B, T)), 0).astype(np.int32)
CHAR_LENGTHS = np.where(REAL, RNG.integers(1, C + 1, (B, T)), 0).astype(np.int32)
CHARS = np.where(np.arange(C)[None, None] < CHAR_LENGTHS[..., None],
                 RNG.integers(2, 9, (B, T, C)), 0).astype(np.int32)
TAGS = np.where(REAL, RNG.integers(0, K, (B, T)), 0).astype(np.int32)
NAMES = ('O', 'B-PER', 'I-PER', 'B-LOC')


def tagger(**kwargs):
  settings = dict(cell_fn=functools.partial(sn.LSTMCell, 7), vocab_size=V, num_tags=K,
                  embedding_size=6, char_vocab_size=9, char_encoder='cnn', char_features=3,
                  char_embedding_size=4)
  settings.update(kwargs)
  return SequenceTagger(**settings)


@functools.partial(jax.jit, static_argnums=0)
def _apply(model, variables, words, chars, char_lengths, tags):
  return model.apply(variables, words, LENGTHS, chars=chars, char_lengths=char_lengths, tags=tags,
                     deterministic=True)


def run_tagger(model, variables, words=WORDS, chars=CHARS, char_lengths=CHAR_LENGTHS, tags=TAGS):
  return _apply(model, variables, words, chars, char_lengths, tags)


def init_tagger(model, seed=0):
  return jax.jit(lambda key: model.init(key, WORDS, LENGTHS, chars=CHARS, char_lengths=CHAR_LENGTHS,
                                        tags=TAGS, deterministic=True))(jax.random.key(seed))


@pytest.mark.parametrize('kwargs', [dict(crf=True, crf_constraints=freeze_constraints(
    bio_constraints(NAMES), K)), dict(char_encoder='none', bidirectional=False)])
def test_tagger_padding_changes_nothing(kwargs):
  model = tagger(**kwargs)
  variables = init_tagger(model)
  out = run_tagger(model, variables)
  assert out['logits'].shape == (B, T, K) and out['predictions'].shape == (B, T)
  garbage = lambda x, hi: np.where(np.broadcast_to(REAL.reshape(REAL.shape + (1,) * (x.ndim - 2)),
                                                   x.shape), x, RNG.integers(1, hi, x.shape))
  wider = lambda x: np.concatenate([x, np.zeros((B, 3) + x.shape[2:], x.dtype)], 1)
  for other in (run_tagger(model, variables, garbage(WORDS, V), garbage(CHARS, 9),
                           np.where(REAL, CHAR_LENGTHS, 2), garbage(TAGS, K)),
                run_tagger(model, variables, wider(WORDS), wider(CHARS), wider(CHAR_LENGTHS),
                           wider(TAGS))):
    np.testing.assert_allclose(np.asarray(other['logits'])[:, :T][REAL],
                               np.asarray(out['logits'])[REAL], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(other['predictions'])[:, :T][REAL],
                                  np.asarray(out['predictions'])[REAL])
    if 'log_likelihood' in out:
      np.testing.assert_allclose(other['log_likelihood'], out['log_likelihood'], rtol=1e-5)


def test_crf_head_is_the_crf_layer_on_the_logits():
  allowed = freeze_constraints(bio_constraints(NAMES), K)
  model = tagger(crf=True, crf_constraints=allowed)
  variables = init_tagger(model, 1)
  out = run_tagger(model, variables)
  crf = CRF(K, allowed=allowed)
  crf_vars = {'params': variables['params']['crf']}
  np.testing.assert_allclose(out['log_likelihood'], crf.apply(crf_vars, out['logits'], TAGS,
                                                              LENGTHS, method='log_likelihood'),
                             rtol=1e-6)
  decoded, _ = crf.apply(crf_vars, out['logits'], LENGTHS)
  np.testing.assert_array_equal(out['predictions'], decoded)
  assert 'log_likelihood' not in model.apply(variables, WORDS, LENGTHS, chars=CHARS,
                                             char_lengths=CHAR_LENGTHS, deterministic=True)


@pytest.mark.parametrize('num_layers', [1, 2])
def test_parameter_names_match_the_language_model(num_layers):
  """Every language-model parameter but the output layer has its name in the tagger and the
  classifier, with its shape (except the input of layers above a bidirectional one)."""
  lm = RecurrentLM(cell_fn=functools.partial(sn.LSTMCell, 7), vocab_size=V, embedding_size=6,
                   num_layers=num_layers)
  lm_params = lm.init(jax.random.key(0), WORDS, LENGTHS, deterministic=True)['params']
  for model in (tagger(char_encoder='none', num_layers=num_layers),
                RecurrentClassifier(functools.partial(sn.LSTMCell, 7), V, 2, embedding_size=6,
                                    num_layers=num_layers)):
    params = model.init(jax.random.key(0), WORDS, LENGTHS, deterministic=True)['params']
    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    shapes = {jax.tree_util.keystr(p): v.shape for p, v in flat}
    for path, value in jax.tree_util.tree_flatten_with_path(lm_params)[0]:
      key = jax.tree_util.keystr(path)
      if key.startswith("['output"):
        continue
      wider_input = key.endswith("['input_kernel']") and not key.startswith("['layer0")
      assert shapes[key] == ((2 * value.shape[0], value.shape[1]) if wider_input
                             else value.shape), key
    assert f"['layer{num_layers - 1}_backward_cell']['recurrent_kernel']" in shapes


def classifier_parts(pooling, bidirectional=True):
  model = RecurrentClassifier(functools.partial(sn.GRUCell, 4), V, 3, embedding_size=5,
                              bidirectional=bidirectional, pooling=pooling, attention_size=6)
  variables = jax.jit(lambda key: model.init(key, WORDS, LENGTHS, deterministic=True))(
      jax.random.key(2))
  logits, state = jax.jit(lambda v: model.apply(v, WORDS, LENGTHS, deterministic=True,
                                                capture_intermediates=True,
                                                mutable=['intermediates']))(variables)
  h = np.asarray(state['intermediates']['StackedRNN_0']['__call__'][0])     # [B, T, H]
  return model, variables, np.asarray(logits), h


@pytest.mark.parametrize('pooling', ['final', 'mean', 'max', 'attention'])
def test_classifier_pooling_matches_numpy(pooling):
  model, variables, logits, h = classifier_parts(pooling)
  params = variables['params']
  z = []
  for row, n in enumerate(LENGTHS):
    real = h[row, :n]
    if pooling == 'final':
      z.append(np.concatenate([real[-1, :4], real[0, 4:]]))
    elif pooling == 'mean':
      z.append(real.mean(0))
    elif pooling == 'max':
      z.append(real.max(0))
    else:
      hidden = np.tanh(real @ params['attention_hidden']['kernel']
                       + params['attention_hidden']['bias'])
      scores = (hidden @ params['attention_score']['kernel'])[:, 0] + params[
          'attention_score']['bias'][0]
      alpha = np.exp(scores - scores.max())
      z.append((alpha / alpha.sum()) @ real)
  expected = np.stack(z) @ params['output']['kernel'] + params['output']['bias']
  np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)
  padded = np.concatenate([np.where(REAL, WORDS, 7), RNG.integers(1, V, (B, 2))], 1)
  np.testing.assert_allclose(model.apply(variables, padded, LENGTHS, deterministic=True), logits,
                             rtol=1e-5, atol=1e-6)


def test_unidirectional_final_pooling_is_the_last_real_state():
  _, variables, logits, h = classifier_parts('final', bidirectional=False)
  assert h.shape[-1] == 4
  last = h[np.arange(B), LENGTHS - 1]
  params = variables['params']['output']
  np.testing.assert_allclose(logits, last @ params['kernel'] + params['bias'], rtol=1e-4,
                             atol=1e-5)


def test_factory_builds_both_with_bio_constraints():
  info = DataInfo(vocab_size=V, num_outputs=K, char_vocab_size=9, label_names=NAMES)
  cfg = ml_collections.ConfigDict(dict(
      name='sequence_tagger', cell='lstm', hidden_size=5, embedding_size=6, char_encoder='bilstm',
      crf=True, crf_constraints='bio'))
  model = factory.from_config(cfg, info)
  assert isinstance(model, SequenceTagger) and model.bidirectional
  assert model.crf_constraints == freeze_constraints(bio_constraints(NAMES), K)
  hash(model)
  cfg = ml_collections.ConfigDict(dict(name='recurrent_classifier', cell='gru', hidden_size=5,
                                       embedding_size=6, pooling='attention'))
  assert factory.from_config(cfg, info).pooling == 'attention'
  for bad, field in ((dict(pooling='sum'), 'model.pooling'),
                     (dict(embedding_size=0), 'model.embedding_size')):
    with pytest.raises(ValueError, match=field):
      factory.from_config(ml_collections.ConfigDict({**cfg.to_dict(), **bad}), info)
  with pytest.raises(ValueError, match='model.char_encoder'):
    factory.from_config(ml_collections.ConfigDict(dict(
        name='sequence_tagger', cell='lstm', hidden_size=5, embedding_size=6,
        char_encoder='rnn')), info)
