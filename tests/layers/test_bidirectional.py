import functools

import jax
import numpy as np
import pytest

import seqnets as sn

B, T, F, H = 3, 6, 4, 5
LENGTHS = np.array([6, 3, 2])
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)


@pytest.fixture
def x():
  return np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)


def make(merge):
  return sn.Bidirectional(sn.RNN(sn.LSTMCell(H)), sn.RNN(sn.GRUCell(H)), merge=merge)


@pytest.mark.parametrize('merge,combine,width', [
    ('concat', lambda a, b: np.concatenate([a, b], -1), 2 * H),
    ('sum', np.add, H),
    ('mul', np.multiply, H),
])
def test_merges_forward_and_time_aligned_backward(x, merge, combine, width):
  bi = make(merge)
  params = bi.init(jax.random.key(0), x, lengths=LENGTHS)
  (carry_f, carry_b), y = bi.apply(params, x, lengths=LENGTHS, return_carry=True)
  assert y.shape == (B, T, width)
  fwd = sn.RNN(sn.LSTMCell(H), return_carry=True)
  bwd = sn.RNN(sn.GRUCell(H), reverse=True, return_carry=True)
  ref_cf, yf = fwd.apply({'params': params['params']['forward']}, x, lengths=LENGTHS)
  ref_cb, yb = bwd.apply({'params': params['params']['backward']}, x, lengths=LENGTHS)
  close(y, combine(np.asarray(yf), np.asarray(yb)))
  jax.tree_util.tree_map(close, (carry_f, carry_b), (ref_cf, ref_cb))


def test_backward_output_at_first_step_has_seen_whole_sequence(x):
  bi = make('concat')
  params = bi.init(jax.random.key(0), x)
  y = bi.apply(params, x, lengths=LENGTHS)
  x2 = x.copy()
  x2[1, 2] += 1.0  # last real step of row 1
  y2 = bi.apply(params, x2, lengths=LENGTHS)
  assert not np.allclose(y[1, 0, H:], y2[1, 0, H:])   # backward half at t=0 changed
  close(y[1, 0, :H], y2[1, 0, :H])                    # forward half at t=0 did not


def test_unknown_merge_names_the_valid_ones(x):
  with pytest.raises(ValueError, match="concat"):
    make('max').init(jax.random.key(0), x)


def test_stacked_equals_manual_composition_and_drops_between_layers(x):
  layers = [sn.RNN(sn.GRUCell(H)), sn.Bidirectional(sn.RNN(sn.ElmanCell(H)), sn.RNN(sn.ElmanCell(H)))]
  stack = sn.StackedRNN(layers, dropout_rate=0.5)
  params = stack.init(jax.random.key(0), x, lengths=LENGTHS, deterministic=True)
  carries, y = stack.apply(params, x, lengths=LENGTHS, return_carry=True, deterministic=True)
  assert y.shape == (B, T, 2 * H) and len(carries) == 2
  h0 = layers[0].apply({'params': params['params']['layers_0']}, x, lengths=LENGTHS)
  ref = layers[1].apply({'params': params['params']['layers_1']}, h0, lengths=LENGTHS)
  close(y, ref)
  dropped = stack.apply(params, x, lengths=LENGTHS, deterministic=False,
                        rngs={'dropout': jax.random.key(1)})
  assert not np.allclose(dropped, y)
  mask = np.asarray(sn.sequence_mask(LENGTHS, T))
  np.testing.assert_array_equal(np.asarray(dropped)[~mask], 0.0)
