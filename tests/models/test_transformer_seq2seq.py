"""The Transformer encoder-decoder: the teacher-forced pass equals step-by-step decoding with the
key/value cache (what greedy and beam search run); causality; padding changes nothing;
sinusoidal positions; scheduled sampling; errors; the factory entry."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from seqnets.decoding import decode_arrays
from seqnets.models import TransformerSeq2Seq, factory
from seqnets.models.transformer import sinusoidal_positions
from seqnets.tasks import DataInfo

B, S, T, V = 3, 6, 5, 9
RNG = np.random.default_rng(0)
SOURCE_LENGTHS = np.array([6, 4, 1], np.int32)
SOURCE = np.where(np.arange(S)[None] < SOURCE_LENGTHS[:, None], RNG.integers(4, V, (B, S)),
                  0).astype(np.int32)
TARGET_LENGTHS = np.array([5, 3, 2], np.int32)
TARGET_INPUTS = np.where(np.arange(T)[None] < TARGET_LENGTHS[:, None], RNG.integers(4, V, (B, T)),
                         0).astype(np.int32)
TARGET_INPUTS[:, 0] = 2


def make(**kwargs):
  settings = dict(model_size=8, num_heads=2, num_layers=1, ff_size=16, dropout_rate=0.0)
  settings.update(kwargs)
  return TransformerSeq2Seq(V, V, **settings)


def init(model):
  return model.init(jax.random.key(0), SOURCE, SOURCE_LENGTHS, TARGET_INPUTS, TARGET_LENGTHS,
                    deterministic=True)


def forward(model, variables, source=SOURCE, target_inputs=TARGET_INPUTS):
  return np.asarray(model.apply(variables, source, SOURCE_LENGTHS, target_inputs, TARGET_LENGTHS,
                                deterministic=True))


@pytest.mark.parametrize('kwargs,max_length', [
    (dict(positions='sinusoidal', num_layers=2), T),
    (dict(positions='learned', max_positions=8, num_layers=2), T + 3),
    (dict(positions='sinusoidal', tie_target_embeddings=True), T + 1),
])
def test_teacher_forcing_equals_step_by_step_decoding(kwargs, max_length):
  model = make(**kwargs)
  variables = init(model)
  logits = forward(model, variables)
  assert logits.shape == (B, T, V)
  encoded = model.apply(variables, SOURCE, SOURCE_LENGTHS, method='encode')
  assert encoded['memory'].shape == (B, S, 8) and encoded['mask'].dtype == jnp.bool_
  carry = model.apply(variables, encoded, max_length, method='initial_carry')
  assert all(leaf.shape[0] == B for leaf in jax.tree_util.tree_leaves((encoded, carry)))
  step = jax.jit(lambda carry, tokens: model.apply(variables, encoded, carry, tokens,
                                                   method='step'))
  for t in range(T):
    carry, log_probs, weights = step(carry, TARGET_INPUTS[:, t])
    assert log_probs.dtype == jnp.float32 and weights.shape == (B, S)
    source_real = np.arange(S)[None] < SOURCE_LENGTHS[:, None]
    np.testing.assert_allclose(np.asarray(weights).sum(1), 1.0, rtol=1e-5)
    assert np.all(np.asarray(weights)[~source_real] == 0)
    real = t < TARGET_LENGTHS
    np.testing.assert_allclose(np.asarray(log_probs)[real],
                               np.asarray(jax.nn.log_softmax(logits[:, t]))[real],
                               rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(carry[1], T)


def test_decode_is_the_teacher_forced_pass_and_keeps_the_carry():
  model = make()
  variables = init(model)
  encoded = model.apply(variables, SOURCE, SOURCE_LENGTHS, method='encode')
  carry = model.apply(variables, encoded, T, method='initial_carry')
  same, weights, logits = model.apply(variables, encoded, carry, TARGET_INPUTS, TARGET_LENGTHS,
                                      method='decode')
  assert weights is None and same is carry
  np.testing.assert_allclose(logits, forward(model, variables), rtol=1e-6)


@pytest.mark.parametrize('positions', ['sinusoidal', 'learned'])
def test_causal(positions):
  model = make(positions=positions)
  variables = init(model)
  logits = forward(model, variables)
  for t in range(1, T):
    changed = TARGET_INPUTS.copy()
    changed[:, t:] = RNG.integers(4, V, (B, T - t))
    other = forward(model, variables, target_inputs=changed)
    np.testing.assert_allclose(other[:, :t], logits[:, :t], rtol=1e-5, atol=1e-6)
    assert not np.allclose(other[:, t:], logits[:, t:])


@pytest.mark.parametrize('positions', ['sinusoidal', 'learned'])
def test_padding_changes_nothing(positions):
  model = make(positions=positions)
  variables = init(model)
  logits = forward(model, variables)
  padded_source = np.concatenate([SOURCE, RNG.integers(4, V, (B, 4), dtype=np.int32)], 1)
  garbage_source = np.where(np.arange(S)[None] < SOURCE_LENGTHS[:, None], SOURCE,
                            RNG.integers(4, V, (B, S))).astype(np.int32)
  for source in (padded_source, garbage_source):
    np.testing.assert_allclose(forward(model, variables, source=source), logits, atol=1e-5)
  padded_target = np.concatenate([TARGET_INPUTS, RNG.integers(4, V, (B, 3), dtype=np.int32)], 1)
  longer = forward(model, variables, target_inputs=padded_target)
  np.testing.assert_allclose(longer[:, :T], logits, atol=1e-5)          # padded positions too
  garbage_target = np.where(np.arange(T)[None] < TARGET_LENGTHS[:, None], TARGET_INPUTS,
                            RNG.integers(4, V, (B, T))).astype(np.int32)
  real = np.arange(T)[None] < TARGET_LENGTHS[:, None]
  np.testing.assert_allclose(forward(model, variables, target_inputs=garbage_target)[real],
                             logits[real], atol=1e-5)
  encoded = model.apply(variables, padded_source, SOURCE_LENGTHS, method='encode')
  padding = ~(np.arange(S + 4)[None] < SOURCE_LENGTHS[:, None])
  assert np.all(np.asarray(encoded['memory'])[padding] == 0)


@pytest.mark.parametrize('length,d', [(7, 8), (50, 16), (3, 5)])
def test_sinusoidal_positions_match_numpy(length, d):
  expected = np.zeros((length, d))
  for pos in range(length):
    for i in range(d):
      angle = pos / 10000 ** (2 * (i // 2) / d)
      expected[pos, i] = np.sin(angle) if i % 2 == 0 else np.cos(angle)
  table = sinusoidal_positions(length, d)
  assert table.shape == (length, d) and table.dtype == jnp.float32
  np.testing.assert_allclose(table, expected, rtol=1e-5, atol=1e-6)


def test_sinusoidal_model_inputs_are_scaled_embeddings_plus_positions():
  model = make()
  variables = init(model)
  x = model.apply(variables, 'source', SOURCE, deterministic=True,
                  method=lambda m, *a, **k: m._inputs(*a, **k))
  table = variables['params']['source_embed']['embedding']
  np.testing.assert_allclose(x, np.sqrt(8) * np.asarray(table)[SOURCE]
                             + np.asarray(sinusoidal_positions(S, 8))[None], rtol=1e-5, atol=1e-6)


def test_scheduled_sampling_feeds_the_first_pass_predictions():
  model = make()
  variables = init(model)
  run = lambda p: model.apply(variables, SOURCE, SOURCE_LENGTHS, TARGET_INPUTS, TARGET_LENGTHS,
                              deterministic=False, sampling_probability=p,
                              rngs={'dropout': jax.random.key(3)})
  teacher = forward(model, variables)
  np.testing.assert_allclose(run(jnp.zeros((B, 1))), teacher, rtol=1e-6)
  predicted = np.asarray(jnp.argmax(teacher, -1))
  mixed = np.concatenate([TARGET_INPUTS[:, :1], predicted[:, :-1]], 1)
  expected = forward(model, variables, target_inputs=mixed)
  np.testing.assert_allclose(run(jnp.ones((B, 1))), expected, rtol=1e-5, atol=1e-6)


def test_dropout_is_active_in_training_only():
  model = make(dropout_rate=0.5)
  variables = init(model)
  train = jax.jit(lambda key: model.apply(variables, SOURCE, SOURCE_LENGTHS, TARGET_INPUTS,
                                          TARGET_LENGTHS, deterministic=False,
                                          rngs={'dropout': jax.random.key(key)}))
  assert not np.allclose(train(1), train(2))
  np.testing.assert_array_equal(forward(model, variables), forward(model, variables))


def test_greedy_search_follows_its_own_teacher_forced_arg_max():
  model = make()
  variables = init(model)
  result = decode_arrays(model, variables['params'], SOURCE, SOURCE_LENGTHS, max_length=6,
                         bos_id=2, eos_id=3)
  tokens, lengths = np.asarray(result.tokens[:, 0]), np.asarray(result.lengths[:, 0])
  assert tokens.shape == (B, 6)
  inputs = np.concatenate([np.full((B, 1), 2, np.int32), tokens[:, :-1]], 1)
  logits = model.apply(variables, SOURCE, SOURCE_LENGTHS, inputs, lengths, deterministic=True)
  real = np.arange(6)[None] < lengths[:, None]
  np.testing.assert_array_equal(np.argmax(logits, -1)[real], tokens[real])
  beams = decode_arrays(model, variables['params'], SOURCE, SOURCE_LENGTHS, max_length=6,
                        bos_id=2, eos_id=3, beam_size=2)
  assert beams.tokens.shape == (B, 2, 6) and beams.extras.shape == (B, 2, 6, S)


def test_errors():
  model = make()
  variables = init(model)
  encoded = model.apply(variables, SOURCE, SOURCE_LENGTHS, method='encode')
  with pytest.raises(ValueError, match='max_length'):
    model.apply(variables, encoded, method='initial_carry')
  with pytest.raises(ValueError, match='max_length'):
    model.apply(variables, encoded, 0, method='initial_carry')
  learned = make(positions='learned', max_positions=4)
  with pytest.raises(ValueError, match='max_positions=4'):
    init(learned)
  short = make(positions='learned', max_positions=T + 1)
  short_variables = short.init(jax.random.key(0), SOURCE[:, :T], SOURCE_LENGTHS.clip(0, T),
                               TARGET_INPUTS, TARGET_LENGTHS, deterministic=True)
  short_encoded = short.apply(short_variables, SOURCE[:, :T], SOURCE_LENGTHS.clip(0, T),
                              method='encode')
  with pytest.raises(ValueError, match='max_positions'):
    short.apply(short_variables, short_encoded, T + 2, method='initial_carry')
  with pytest.raises(ValueError, match='model_size=10.*num_heads=3'):
    init(make(model_size=10, num_heads=3))
  with pytest.raises(ValueError, match="positions='rotary'"):
    init(make(positions='rotary'))


INFO = DataInfo(vocab_size=9, num_outputs=9)


def transformer_cfg(**kwargs):
  base = dict(name='transformer_seq2seq', model_size=8, num_heads=2, num_layers=1, ff_size=16,
              dropout_rate=0.0, positions='sinusoidal')
  base.update(kwargs)
  return ml_collections.ConfigDict(base)


@pytest.mark.parametrize('kwargs', [{}, dict(positions='learned', max_positions=16,
                                             tie_target_embeddings=True)])
def test_factory_builds_the_transformer(kwargs):
  model = factory.from_config(transformer_cfg(**kwargs), INFO)
  assert isinstance(model, TransformerSeq2Seq)
  assert (model.model_size, model.num_heads, model.num_layers, model.ff_size) == (8, 2, 1, 16)
  assert model.positions == kwargs.get('positions', 'sinusoidal')
  params = init(model)['params']
  assert ('output' in params) != kwargs.get('tie_target_embeddings', False)
  assert ('source_positions' in params) == (model.positions == 'learned')
  assert forward(model, {'params': params}).shape == (B, T, 9)


@pytest.mark.parametrize('bad,field', [
    (dict(model_size=0), 'model.model_size'),
    (dict(num_heads=2.0), 'model.num_heads'),
    (dict(num_layers=None), 'model.num_layers'),
    (dict(ff_size=True), 'model.ff_size'),
    (dict(dropout_rate=1.0), 'model.dropout_rate'),
    (dict(positions='rotary'), 'model.positions'),
    (dict(max_positions=0), 'model.max_positions'),
    (dict(tie_target_embeddings='yes'), 'model.tie_target_embeddings'),
    (dict(model_size=10, num_heads=4), r'^model\.model_size=10 must be divisible by num_heads=4'),
    (dict(cell=dict(name='lstm', hidden_size=8)),
     r"^model\.cell is not a setting of model 'transformer_seq2seq'"),
    (dict(hidden_size=8), r"^model\.hidden_size is not a setting of model 'transformer_seq2seq'"),
])
def test_factory_rejects_bad_fields(bad, field):
  with pytest.raises(ValueError, match=field):
    factory.from_config(transformer_cfg(**bad), INFO)
