"""The precision policy (`model.dtype`, `model.param_dtype`): computation in bfloat16 with
float32 parameters, for every kind of model the factory builds."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from seqnets.layers import fused_scan
from seqnets.models import factory, precision
from seqnets.tasks import DataInfo

INFO = DataInfo(vocab_size=7, num_outputs=5)
RNG = np.random.default_rng(0)
TOKENS, LENGTHS = RNG.integers(1, 7, (2, 5)), np.array([5, 3])
TARGETS, TARGET_LENGTHS = RNG.integers(1, 5, (2, 4)), np.array([4, 2])
LSTM = dict(name='lstm', hidden_size=6)

# name -> (config, example arguments); every model class the factory builds but AlexNet
# (ImageCNN stands for its layers).
MODELS = {
    'recurrent_tagger': (dict(embedding_size=4, cell=LSTM, bidirectional=True), (TOKENS, LENGTHS)),
    'recurrent_lm': (dict(embedding_size=4, cell=dict(name='gru', hidden_size=6)),
                     (TOKENS, LENGTHS)),
    'recurrent_classifier': (dict(embedding_size=4, cell=dict(name='elman', hidden_size=6)),
                             (TOKENS, LENGTHS)),
    'sequence_tagger': (dict(embedding_size=4, cell=LSTM, char_encoder='bilstm',
                             char_embedding_size=3, char_features=2, crf=True),
                        (TOKENS, LENGTHS), dict(chars=RNG.integers(1, 4, (2, 5, 3)),
                                                char_lengths=np.full((2, 5), 2))),
    'text_cnn': (dict(embedding_size=4, filter_widths=(2,), num_filters=3), (TOKENS, LENGTHS)),
    'image_cnn': (dict(features=(3,), kernel_size=(3, 3), dense_features=(4,)),
                  (RNG.normal(size=(2, 8, 8, 1)).astype(np.float32),)),
    'sequence_readout': (dict(cell=LSTM), (RNG.normal(size=(2, 5, 3)).astype(np.float32),
                                           LENGTHS)),
    'recurrent_seq2seq': (dict(embedding_size=4, cell=LSTM, context='attention'),
                          (TOKENS, LENGTHS, TARGETS, TARGET_LENGTHS)),
    'transformer_seq2seq': (dict(model_size=8, num_heads=2, num_layers=1, ff_size=8),
                            (TOKENS, LENGTHS, TARGETS, TARGET_LENGTHS)),
    'image_to_sequence': (dict(cell=dict(name='gru', hidden_size=6), conv_features=(3,),
                               embedding_size=4),
                          (RNG.normal(size=(2, 8, 16, 1)).astype(np.float32), np.array([2, 1]),
                           TARGETS, TARGET_LENGTHS)),
}
INFOS = {'sequence_readout': DataInfo(vocab_size=0, num_outputs=2),
         'sequence_tagger': DataInfo(vocab_size=7, num_outputs=5, char_vocab_size=4),
         'image_cnn': DataInfo(vocab_size=0, num_outputs=3)}


def build(name, **policy):
  settings, *example = MODELS[name]
  args, kwargs = example[0], (example[1] if len(example) > 1 else {})
  config = ml_collections.ConfigDict(dict(name=name, **settings, **policy))
  return factory.from_config(config, INFOS.get(name, INFO)), args, kwargs


def total(outputs):
  """A scalar of every floating output (the tagger returns a dict, some models a tuple)."""
  leaves = [x for x in jax.tree_util.tree_leaves(outputs) if jnp.issubdtype(x.dtype, jnp.floating)]
  return sum(jnp.sum(x.astype(jnp.float32)) for x in leaves)


@pytest.mark.parametrize('name', sorted(MODELS))
def test_bfloat16_computes_every_product_in_bfloat16_from_the_same_float32_params(name):
  model, args, kwargs = build(name, dtype='bfloat16')
  plain, _, _ = build(name)
  key = {'params': jax.random.key(0), 'dropout': jax.random.key(1)}
  # Traced, not run: shapes and dtypes only.
  variables = jax.eval_shape(lambda: model.init(key, *args, **kwargs, deterministic=True))
  reference = jax.eval_shape(lambda: plain.init(key, *args, **kwargs, deterministic=True))
  assert variables == reference     # a checkpoint does not depend on the policy

  def loss(params):
    outputs = model.apply({**variables, 'params': params}, *args, **kwargs, deterministic=False,
                          rngs={'dropout': jax.random.key(2)})
    assert all(x.dtype != jnp.bfloat16 for x in jax.tree_util.tree_leaves(outputs))
    return total(outputs)

  jaxpr = jax.make_jaxpr(jax.value_and_grad(loss))(variables['params'])
  assert precision.matmuls_in(jaxpr, jnp.bfloat16)
  assert precision.matmuls_in(jaxpr, jnp.float32) == []
  assert {str(v.aval.dtype) for v in jaxpr.jaxpr.outvars} == {'float32'}


# bfloat16 keeps 8 significant bits: a one-layer Transformer's gradients (LayerNorm, softmax,
# reductions in bfloat16) come out ~8 % from float32's, a recurrent LM's ~0.7 % (measured).
@pytest.mark.parametrize('name,tolerance', [('recurrent_lm', 0.03), ('transformer_seq2seq', 0.15)])
def test_bfloat16_outputs_and_gradients_follow_the_float32_ones(name, tolerance):
  model, args, kwargs = build(name, dtype='bfloat16')
  plain, _, _ = build(name)
  init = lambda m: jax.jit(lambda: m.init(jax.random.key(0), *args, **kwargs,
                                          deterministic=True))()['params']
  params = init(plain)
  # The same parameters, bit for bit: float32 ones are created as without the policy.
  jax.tree_util.tree_map(np.testing.assert_array_equal, init(model), params)

  def projection(p, m):     # a fixed random direction of the outputs [B, T, V]
    logits = m.apply({'params': p}, *args, **kwargs, deterministic=True)
    return jnp.sum(logits * jnp.asarray(np.random.default_rng(1).normal(size=logits.shape)))

  value, grads = jax.jit(jax.value_and_grad(lambda p: projection(p, model)))(params)
  expected, expected_grads = jax.jit(jax.value_and_grad(lambda p: projection(p, plain)))(params)
  assert abs(float(value) - float(expected)) <= 0.02 * abs(float(expected))
  assert {x.dtype for x in jax.tree_util.tree_leaves(grads)} == {jnp.dtype(jnp.float32)}
  flat = lambda tree: np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(tree)])
  error = np.linalg.norm(flat(grads) - flat(expected_grads))
  assert error <= tolerance * np.linalg.norm(flat(expected_grads))


def test_bfloat16_training_follows_float32_training():
  """Adam on a small language model: the bfloat16 run's losses stay near the float32 run's,
  and both learn."""
  import optax
  tokens = jnp.asarray(np.tile(np.arange(1, 7), (4, 3))[:, :12])     # a cyclic sequence
  lengths = jnp.full((4,), 11)

  def train(model):
    params = model.init(jax.random.key(0), tokens[:, :-1], lengths, deterministic=True)['params']
    tx = optax.adam(0.05)

    def loss(p):
      logits = model.apply({'params': p}, tokens[:, :-1], lengths, deterministic=True)
      return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

    def step(carry, _):
      p, opt = carry
      value, grads = jax.value_and_grad(loss)(p)
      updates, opt = tx.update(grads, opt, p)
      return (optax.apply_updates(p, updates), opt), value
    return jax.jit(lambda: jax.lax.scan(step, (params, tx.init(params)), None, 30)[1])()

  config = dict(name='recurrent_lm', embedding_size=4, cell=dict(name='lstm', hidden_size=8))
  models = {dtype: factory.from_config(ml_collections.ConfigDict(dict(config, dtype=dtype)), INFO)
            for dtype in ('float32', 'bfloat16')}
  losses = {dtype: np.asarray(train(model)) for dtype, model in models.items()}
  assert losses['float32'][-1] < 0.5 * losses['float32'][0]
  np.testing.assert_allclose(losses['bfloat16'], losses['float32'], rtol=0.1, atol=0.05)


def test_param_dtype_stores_the_parameters():
  model, args, kwargs = build('recurrent_lm', dtype='bfloat16', param_dtype='bfloat16')
  params = jax.eval_shape(lambda: model.init(jax.random.key(0), *args, **kwargs,
                                             deterministic=True))['params']
  assert {str(x.dtype) for x in jax.tree_util.tree_leaves(params)} == {'bfloat16'}
  grads = jax.eval_shape(jax.grad(lambda p: total(model.apply({'params': p}, *args, **kwargs,
                                                              deterministic=True))), params)
  assert {str(x.dtype) for x in jax.tree_util.tree_leaves(grads)} == {'bfloat16'}


def test_the_default_policy_is_the_model_class_itself():
  model, _, _ = build('recurrent_lm')
  assert type(model) is factory.MODELS['recurrent_lm'].cls
  assert factory.describe('recurrent_lm')['dtype'] == 'float32'


@pytest.mark.parametrize('key,value', [('dtype', 'float64'), ('param_dtype', 'bf16'),
                                       ('dtype', None)])
def test_bad_dtypes_name_the_key(key, value):
  config = ml_collections.ConfigDict(dict(name='recurrent_lm', embedding_size=4, cell=LSTM,
                                           **{key: value}))
  with pytest.raises(ValueError, match=f'^model.{key}'):
    factory.validate(config)


def test_fused_weight_gradients_accumulate_in_float32():
  """`Σ_rows aᵀ b` over 4,096 bfloat16 rows: a float32 sum of the exact products, where a
  bfloat16 accumulator would stop growing (1 + 1/256 rounds to 1 past 256 rows)."""
  a = jnp.ones((1, 4096, 1), jnp.bfloat16)
  b = jnp.full((1, 4096, 2), 1.0 + 1 / 128, jnp.bfloat16)
  product = fused_scan.matmul_tn(a, b)
  assert product.dtype == jnp.float32
  np.testing.assert_allclose(product, np.full((1, 2), 4096 * (1 + 1 / 128)), rtol=1e-6)
  assert fused_scan.sum_bt(b).dtype == jnp.float32
  np.testing.assert_allclose(fused_scan.sum_bt(b), np.full(2, 4096 * (1 + 1 / 128)), rtol=1e-6)
