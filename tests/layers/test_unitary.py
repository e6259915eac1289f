"""`UnitaryRNNCell` against a NumPy transcription that builds W as a dense matrix."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

import seqnets as sn
from seqnets.layers.unitary import UnitaryRNNCell, unitary_matmul

B, T, F, N = 3, 5, 3, 6
LENGTHS = np.array([5, 2, 0])
close = functools.partial(np.testing.assert_allclose, rtol=2e-5, atol=2e-5)


def random_params(module, seed, *args, **kwargs):
  """`module.init(key, *args, **kwargs)` with N(0, 0.5) leaves (traced only, not run)."""
  shapes = jax.eval_shape(functools.partial(module.init, jax.random.key(0), *args, **kwargs))
  leaves, treedef = jax.tree_util.tree_flatten(shapes)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      treedef, [rng.normal(0, 0.5, l.shape).astype(np.float32) for l in leaves])


def numpy_w(p, permutation):
  """W = D3 R2 F⁻¹ D2 Π R1 F D1 as a dense complex matrix."""
  p = {name: np.asarray(value, np.float64) for name, value in p.items()}
  n = len(permutation)
  k = np.arange(n)
  dft = np.exp(-2j * np.pi * np.outer(k, k) / n) / np.sqrt(n)
  diagonal = lambda theta: np.diag(np.exp(1j * theta))

  def reflection(j):
    v = p[f'reflection{j}_re'] + 1j * p[f'reflection{j}_im']
    return np.eye(n) - 2 * np.outer(v, v.conj()) / np.vdot(v, v).real

  pi = np.eye(n)[permutation]
  return (diagonal(p['theta3']) @ reflection(2) @ dft.conj().T @ diagonal(p['theta2']) @ pi
          @ reflection(1) @ dft @ diagonal(p['theta1']))


def numpy_step(p, permutation, carry, x, epsilon=1e-5):
  p = {name: np.asarray(value, np.float64) for name, value in p.items()}
  n = len(permutation)
  h = carry[..., :n] + 1j * carry[..., n:]
  v = p['input_kernel_re'] + 1j * p['input_kernel_im']
  z = h @ numpy_w(p, permutation).T + x @ v
  modulus = np.sqrt(np.abs(z) ** 2 + epsilon ** 2)
  new_h = z * np.maximum(modulus + p['bias'], 0) / modulus
  return np.concatenate([new_h.real, new_h.imag], axis=-1)


def numpy_rnn(p, permutation, x, lengths, reverse=False):
  """`(final_carry, outputs)` row by row over the real steps, outputs 0 past each end."""
  batch, steps = x.shape[:2]
  carry = np.zeros((batch, 2 * len(permutation)))
  outputs = np.zeros((batch, steps, 2 * len(permutation)))
  for b in range(batch):
    order = range(lengths[b])[::-1] if reverse else range(lengths[b])
    for t in order:
      carry[b] = numpy_step(p, permutation, carry[b], x[b, t])
      outputs[b, t] = carry[b]
  return carry, outputs


def test_w_is_unitary_and_equals_the_dense_product():
  cell = UnitaryRNNCell(N)
  p = cell.init(jax.random.key(0), F, method=cell.cell_params)['params']
  rng = np.random.default_rng(0)
  h = (rng.normal(size=(4, N)) + 1j * rng.normal(size=(4, N))).astype(np.complex64)
  apply_w = jax.jit(lambda p, h: unitary_matmul(p, h, cell.permutation()))
  wh = np.asarray(apply_w(p, h))
  close(np.linalg.norm(wh, axis=-1), np.linalg.norm(h, axis=-1))
  w = numpy_w(p, cell.permutation())
  np.testing.assert_allclose(w.conj().T @ w, np.eye(N), atol=1e-12)
  close(wh, h @ w.T)
  assert np.abs(wh - h).max() > 0.5                      # not the identity


def test_permutation_is_a_fixed_function_of_the_seed():
  permutation = UnitaryRNNCell(N).permutation()
  np.testing.assert_array_equal(np.sort(permutation), np.arange(N))
  assert (permutation != np.arange(N)).any()
  np.testing.assert_array_equal(UnitaryRNNCell(N, permutation_seed=0).permutation(), permutation)
  assert (UnitaryRNNCell(N, permutation_seed=1).permutation() != permutation).any()
  params = jax.eval_shape(lambda: UnitaryRNNCell(N).init(jax.random.key(0), F,
                                                          method='cell_params'))['params']
  assert sorted(params) == sorted(
      ['bias', 'input_kernel_im', 'input_kernel_re', 'reflection1_im', 'reflection1_re',
       'reflection2_im', 'reflection2_re', 'theta1', 'theta2', 'theta3'])   # Π is no param


def test_step_matches_numpy_and_carry_is_zeros():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(B, F)).astype(np.float32)
  carry = rng.normal(size=(B, 2 * N)).astype(np.float32)
  cell = UnitaryRNNCell(N)
  p = random_params(cell, 2, F, method=cell.cell_params)['params']
  new_carry, y = jax.jit(cell.apply)({'params': p}, carry, x)
  want = numpy_step(p, cell.permutation(), carry, x)
  close(new_carry, want)
  np.testing.assert_array_equal(new_carry, y)
  assert (want == 0).any() and (want != 0).any()        # modReLU both cuts and passes units
  zeros = cell.initialize_carry(None, (2, 4, F))
  assert zeros.shape == (2, 4, 2 * N) and zeros.dtype == jnp.float32
  np.testing.assert_array_equal(zeros, 0)


def test_rnn_padding_invariance_and_gradients():
  """Zero padding on a zero state gives z = 0 in masked steps (and at row 0's first real
  step): the gradients must stay finite."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(B, T, F)).astype(np.float32)
  mask = np.asarray(sn.sequence_mask(LENGTHS, T))[..., None]
  x = np.where(mask, x, 0)
  x[0, 0] = 0
  weights = rng.normal(size=(B, T, 2 * N)).astype(np.float32)
  cell = UnitaryRNNCell(N)
  model = sn.RNN(cell, return_carry=True)
  params = random_params(model, 1, x)

  @jax.jit
  def loss_and_grads(params, x):
    def loss(params, x):
      carry, ys = model.apply(params, x, lengths=LENGTHS)
      return jnp.sum(jnp.tanh(ys) * weights) + jnp.sum(carry ** 2), (carry, ys)
    return jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, x)

  (_, (carry, ys)), (grads, d_x) = loss_and_grads(params, x)
  want_carry, want_ys = numpy_rnn(params['params']['cell'], cell.permutation(), x, LENGTHS)
  close(carry, want_carry)
  close(ys, want_ys)
  np.testing.assert_array_equal(carry[2], 0)             # length 0: the initial carry
  for name, g in grads['params']['cell'].items():
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 1e-3, name
  assert np.all(np.isfinite(d_x))
  np.testing.assert_array_equal(np.where(mask, 0, d_x), 0)
  noisy = np.where(mask, x, 10 * rng.normal(size=x.shape).astype(np.float32))
  jax.tree_util.tree_map(np.testing.assert_array_equal, loss_and_grads(params, noisy)[0],
                         loss_and_grads(params, x)[0])
  jax.tree_util.tree_map(np.testing.assert_array_equal, loss_and_grads(params, noisy)[1][0],
                         grads)


def test_bidirectional_and_flax_rnn_match_numpy():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(B, T, F)).astype(np.float32)
  forward, backward = UnitaryRNNCell(N), UnitaryRNNCell(N, permutation_seed=1)
  bi = sn.Bidirectional(sn.RNN(forward), sn.RNN(backward))
  params = random_params(bi, 1, x)
  flax_rnn = nn.RNN(forward)
  flax_params = {'params': {'cell': params['params']['forward']['cell']}}
  got, flax_got = jax.jit(lambda p, q: (bi.apply(p, x, LENGTHS), flax_rnn.apply(q, x)))(
      params, flax_params)
  assert got.shape == (B, T, 4 * N)
  p = params['params']
  _, want_f = numpy_rnn(p['forward']['cell'], forward.permutation(), x, LENGTHS)
  _, want_b = numpy_rnn(p['backward']['cell'], backward.permutation(), x, LENGTHS, reverse=True)
  close(got, np.concatenate([want_f, want_b], axis=-1))
  close(flax_got, numpy_rnn(p['forward']['cell'], forward.permutation(), x, np.full(B, T))[1])
