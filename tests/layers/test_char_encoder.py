import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqnets.layers.char_encoder import CharWordEncoder

VOCAB, EMB, FEAT = 12, 5, 4
KINDS = ('bilstm', 'cnn')
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)

# Two sentences of three words; the second sentence's last word is padding.
LENGTHS = np.array([[3, 1, 4], [2, 4, 0]], np.int32)


def make_chars(lengths, width, rng, garbage=False):
  """Left-aligned random ids in [1, VOCAB) for each word; past the length 0 or garbage."""
  chars = rng.integers(1, VOCAB, size=lengths.shape + (width,)).astype(np.int32)
  if not garbage:
    chars[np.arange(width) >= lengths[..., None]] = 0
  return chars


def init(module, chars, lengths):
  return module.init(jax.random.key(0), chars, lengths)


@pytest.fixture
def chars():
  return make_chars(LENGTHS, 5, np.random.default_rng(0))


@pytest.mark.parametrize('kind,width', [('bilstm', 2 * FEAT), ('cnn', FEAT)])
def test_output_shape_and_size(chars, kind, width):
  module = CharWordEncoder(VOCAB, EMB, kind=kind, features=FEAT)
  params = init(module, chars, LENGTHS)
  y = module.apply(params, chars, LENGTHS)
  assert y.shape == (2, 3, width) and module.output_size == width
  assert y.dtype == jnp.float32
  assert np.all(np.asarray(y)[1, 2] == 0)                    # the padding word
  assert np.all(np.abs(np.asarray(y)[LENGTHS > 0]).sum(-1) > 0)


@pytest.mark.parametrize('kind', KINDS)
def test_padding_never_changes_a_result(chars, kind):
  module = CharWordEncoder(VOCAB, EMB, kind=kind, features=FEAT, kernel_size=3)
  params = init(module, chars, LENGTHS)
  base = np.asarray(module.apply(params, chars, LENGTHS))
  rng = np.random.default_rng(1)

  # Garbage ids past each word's length (including ids outside the vocabulary).
  garbage = chars.copy()
  past = np.arange(5) >= LENGTHS[..., None]
  garbage[past] = rng.integers(0, 3 * VOCAB, size=past.sum())
  close(module.apply(params, garbage, LENGTHS), base)

  # Wider C (extra padding characters) and wider T (extra padding words with garbage).
  wide = rng.integers(0, VOCAB, size=(2, 6, 9)).astype(np.int32)
  wide[:, :3, :5] = garbage
  wide_lengths = np.zeros((2, 6), np.int32)
  wide_lengths[:, :3] = LENGTHS
  y = np.asarray(module.apply(params, wide, wide_lengths))
  close(y[:, :3], base)
  assert np.all(y[wide_lengths == 0] == 0)                    # exact zeros

  # Under jit (traced lengths) too.
  close(jax.jit(module.apply)(params, wide, wide_lengths), y)


@pytest.mark.parametrize('kind', KINDS)
def test_same_word_same_vector_anywhere(kind):
  rng = np.random.default_rng(2)
  lengths = np.array([[3, 2, 1, 4], [4, 3, 2, 3]], np.int32)
  chars = make_chars(lengths, 6, rng)
  word = np.array([7, 2, 9], np.int32)
  for b, t in [(0, 0), (1, 1), (1, 3)]:
    chars[b, t, :3] = word
  module = CharWordEncoder(VOCAB, EMB, kind=kind, features=FEAT)
  params = init(module, chars, lengths)
  y = np.asarray(module.apply(params, chars, lengths))
  close(y[1, 1], y[0, 0])
  close(y[1, 3], y[0, 0])
  assert not np.allclose(y[0, 1], y[0, 0])


def embed_masked(embedding, chars, lengths):
  """[N, C, E] embeddings with zeros past each length (ids there never read)."""
  mask = np.arange(chars.shape[-1])[None, :] < lengths[:, None]
  return np.where(mask[..., None], embedding[np.where(mask, chars, 0)], 0.0), mask


@pytest.mark.parametrize('kernel_size', [2, 3])
def test_cnn_matches_numpy_reference(chars, kernel_size):
  module = CharWordEncoder(VOCAB, EMB, kind='cnn', features=FEAT, kernel_size=kernel_size)
  params = init(module, chars, LENGTHS)
  p = jax.tree_util.tree_map(np.asarray, params['params'])
  kernel, bias = p['conv']['kernel'], p['conv']['bias']            # [K, E, F], [F]
  width = chars.shape[-1]
  x, mask = embed_masked(p['embed']['embedding'], chars.reshape(-1, width), LENGTHS.reshape(-1))
  low = (kernel_size - 1) // 2                                     # 'SAME': zeros before/after
  expected = np.zeros((x.shape[0], FEAT))
  for n in range(x.shape[0]):
    length = LENGTHS.reshape(-1)[n]
    if length == 0:
      continue
    z = np.full((width, FEAT), bias, np.float64)
    for k in range(width):
      for j in range(kernel_size):
        src = k + j - low
        if 0 <= src < width:
          z[k] += x[n, src] @ kernel[j]
    expected[n] = np.tanh(z)[:length].max(axis=0)
  y = module.apply(params, chars, LENGTHS)
  close(np.asarray(y).reshape(-1, FEAT), expected)


def numpy_lstm(p, xs):
  """Final h of the LSTM equations (gate order i, f, g, o) over xs [n, E]."""
  sigmoid = lambda a: 1 / (1 + np.exp(-a))
  hidden = p['recurrent_kernel'].shape[0]
  c, h = np.zeros(hidden), np.zeros(hidden)
  for x in xs:
    z_i, z_f, z_g, z_o = np.split(x @ p['input_kernel'] + h @ p['recurrent_kernel'] + p['bias'], 4)
    c = sigmoid(z_f) * c + sigmoid(z_i) * np.tanh(z_g)
    h = sigmoid(z_o) * np.tanh(c)
  return h


def test_bilstm_matches_numpy_reference(chars):
  module = CharWordEncoder(VOCAB, EMB, kind='bilstm', features=FEAT)
  params = init(module, chars, LENGTHS)
  p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params['params'])
  width = chars.shape[-1]
  x, _ = embed_masked(p['embed']['embedding'], chars.reshape(-1, width), LENGTHS.reshape(-1))
  expected = np.zeros((x.shape[0], 2 * FEAT))
  for n, length in enumerate(LENGTHS.reshape(-1)):
    if length:
      word = x[n, :length]
      expected[n] = np.concatenate([numpy_lstm(p['bilstm']['forward']['cell'], word),
                                    numpy_lstm(p['bilstm']['backward']['cell'], word[::-1])])
  y = module.apply(params, chars, LENGTHS)
  close(np.asarray(y).reshape(-1, 2 * FEAT), expected)
  # The two directions have their own parameters.
  assert not np.allclose(p['bilstm']['forward']['cell']['input_kernel'],
                         p['bilstm']['backward']['cell']['input_kernel'])


@pytest.mark.parametrize('kind', KINDS)
def test_dropout_only_when_not_deterministic(chars, kind):
  module = CharWordEncoder(VOCAB, EMB, kind=kind, features=FEAT, dropout_rate=0.5)
  params = init(module, chars, LENGTHS)
  plain = CharWordEncoder(VOCAB, EMB, kind=kind, features=FEAT).apply(params, chars, LENGTHS)
  close(module.apply(params, chars, LENGTHS), plain)
  close(module.apply(params, chars, LENGTHS, deterministic=True), plain)
  dropped = module.apply(params, chars, LENGTHS, deterministic=False,
                         rngs={'dropout': jax.random.key(1)})
  other = module.apply(params, chars, LENGTHS, deterministic=False,
                       rngs={'dropout': jax.random.key(2)})
  assert not np.allclose(dropped, plain) and not np.allclose(dropped, other)
  assert np.all(np.asarray(dropped)[1, 2] == 0)
  # Rate 0 is the identity in training mode as well.
  no_rate = CharWordEncoder(VOCAB, EMB, kind=kind, features=FEAT)
  close(no_rate.apply(params, chars, LENGTHS, deterministic=False,
                      rngs={'dropout': jax.random.key(1)}), plain)


@pytest.mark.parametrize('kind', KINDS)
def test_gradients_finite_with_padding_words(chars, kind):
  module = CharWordEncoder(VOCAB, EMB, kind=kind, features=FEAT)
  params = init(module, chars, LENGTHS)
  grads = jax.grad(lambda v: jnp.sum(module.apply(v, chars, LENGTHS) ** 2))(params)
  leaves = jax.tree_util.tree_leaves(grads)
  assert all(np.all(np.isfinite(g)) for g in leaves)
  # Only ids of real characters get gradient (here id 0 sits only in the padding).
  embedding_grad = np.asarray(grads['params']['embed']['embedding'])
  assert np.all(embedding_grad[0] == 0)


def test_bad_kind_names_valid_ones(chars):
  with pytest.raises(ValueError, match=r"kind='gru'.*'bilstm'.*'cnn'"):
    init(CharWordEncoder(VOCAB, EMB, kind='gru', features=FEAT), chars, LENGTHS)


def test_bad_lengths(chars):
  module = CharWordEncoder(VOCAB, EMB, kind='cnn', features=FEAT)
  with pytest.raises(ValueError, match='char_lengths'):
    init(module, chars, np.array([[3, 1, 6], [2, 4, 0]], np.int32))     # 6 > C = 5
  with pytest.raises(ValueError, match='char_lengths'):
    init(module, chars, LENGTHS[:, :2])
