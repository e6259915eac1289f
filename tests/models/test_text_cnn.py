import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqnets.models import TextCNN
from seqnets.models.text_cnn import pretrained_embedding_init

V, E, N, WIDTHS = 7, 3, 2, (2, 3)
TOKENS = np.array([[1, 2, 3, 4, 0], [5, 6, 0, 0, 0], [3, 0, 0, 0, 0]])
LENGTHS = np.array([4, 2, 1])


def model(channels='rand', **kwargs):
  return TextCNN(vocab_size=V, num_classes=2, embedding_size=E, filter_widths=WIDTHS, num_filters=N,
                 channels=channels, **kwargs)


def reference(params, tokens, lengths):
  """Kim (2014) eq. 2 and max-over-time by loops; sentences zero-padded to max(WIDTHS) words."""
  features = []
  for row, length in zip(tokens, lengths):
    tables = [np.asarray(params[name]['embedding']) for name in ('static_embedding', 'embedding')
              if name in params]
    x = np.zeros((max(length, max(WIDTHS)), E, len(tables)))
    for c, table in enumerate(tables):
      x[:length, :, c] = table[row[:length]]
    row_features = []
    for h in WIDTHS:
      kernel = np.asarray(params[f'conv_w{h}']['kernel'])              # [h, channels·E, N]
      kernel = kernel.reshape(h, len(tables), E, N)                    # channel-major rows
      bias = np.asarray(params[f'conv_w{h}']['bias'])
      c = [np.maximum(np.einsum('hec,hcen->n', x[i:i + h], kernel) + bias, 0)
           for i in range(len(x) - h + 1)]
      row_features.append(np.max(c, axis=0))
    features.append(np.concatenate(row_features))
  return np.asarray(features) @ np.asarray(params['output']['kernel']) + np.asarray(params['output']['bias'])


@pytest.mark.parametrize('channels,tables,in_channels', [
    ('rand', ['embedding'], 1), ('static', ['static_embedding'], 1),
    ('non-static', ['embedding'], 1), ('multichannel', ['embedding', 'static_embedding'], 2)])
def test_matches_loop_reference(channels, tables, in_channels):
  net = model(channels)
  params = net.init(jax.random.key(0), TOKENS, LENGTHS)['params']
  assert sorted(params) == sorted(tables + ['conv_w2', 'conv_w3', 'output'])
  assert params['conv_w3']['kernel'].shape == (3, in_channels * E, N)
  logits = net.apply({'params': params}, TOKENS, LENGTHS)
  assert logits.shape == (3, 2)
  np.testing.assert_allclose(logits, reference(params, TOKENS, LENGTHS), rtol=1e-5, atol=1e-5)


def test_extra_padding_changes_nothing():
  net = model('multichannel')
  params = net.init(jax.random.key(0), TOKENS, LENGTHS)
  garbage = np.random.default_rng(0).integers(0, V, size=(3, 4))
  noisy = np.concatenate([np.where(np.arange(5) < LENGTHS[:, None], TOKENS, 6), garbage], axis=1)
  np.testing.assert_allclose(net.apply(params, noisy, LENGTHS), net.apply(params, TOKENS, LENGTHS),
                             rtol=1e-6)


def test_batches_shorter_than_the_widest_filter():
  net = model()
  params = net.init(jax.random.key(0), TOKENS, LENGTHS)
  short, lengths = TOKENS[:, :2], np.minimum(LENGTHS, 2)
  np.testing.assert_allclose(net.apply(params, short, lengths),
                             reference(params['params'], short, lengths), rtol=1e-5, atol=1e-5)


def test_static_channel_gets_no_gradient():
  net = model('multichannel', dropout_rate=0.5)
  params = net.init(jax.random.key(0), TOKENS, LENGTHS)['params']
  grads = jax.grad(lambda p: jnp.sum(net.apply(
      {'params': p}, TOKENS, LENGTHS, deterministic=False, rngs={'dropout': jax.random.key(1)}) ** 2))(params)
  assert not np.any(grads['static_embedding']['embedding'])
  assert np.any(grads['embedding']['embedding'][TOKENS[0, :4]])


def test_pretrained_embeddings_initialise_every_table():
  table = np.arange(V * E, dtype=np.float32).reshape(V, E) / 10
  params = model('multichannel', embedding_init=pretrained_embedding_init(table)).init(
      jax.random.key(0), TOKENS, LENGTHS)['params']
  np.testing.assert_array_equal(params['embedding']['embedding'], table)
  np.testing.assert_array_equal(params['static_embedding']['embedding'], table)
  with pytest.raises(ValueError, match=r'\(7, 4\)'):
    TextCNN(vocab_size=V, num_classes=2, embedding_size=4,
            embedding_init=pretrained_embedding_init(table)).init(jax.random.key(0), TOKENS, LENGTHS)


def test_bad_config_fails_at_construction():
  with pytest.raises(ValueError, match="channels='dynamic'"):
    model('dynamic')
  with pytest.raises(ValueError, match='filter_widths'):
    TextCNN(vocab_size=V, num_classes=2, filter_widths=())
