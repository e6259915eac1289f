"""`sn.RNN` at its edges: checked and clipped lengths, an empty time axis, cell subclasses that
change the step, and forward-mode autodiff (`fused=False`)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from jax.flatten_util import ravel_pytree

import seqnets as sn
from seqnets.layers import rnn as rnn_module

B, T, F, H = 3, 7, 5, 4
LENGTHS = np.array([7, 4, 1])
CELLS = {
    'elman': lambda: sn.ElmanCell(H),
    'lstm_peep': lambda: sn.LSTMCell(H, use_peepholes=True),
    'gru_after': lambda: sn.GRUCell(H, reset_after=True),
}
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)


@pytest.fixture
def x():
  return np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)


def random_tree(tree, seed, dtype=np.float32):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      treedef, [rng.normal(0, 0.5, np.shape(l)).astype(dtype) for l in leaves])


def python_loop(cell, cell_params, x, lengths, reverse=False):
  """`(final_carry, outputs [B, T, H])`: the cell applied step by step to each row's real steps
  (last to first with `reverse`), outputs 0 past each end."""
  outputs = np.zeros(x.shape[:2] + (H,), np.float32)
  finals = []
  step = jax.jit(cell.apply)
  for b in range(x.shape[0]):
    c = cell.initialize_carry(None, (1, x.shape[-1]))
    steps = range(lengths[b])
    for t in (reversed(steps) if reverse else steps):
      c, y = step({'params': cell_params}, c, x[b:b + 1, t])
      outputs[b, t] = y[0]
    finals.append(c)
  return jax.tree_util.tree_map(lambda *rows: np.concatenate(rows), *finals), outputs


# lengths -----------------------------------------------------------------------------------

def layers():
  return {
      'rnn': sn.RNN(sn.GRUCell(H)),
      'rnn_reverse': sn.RNN(sn.LSTMCell(H), reverse=True),
      'bidirectional': sn.Bidirectional(sn.RNN(sn.LSTMCell(H)), sn.RNN(sn.GRUCell(H))),
      'stacked': sn.StackedRNN([sn.RNN(sn.ElmanCell(H)),
                                sn.Bidirectional(sn.RNN(sn.GRUCell(H)), sn.RNN(sn.GRUCell(H)))]),
  }


@functools.cache
def initialized(name):
  layer = layers()[name]
  return layer, layer.init(jax.random.key(0), np.zeros((B, T, F), np.float32), deterministic=True)


@pytest.mark.parametrize('name', sorted(layers()))
@pytest.mark.parametrize('lengths,message', [
    (np.array([T + 2, 4, 1]), r'lengths must lie in \[0, T\] = \[0, 7\], got lengths\[0\] = 9'),
    (np.array([7, -1, 1]), r'got lengths\[1\] = -1'),
    (np.array([7.0, 4.0, 1.0]), r'lengths must be integers, got dtype float64'),
    (np.array([True, True, False]), r'lengths must be integers, got dtype bool'),
    (np.array([7, 4]), r'lengths must have shape \[B\] = \(3,\).*got shape \(2,\)'),
    (np.array([[7, 4, 1]]), r'lengths must have shape \[B\] = \(3,\).*got shape \(1, 3\)'),
])
def test_concrete_lengths_are_checked(x, name, lengths, message):
  layer, params = initialized(name)
  with pytest.raises(ValueError, match=message):
    layer.apply(params, x, lengths=lengths, deterministic=True)


@pytest.mark.parametrize('name', sorted(layers()))
def test_traced_lengths_are_clipped_to_0_T_and_never_nan(x, name):
  """Under jit the values cannot be checked: a length above T counts as T, a negative one as 0."""
  layer = layers()[name]
  params = layer.init(jax.random.key(0), x, deterministic=True)
  run = lambda p, lengths: layer.apply(p, x, lengths=lengths, deterministic=True)
  got = jax.jit(run)(params, np.array([T + 5, -2, 3]))
  assert np.all(np.isfinite(got))
  close(got, run(params, np.array([T, 0, 3])))
  grads = jax.jit(jax.grad(lambda p, lengths: jnp.sum(run(p, lengths) ** 2)))(
      params, np.array([T + 5, -2, 3]))
  assert all(np.all(np.isfinite(g)) for g in jax.tree_util.tree_leaves(grads))


# T = 0 -------------------------------------------------------------------------------------

def test_empty_time_axis_gives_empty_outputs_and_the_initial_carry():
  x0 = np.zeros((B, 0, F), np.float32)
  rnn = sn.RNN(sn.LSTMCell(H), return_carry=True)
  params = rnn.init(jax.random.key(0), x0)
  reference = rnn.init(jax.random.key(0), np.zeros((B, T, F), np.float32))
  assert jax.tree_util.tree_map(np.shape, params) == jax.tree_util.tree_map(np.shape, reference)
  carry0 = random_tree(sn.LSTMCell(H).initialize_carry(None, (B, F)), seed=1)
  carry, y = rnn.apply(params, x0, initial_carry=carry0)
  assert y.shape == (B, 0, H)
  jax.tree_util.tree_map(np.testing.assert_array_equal, carry, carry0)


@pytest.mark.parametrize('fused', [True, False])
@pytest.mark.parametrize('reverse', [False, True])
def test_empty_time_axis_with_lengths_and_every_option(fused, reverse):
  x0 = np.zeros((B, 0, F), np.float32)
  rnn = sn.RNN(sn.GRUCell(H), reverse=reverse, fused=fused, return_carry=True,
               return_all_carries=True)
  zeros = np.zeros(B, np.int32)
  params = rnn.init(jax.random.key(0), x0, lengths=zeros)
  carry0 = random_tree(np.zeros((B, H)), seed=1)
  carry, carries, y = rnn.apply(params, x0, lengths=zeros, initial_carry=carry0)
  assert y.shape == carries.shape == (B, 0, H)
  np.testing.assert_array_equal(carry, carry0)
  grads = jax.grad(lambda p: jnp.sum(rnn.apply(p, x0, lengths=zeros, initial_carry=carry0)[0]))(
      params)
  assert all(np.all(g == 0) for g in jax.tree_util.tree_leaves(grads))
  with pytest.raises(ValueError, match=r'\[0, 0\], got lengths\[0\] = 1'):
    rnn.apply(params, x0, lengths=np.array([1, 0, 0]))
  bi = sn.Bidirectional(sn.RNN(sn.GRUCell(H), fused=fused), sn.RNN(sn.ElmanCell(H)))
  assert bi.apply(bi.init(jax.random.key(0), x0), x0).shape == (B, 0, 2 * H)


# cell subclasses ---------------------------------------------------------------------------

class DoublingLSTM(sn.LSTMCell):
  """An LSTM whose step doubles h (output and carry): a step the fused kernel does not know."""

  def __call__(self, carry, inputs):
    (c, h), _ = super().__call__(carry, inputs)
    return (c, 2 * h), 2 * h


class DoublingGRU(sn.GRUCell):

  def __call__(self, carry, inputs):
    h, _ = super().__call__(carry, inputs)
    return 2 * h, 2 * h


class DoublingElman(sn.ElmanCell):

  def __call__(self, carry, inputs):
    h, _ = super().__call__(carry, inputs)
    return 2 * h, 2 * h


class WiderForgetBiasLSTM(sn.LSTMCell):
  """Changes a default only: the step is the library's own."""
  forget_bias: float = 3.0


@pytest.mark.parametrize('reverse', [False, True])
@pytest.mark.parametrize('make,base', [(lambda: DoublingLSTM(H), lambda: sn.LSTMCell(H)),
                                       (lambda: DoublingGRU(H), lambda: sn.GRUCell(H)),
                                       (lambda: DoublingElman(H), lambda: sn.ElmanCell(H))])
def test_subclass_overriding_call_runs_its_own_step(x, make, base, reverse):
  rnn = sn.RNN(make(), reverse=reverse, return_carry=True)
  params = rnn.init(jax.random.key(0), x)
  carry, y = rnn.apply(params, x, lengths=LENGTHS)
  ref_carry, ref_y = python_loop(make(), params['params']['cell'], x, LENGTHS, reverse)
  close(y, ref_y)
  jax.tree_util.tree_map(close, carry, ref_carry)
  library_y = sn.RNN(base(), reverse=reverse).apply(params, x, lengths=LENGTHS)
  assert not np.allclose(y, library_y, atol=1e-2)      # the step really differs


def test_fused_kernel_only_for_the_library_step(x, monkeypatch):
  assert rnn_module.uses_fused_kernel(sn.LSTMCell(H))
  assert rnn_module.uses_fused_kernel(WiderForgetBiasLSTM(H))
  assert not rnn_module.uses_fused_kernel(DoublingLSTM(H))
  assert not rnn_module.uses_fused_kernel(nn.GRUCell(H))
  calls = []
  fused_scan = rnn_module.fused_scan
  monkeypatch.setattr(rnn_module, 'fused_scan',
                      lambda *args: calls.append(type(args[0]).__name__) or fused_scan(*args))
  for cell in (WiderForgetBiasLSTM(H), DoublingLSTM(H)):
    rnn = sn.RNN(cell)
    rnn.apply(rnn.init(jax.random.key(0), x), x, lengths=LENGTHS)
  assert calls == ['_LSTMKernel', '_LSTMKernel']   # init and apply of the first cell only


# forward mode and fused=False --------------------------------------------------------------

@pytest.mark.parametrize('reverse', [False, True])
@pytest.mark.parametrize('name', sorted(CELLS))
def test_fused_false_equals_fused(x, name, reverse):
  fused = sn.RNN(CELLS[name](), reverse=reverse, return_carry=True)
  plain = sn.RNN(CELLS[name](), reverse=reverse, return_carry=True, fused=False)
  params = random_tree(fused.init(jax.random.key(0), x), seed=1)
  assert (jax.tree_util.tree_structure(plain.init(jax.random.key(0), x))
          == jax.tree_util.tree_structure(params))
  run = lambda rnn, p, inputs: rnn.apply(p, inputs, lengths=LENGTHS)
  jax.tree_util.tree_map(close, run(plain, params, x), run(fused, params, x))
  loss = lambda rnn, p, inputs: jnp.sum(jnp.tanh(run(rnn, p, inputs)[1]) * x[..., :1])
  grad = lambda rnn: jax.jit(jax.grad(functools.partial(loss, rnn), argnums=(0, 1)))(params, x)
  jax.tree_util.tree_map(close, grad(plain), grad(fused))


@pytest.mark.parametrize('reverse', [False, True])
@pytest.mark.parametrize('name', sorted(CELLS))
def test_jvp_with_fused_false_matches_float64_finite_differences(name, reverse):
  b, t, f = 2, 4, 3
  lengths = np.array([4, 2])
  with jax.enable_x64(True):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(b, t, f))
    cell = CELLS[name]()
    rnn = sn.RNN(cell, reverse=reverse, return_carry=True, fused=False)
    params = random_tree(rnn.init(jax.random.key(0), x), seed=1, dtype=np.float64)
    carry0 = random_tree(cell.initialize_carry(None, (b, f)), seed=2, dtype=np.float64)
    primals = (params, x, carry0)
    tangents = random_tree(primals, seed=3, dtype=np.float64)
    f = lambda p, inputs, c: rnn.apply(p, inputs, lengths=lengths, initial_carry=c)
    _, got = jax.jvp(f, primals, tangents)
    theta, unravel = ravel_pytree(primals)
    direction = ravel_pytree(tangents)[0]
    eps = 1e-6
    value = lambda th: ravel_pytree(f(*unravel(th)))[0]
    want = (value(theta + eps * direction) - value(theta - eps * direction)) / (2 * eps)
    assert np.abs(want).max() > 1e-2
    np.testing.assert_allclose(ravel_pytree(got)[0], want, rtol=1e-6, atol=1e-8)


def test_forward_mode_through_the_fused_kernel_names_fused_false(x):
  rnn = sn.RNN(sn.LSTMCell(H))
  params = rnn.init(jax.random.key(0), x)
  f = lambda inputs: rnn.apply(params, inputs, lengths=LENGTHS)
  for transform in (lambda: jax.jvp(f, (x,), (x,)),
                    lambda: jax.jacfwd(f)(x),
                    lambda: jax.jit(lambda v: jax.jvp(f, (v,), (v,)))(x)):
    with pytest.raises(TypeError, match=r'sn.RNN\(cell, fused=False\)'):
      transform()
  # Reverse mode and forward-over-reverse still work on the fused path.
  grad = jax.grad(lambda inputs: jnp.sum(f(inputs) ** 2))
  _, hvp = jax.jvp(grad, (x,), (x,))
  plain = sn.RNN(sn.LSTMCell(H), fused=False)
  plain_grad = jax.grad(lambda inputs: jnp.sum(plain.apply(params, inputs, lengths=LENGTHS) ** 2))
  np.testing.assert_allclose(hvp, jax.jvp(plain_grad, (x,), (x,))[1], rtol=1e-4, atol=1e-5)
