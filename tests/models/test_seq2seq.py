"""The recurrent encoder-decoder: every context variant; the teacher-forced pass equals step-by-step
decoding (what greedy and beam search run); source padding changes nothing; scheduled sampling."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import ml_collections
import pytest

import seqnets as sn
from seqnets.models import factory
from seqnets.models.seq2seq import RecurrentSeq2Seq
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

VARIANTS = [
    dict(context='initial'),
    dict(context='every_step', bidirectional=True),
    dict(context='attention', placement='bahdanau', score='additive'),
    dict(context='attention', placement='luong', score='general', bidirectional=True),
    dict(context='attention', placement='luong', score='dot', bridge=False),
]


def make(cell=sn.LSTMCell, **kwargs):
  return RecurrentSeq2Seq(functools.partial(cell, 8), functools.partial(cell, 8), V, V,
                          embedding_size=4, **kwargs)


def init(model):
  return jax.jit(functools.partial(model.init, deterministic=True))(
      jax.random.key(0), SOURCE, SOURCE_LENGTHS, TARGET_INPUTS, TARGET_LENGTHS)


def apply(model, *args, **static):
  """`model.apply(*args, **static)` compiled as one program (keyword arguments fixed)."""
  return jax.jit(functools.partial(model.apply, **static))(*args)


@pytest.mark.parametrize('kwargs,cell', [(kwargs, sn.LSTMCell) for kwargs in VARIANTS]
                         + [(VARIANTS[2], sn.GRUCell), (VARIANTS[3], sn.ElmanCell)])
def test_teacher_forcing_equals_step_by_step_decoding(kwargs, cell):
  model = make(cell, **kwargs)
  variables = init(model)
  logits = apply(model, variables, SOURCE, SOURCE_LENGTHS, TARGET_INPUTS, TARGET_LENGTHS,
                       deterministic=True)
  assert logits.shape == (B, T, V)
  encoded = apply(model, variables, SOURCE, SOURCE_LENGTHS, method='encode')
  carry = apply(model, variables, encoded, method='initial_carry')
  step = jax.jit(lambda carry, tokens: model.apply(variables, encoded, carry, tokens, method='step'))
  for t in range(T):
    carry, log_probs, weights = step(carry, TARGET_INPUTS[:, t])
    real = t < TARGET_LENGTHS
    np.testing.assert_allclose(np.asarray(log_probs)[real],
                               np.asarray(jax.nn.log_softmax(logits[:, t]))[real],
                               rtol=1e-4, atol=1e-5)
    if kwargs['context'] == 'attention':
      np.testing.assert_allclose(np.asarray(weights).sum(-1), 1, rtol=1e-5)
      assert np.all(np.asarray(weights)[~(np.arange(S)[None] < SOURCE_LENGTHS[:, None])] == 0)


@pytest.mark.parametrize('kwargs', VARIANTS)
def test_padding_the_source_changes_nothing(kwargs):
  model = make(**kwargs)
  variables = init(model)
  logits = apply(model, variables, SOURCE, SOURCE_LENGTHS, TARGET_INPUTS, TARGET_LENGTHS,
                       deterministic=True)
  padded = np.concatenate([SOURCE, RNG.integers(4, V, (B, 4), dtype=np.int32)], 1)
  longer = apply(model, variables, padded, SOURCE_LENGTHS, TARGET_INPUTS, TARGET_LENGTHS,
                       deterministic=True)
  np.testing.assert_allclose(longer, logits, rtol=1e-5, atol=1e-6)


def test_initial_context_sees_the_source_only_through_the_initial_state():
  model = make(context='initial')
  variables = init(model)
  encoded = apply(model, variables, SOURCE, SOURCE_LENGTHS, method='encode')
  carry = apply(model, variables, encoded, method='initial_carry')
  other = jax.tree_util.tree_map(lambda a: a + 100.0, encoded)       # every source state changed
  _, _, logits = apply(model, variables, other, carry, TARGET_INPUTS, TARGET_LENGTHS,
                             method='decode')
  _, _, same = apply(model, variables, encoded, carry, TARGET_INPUTS, TARGET_LENGTHS,
                           method='decode')
  np.testing.assert_array_equal(logits, same)


def test_scheduled_sampling_feeds_the_first_pass_predictions():
  model = make(context='attention')
  variables = init(model)
  run = lambda p: apply(model, variables, SOURCE, SOURCE_LENGTHS, TARGET_INPUTS, TARGET_LENGTHS,
                              deterministic=False, sampling_probability=p,
                              rngs={'dropout': jax.random.key(3)})
  teacher = apply(model, variables, SOURCE, SOURCE_LENGTHS, TARGET_INPUTS, TARGET_LENGTHS,
                        deterministic=True)
  np.testing.assert_allclose(run(jnp.zeros((B, 1))), teacher, rtol=1e-6)
  predicted = np.asarray(jnp.argmax(teacher, -1))
  mixed = np.concatenate([TARGET_INPUTS[:, :1], predicted[:, :-1]], 1)
  expected = apply(model, variables, SOURCE, SOURCE_LENGTHS, mixed, TARGET_LENGTHS,
                         deterministic=True)
  np.testing.assert_allclose(run(jnp.ones((B, 1))), expected, rtol=1e-5, atol=1e-6)


def test_errors():
  with pytest.raises(ValueError, match="context='global'"):
    init(make(context='global'))
  with pytest.raises(ValueError, match=r"score='dot' needs the encoder states \(16\) and the "
                                       r"decoder state \(8\) of one size"):
    init(make(context='attention', score='dot', bidirectional=True))


def test_factory_builds_the_decoder_cell_at_decoder_hidden_size():
  config = ml_collections.ConfigDict(dict(
      name='recurrent_seq2seq', cell=dict(name='gru', hidden_size=8, reset_after=True),
      embedding_size=4, context='attention', score='general', decoder_hidden_size=6))
  model = factory.from_config(config, DataInfo(vocab_size=V, num_outputs=V))
  encoder, decoder = model.encoder_cell_fn(), model.decoder_cell_fn()
  assert (type(encoder), encoder.features, encoder.reset_after) == (sn.GRUCell, 8, True)
  assert (type(decoder), decoder.features, decoder.reset_after) == (sn.GRUCell, 6, True)
  assert init(model)['params'] is not None
  config.decoder_hidden_size = 0                       # 0: the encoder's size
  assert factory.from_config(config, DataInfo(vocab_size=V, num_outputs=V)).decoder_cell_fn().features == 8
  config.cell.activation = 'tanh'
  with pytest.raises(ValueError, match=r"^model\.cell\.activation is not a setting of the 'gru' cell"):
    factory.validate(config)
