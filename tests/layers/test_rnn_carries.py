"""Carries in and out: a checked `initial_carry` for `sn.RNN`, `sn.Bidirectional` and
`sn.StackedRNN`, and the per-step carries of `sn.RNN(return_all_carries=True)`."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn

B, T, F, H = 3, 6, 4, 5
LENGTHS = np.array([6, 3, 0])
CELLS = {
    'elman_relu': lambda: sn.ElmanCell(H, activation_fn=jax.nn.relu),
    'lstm_peep': lambda: sn.LSTMCell(H, use_peepholes=True),
    'gru': lambda: sn.GRUCell(H),
}
close = functools.partial(np.testing.assert_allclose, rtol=2e-5, atol=2e-6)


@pytest.fixture
def x():
  return np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)


def random_tree(tree, seed):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      treedef, [rng.normal(0, 0.5, np.shape(l)).astype(np.float32) for l in leaves])


def python_loop(cell, cell_params, x, lengths, carry, reverse=False):
  """`(final_carry, all_carries, outputs)` from the cell applied step by step to each row's real
  steps (last to first with `reverse`): `all_carries[b, t]` is the carry after step t, the final
  one past each end; outputs are 0 past each end."""
  steps_total = x.shape[1]
  carry = jax.tree_util.tree_map(np.asarray, carry)
  outputs = np.zeros(x.shape[:2] + (H,), np.float32)
  stacked = jax.tree_util.tree_map(lambda a: np.zeros((a.shape[0], steps_total) + a.shape[1:],
                                                      np.float32), carry)
  finals = []
  step = jax.jit(cell.apply)
  for b in range(x.shape[0]):
    c = jax.tree_util.tree_map(lambda a: a[b:b + 1], carry)
    steps = range(lengths[b])
    for t in (reversed(steps) if reverse else steps):
      c, y = step({'params': cell_params}, c, x[b:b + 1, t])
      outputs[b, t] = y[0]
      jax.tree_util.tree_map(lambda buf, v: buf.__setitem__((b, t), v[0]), stacked, c)
    for t in range(lengths[b], steps_total):
      jax.tree_util.tree_map(lambda buf, v: buf.__setitem__((b, t), v[0]), stacked, c)
    finals.append(c)
  final = jax.tree_util.tree_map(lambda *rows: np.concatenate(rows), *finals)
  return final, stacked, outputs


# initial_carry checks ----------------------------------------------------------------------

@pytest.mark.parametrize('fused', [True, False])
@pytest.mark.parametrize('given,message', [
    (lambda: (np.zeros((B, H + 1), np.float32),) * 2,
     r'initial_carry has a different shape than LSTMCell\'s carry: '
     r'expected \(float32\[3, 5\], float32\[3, 5\]\), got \(float32\[3, 6\], float32\[3, 6\]\)'),
    (lambda: (np.zeros((B + 1, H), np.float32),) * 2, r'different shape.*got \(float32\[4, 5\]'),
    (lambda: np.zeros((B, H), np.float32),
     r'initial_carry has a different structure than LSTMCell\'s carry: '
     r'expected \(float32\[3, 5\], float32\[3, 5\]\), got float32\[3, 5\]'),
    (lambda: [np.zeros((B, H), np.float32)] * 2, r'different structure.*got \[float32'),
    (lambda: (np.zeros((B, H), np.int32),) * 2,
     r'initial_carry has a different dtype.*got \(int32\[3, 5\], int32\[3, 5\]\)'),
])
def test_wrong_initial_carry_names_it_with_both_structures(x, fused, given, message):
  rnn = sn.RNN(sn.LSTMCell(H), fused=fused)
  params = rnn.init(jax.random.key(0), x)
  with pytest.raises(ValueError, match=message):
    rnn.apply(params, x, lengths=LENGTHS, initial_carry=given())


def test_bidirectional_and_stacked_check_their_initial_carry(x):
  bi = sn.Bidirectional(sn.RNN(sn.LSTMCell(H)), sn.RNN(sn.GRUCell(H)))
  params = bi.init(jax.random.key(0), x)
  gru_carry = np.zeros((B, H), np.float32)
  with pytest.raises(ValueError, match=r'initial_carry must be a pair.*got ndarray'):
    bi.apply(params, x, initial_carry=gru_carry)
  with pytest.raises(ValueError, match=r'pair.*got tuple of length 3'):
    bi.apply(params, x, initial_carry=(None, None, None))
  with pytest.raises(ValueError, match=r'initial_carry has a different structure than GRUCell'):
    bi.apply(params, x, initial_carry=(None, (gru_carry, gru_carry)))
  stack = sn.StackedRNN([sn.RNN(sn.GRUCell(H)), sn.RNN(sn.GRUCell(H))])
  params = stack.init(jax.random.key(0), x, deterministic=True)
  with pytest.raises(ValueError, match=r'a sequence of 2 carries.*got 1 entries'):
    stack.apply(params, x, initial_carry=[gru_carry], deterministic=True)


# return_all_carries ------------------------------------------------------------------------

@pytest.mark.parametrize('fused', [True, False])
@pytest.mark.parametrize('reverse', [False, True])
@pytest.mark.parametrize('name', sorted(CELLS))
def test_all_carries_equal_python_loop(x, name, reverse, fused):
  rnn = sn.RNN(CELLS[name](), reverse=reverse, fused=fused, return_carry=True,
               return_all_carries=True)
  params = random_tree(rnn.init(jax.random.key(0), x), seed=1)
  carry0 = random_tree(CELLS[name]().initialize_carry(None, (B, F)), seed=2)
  carry, carries, y = rnn.apply(params, x, lengths=LENGTHS, initial_carry=carry0)
  ref_carry, ref_carries, ref_y = python_loop(CELLS[name](), params['params']['cell'], x, LENGTHS,
                                              carry0, reverse)
  close(y, ref_y)
  jax.tree_util.tree_map(close, carry, ref_carry)
  jax.tree_util.tree_map(close, carries, ref_carries)
  assert jax.tree_util.tree_map(np.shape, carries) == jax.tree_util.tree_map(
      lambda a: (B, T, H), carry0)
  # Only the per-step carries: (carries, outputs); the attribute and the call argument agree.
  only = sn.RNN(CELLS[name](), reverse=reverse, fused=fused).apply(
      params, x, lengths=LENGTHS, initial_carry=carry0, return_all_carries=True)
  jax.tree_util.tree_map(close, only, (carries, y))


@pytest.mark.parametrize('reverse', [False, True])
@pytest.mark.parametrize('name', sorted(CELLS))
def test_gradients_through_all_carries_fused_equal_plain_scan(x, name, reverse):
  """The hand-written backward pass takes the per-step carries' cotangents too."""
  make = lambda fused: sn.RNN(CELLS[name](), reverse=reverse, fused=fused, return_carry=True,
                              return_all_carries=True)
  params = random_tree(make(True).init(jax.random.key(0), x), seed=1)
  carry0 = random_tree(CELLS[name]().initialize_carry(None, (B, F)), seed=2)
  weights = random_tree(jax.tree_util.tree_map(lambda a: np.zeros((B, T) + a.shape[1:]), carry0),
                        seed=3)

  def loss(fused, p, inputs, c0):
    carry, carries, y = make(fused).apply(p, inputs, lengths=LENGTHS, initial_carry=c0)
    per_step = sum(jnp.sum(jnp.tanh(c) * w) for c, w in zip(jax.tree_util.tree_leaves(carries),
                                                             jax.tree_util.tree_leaves(weights)))
    return per_step + jnp.sum(y ** 2) + sum(jnp.sum(c) for c in jax.tree_util.tree_leaves(carry))

  got = jax.jit(jax.grad(functools.partial(loss, True), argnums=(0, 1, 2)))(params, x, carry0)
  want = jax.jit(jax.grad(functools.partial(loss, False), argnums=(0, 1, 2)))(params, x, carry0)
  jax.tree_util.tree_map(close, got, want)


def test_wrappers_take_the_final_carry_of_a_layer_set_to_return_all_carries(x):
  bi = sn.Bidirectional(sn.RNN(sn.GRUCell(H), return_all_carries=True),
                        sn.RNN(sn.GRUCell(H), return_all_carries=True))
  params = bi.init(jax.random.key(0), x)
  plain = sn.Bidirectional(sn.RNN(sn.GRUCell(H)), sn.RNN(sn.GRUCell(H)))
  jax.tree_util.tree_map(close, bi.apply(params, x, lengths=LENGTHS, return_carry=True),
                         plain.apply(params, x, lengths=LENGTHS, return_carry=True))


# Bidirectional and StackedRNN initial carries ----------------------------------------------

@pytest.mark.parametrize('backward_given', [True, False])
def test_bidirectional_initial_carry_pair_is_used(x, backward_given):
  bi = sn.Bidirectional(sn.RNN(sn.LSTMCell(H)), sn.RNN(sn.GRUCell(H)), return_carry=True)
  params = bi.init(jax.random.key(0), x)
  init_f = random_tree(sn.LSTMCell(H).initialize_carry(None, (B, F)), seed=1)
  init_b = random_tree(np.zeros((B, H)), seed=2) if backward_given else None
  (carry_f, carry_b), y = bi.apply(params, x, lengths=LENGTHS, initial_carry=(init_f, init_b))
  ref_cf, _, ref_yf = python_loop(sn.LSTMCell(H), params['params']['forward']['cell'], x,
                                  LENGTHS, init_f)
  ref_cb, _, ref_yb = python_loop(sn.GRUCell(H), params['params']['backward']['cell'], x, LENGTHS,
                                  np.zeros((B, H)) if init_b is None else init_b, reverse=True)
  close(y, np.concatenate([ref_yf, ref_yb], axis=-1))
  jax.tree_util.tree_map(close, (carry_f, carry_b), (ref_cf, ref_cb))
  # return_carry=False on the call gives the outputs only.
  close(bi.apply(params, x, lengths=LENGTHS, initial_carry=(init_f, init_b), return_carry=False),
        y)


def test_stacked_initial_carries_let_a_sequence_run_in_chunks(x):
  stack = sn.StackedRNN([sn.RNN(sn.LSTMCell(H)), sn.RNN(sn.GRUCell(H))], return_carry=True)
  params = stack.init(jax.random.key(0), x, deterministic=True)
  carries, y = stack.apply(params, x, deterministic=True)
  carries1, y1 = stack.apply(params, x[:, :2], deterministic=True)
  carries2, y2 = stack.apply(params, x[:, 2:], initial_carry=carries1, deterministic=True)
  close(np.concatenate([y1, y2], axis=1), y)
  jax.tree_util.tree_map(close, carries2, carries)


def test_stacked_passes_each_layer_its_initial_carry(x):
  layers = [sn.RNN(sn.ElmanCell(H)), sn.Bidirectional(sn.RNN(sn.GRUCell(H)),
                                                      sn.RNN(sn.LSTMCell(H)))]
  stack = sn.StackedRNN(layers)
  params = stack.init(jax.random.key(0), x, deterministic=True)
  init0 = random_tree(np.zeros((B, H)), seed=1)
  init1 = (random_tree(np.zeros((B, H)), seed=2),
           random_tree(sn.LSTMCell(H).initialize_carry(None, (B, H)), seed=3))
  carries, y = stack.apply(params, x, lengths=LENGTHS, initial_carry=[init0, init1],
                           return_carry=True, deterministic=True)
  p = params['params']
  ref_c0, _, h0 = python_loop(sn.ElmanCell(H), p['layers_0']['cell'], x, LENGTHS, init0)
  ref_cf, _, yf = python_loop(sn.GRUCell(H), p['layers_1']['forward']['cell'], h0, LENGTHS,
                              init1[0])
  ref_cb, _, yb = python_loop(sn.LSTMCell(H), p['layers_1']['backward']['cell'], h0, LENGTHS,
                              init1[1], reverse=True)
  close(y, np.concatenate([yf, yb], axis=-1))
  jax.tree_util.tree_map(close, carries, (ref_c0, (ref_cf, ref_cb)))
  # A None entry is that layer's default carry.
  _, y_default = stack.apply(params, x, lengths=LENGTHS, initial_carry=(None, init1),
                             return_carry=True, deterministic=True)
  _, _, h0_default = python_loop(sn.ElmanCell(H), p['layers_0']['cell'], x, LENGTHS,
                                 np.zeros((B, H), np.float32))
  close(y_default, layers[1].apply({'params': p['layers_1']}, h0_default, lengths=LENGTHS,
                                   initial_carry=init1))
