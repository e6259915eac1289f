"""seqnets and flax recurrent layers inside each other: `flax.linen.Bidirectional(sn.RNN)`,
`sn.Bidirectional(flax.linen.RNN)`, `sn.StackedRNN([flax.linen.RNN])`, and flax's keywords on
`sn.RNN`."""

import functools

import jax
import numpy as np
import pytest
from flax import linen as nn

import seqnets as sn

B, T, F, H = 3, 6, 4, 5
LENGTHS = np.array([6, 3, 0])      # shorter than T, and an empty row
CELL_PAIRS = {
    'seqnets_cells': (lambda: sn.LSTMCell(H, use_peepholes=True), lambda: sn.GRUCell(H)),
    'flax_cells': (lambda: nn.LSTMCell(H), lambda: nn.GRUCell(H)),
}
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)


@pytest.fixture
def x():
  return np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)


def random_tree(tree, seed):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      treedef, [rng.normal(0, 0.5, np.shape(l)).astype(np.float32) for l in leaves])


def native(make_f, make_b):
  return sn.Bidirectional(sn.RNN(make_f()), sn.RNN(make_b()), return_carry=True)


@pytest.mark.parametrize('cells', sorted(CELL_PAIRS))
def test_flax_bidirectional_of_sn_rnn_equals_sn_bidirectional(x, cells):
  make_f, make_b = CELL_PAIRS[cells]
  flax_bi = nn.Bidirectional(sn.RNN(make_f()), sn.RNN(make_b()), return_carry=True)
  params = random_tree(flax_bi.init(jax.random.key(0), x, seq_lengths=LENGTHS), seed=1)
  p = params['params']
  native_params = {'params': {'forward': p['forward_rnn'], 'backward': p['backward_rnn']}}
  carry, y = flax_bi.apply(params, x, seq_lengths=LENGTHS)
  ref_carry, ref_y = native(make_f, make_b).apply(native_params, x, lengths=LENGTHS)
  close(y, ref_y)
  jax.tree_util.tree_map(close, carry, ref_carry)
  # flax passes initial_carry as a pair too.
  init = random_tree(carry, seed=2)
  carry, y = flax_bi.apply(params, x, seq_lengths=LENGTHS, initial_carry=init)
  ref_carry, ref_y = native(make_f, make_b).apply(native_params, x, lengths=LENGTHS,
                                                  initial_carry=init)
  close(y, ref_y)
  jax.tree_util.tree_map(close, carry, ref_carry)


@pytest.mark.parametrize('cells', sorted(CELL_PAIRS))
def test_sn_bidirectional_of_flax_rnn_equals_native(x, cells):
  make_f, make_b = CELL_PAIRS[cells]
  bi = sn.Bidirectional(nn.RNN(make_f()), nn.RNN(make_b()), return_carry=True)
  params = random_tree(bi.init(jax.random.key(0), x, lengths=LENGTHS), seed=1)
  carry, y = bi.apply(params, x, lengths=LENGTHS)
  ref_carry, ref_y = native(make_f, make_b).apply(params, x, lengths=LENGTHS)
  close(y, ref_y)                               # 0 past each end, like sn.RNN
  jax.tree_util.tree_map(close, carry, ref_carry)   # the empty row keeps its initial carry
  init = random_tree(carry, seed=2)
  carry, y = bi.apply(params, x, lengths=LENGTHS, initial_carry=init)
  ref_carry, ref_y = native(make_f, make_b).apply(params, x, lengths=LENGTHS, initial_carry=init)
  close(y, ref_y)
  jax.tree_util.tree_map(close, carry, ref_carry)


def test_stacked_rnn_takes_flax_rnn_layers(x):
  stack = sn.StackedRNN([nn.RNN(sn.GRUCell(H)), sn.RNN(sn.ElmanCell(H))], return_carry=True)
  params = stack.init(jax.random.key(0), x, lengths=LENGTHS, deterministic=True)
  native_stack = sn.StackedRNN([sn.RNN(sn.GRUCell(H)), sn.RNN(sn.ElmanCell(H))],
                               return_carry=True)
  jax.tree_util.tree_map(close, stack.apply(params, x, lengths=LENGTHS, deterministic=True),
                         native_stack.apply(params, x, lengths=LENGTHS, deterministic=True))


def test_sn_rnn_takes_flax_keywords(x):
  rnn = sn.RNN(sn.LSTMCell(H), return_carry=True)
  params = rnn.init(jax.random.key(0), x)
  carry, y = rnn.apply(params, x, lengths=LENGTHS)
  by_flax_names = rnn.apply(params, x, seq_lengths=LENGTHS, init_key=jax.random.key(3))
  jax.tree_util.tree_map(close, by_flax_names, (carry, y))
  with pytest.raises(ValueError, match='lengths or seq_lengths'):
    rnn.apply(params, x, lengths=LENGTHS, seq_lengths=LENGTHS)
  with pytest.raises(ValueError, match=r'seq_lengths must lie in \[0, T\]'):
    rnn.apply(params, x, seq_lengths=LENGTHS + 1)
  # time_major: [T, B, F] in, [T, B, H] out.
  carry_tm, y_tm = rnn.apply(params, x.swapaxes(0, 1), seq_lengths=LENGTHS, time_major=True)
  close(y_tm, np.asarray(y).swapaxes(0, 1))
  jax.tree_util.tree_map(close, carry_tm, carry)
  # keep_order=False with reverse: outputs in reading order, as flax.linen.RNN's default.
  aligned = rnn.apply(params, x, lengths=LENGTHS, reverse=True)[1]
  reading_order = rnn.apply(params, x, lengths=LENGTHS, reverse=True, keep_order=False)[1]
  for b, length in enumerate(LENGTHS):
    close(reading_order[b, :length], np.asarray(aligned)[b, :length][::-1])
