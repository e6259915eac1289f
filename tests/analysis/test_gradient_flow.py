"""`gradient_flow` against references written independently of it: NumPy backprop and finite
differences of an Elman network, a per-step Python loop with the carry substituted after step t,
and closed forms for linear cells and for an LSTM with constant gates."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn
from seqnets.analysis import gradient_flow

B, T, F, H = 2, 6, 3, 4
close = functools.partial(np.testing.assert_allclose, rtol=1e-4, atol=1e-6)


def identity(a):
  return a


def random_params(cell, seed, scale=0.6):
  """The cell's parameters, every entry drawn from N(0, scale²)."""
  key = jax.random.key(seed)
  shapes = cell.init(key, cell.initialize_carry(key, (B, F)), jnp.zeros((B, F)))['params']
  rng = np.random.default_rng(seed)
  return {name: jnp.asarray(rng.normal(0, scale, p.shape), jnp.float32)
          for name, p in shapes.items()}


def random_inputs(seed):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(B, T, F)), jnp.float32)


def sin_loss(outputs, weights):
  """L = Σ_{b,t,k} V[t, k] sin(y[b, t, k]): every output counts, nonlinearly."""
  return jnp.sum(weights * jnp.sin(outputs))


def elman_forward_numpy(params, x, replace=None):
  """h_t = tanh(x_t W + h_{t−1} U + b) in float64, h_{−1} = 0; `replace=(t, s)` puts s in
  place of h_t. Returns h `[B, T, H]`."""
  w, u, b = (np.asarray(params[n], np.float64)
             for n in ('input_kernel', 'recurrent_kernel', 'bias'))
  h, states = np.zeros((x.shape[0], u.shape[0])), []
  for t in range(x.shape[1]):
    h = np.tanh(np.asarray(x[:, t], np.float64) @ w + h @ u + b)
    if replace is not None and replace[0] == t:
      h = replace[1]
    states.append(h)
  return np.stack(states, axis=1)


def test_elman_tanh_matches_numpy_backprop_and_finite_differences():
  cell = sn.ElmanCell(H)
  params, x = random_params(cell, 0), random_inputs(1)
  weights = np.random.default_rng(2).normal(size=(T, H))
  norms = gradient_flow.state_gradient_norms(cell, params, x,
                                             lambda y: sin_loss(y, jnp.asarray(weights)))

  # Backprop by hand: δ_t = ∂L/∂y_t + (δ_{t+1} ⊙ (1 − h_{t+1}²)) Uᵀ.
  h = elman_forward_numpy(params, x)
  u = np.asarray(params['recurrent_kernel'], np.float64)
  deltas = [None] * T
  deltas[T - 1] = weights[T - 1] * np.cos(h[:, T - 1])
  for t in range(T - 2, -1, -1):
    deltas[t] = weights[t] * np.cos(h[:, t]) + (deltas[t + 1] * (1 - h[:, t + 1] ** 2)) @ u.T
  backprop = [np.mean(np.linalg.norm(d, axis=-1)) for d in deltas]
  close(norms, backprop)

  # Central differences of L in every coordinate of h_t.
  loss = lambda states: np.sum(weights * np.sin(states))
  eps = 1e-6
  for t in range(T):
    grad = np.zeros((B, H))
    for b in range(B):
      for k in range(H):
        s_plus, s_minus = h[:, t].copy(), h[:, t].copy()
        s_plus[b, k] += eps
        s_minus[b, k] -= eps
        grad[b, k] = (loss(elman_forward_numpy(params, x, (t, s_plus)))
                      - loss(elman_forward_numpy(params, x, (t, s_minus)))) / (2 * eps)
    close(norms[t], np.mean(np.linalg.norm(grad, axis=-1)), rtol=1e-4)


def hidden_of(carry):
  return carry[1] if isinstance(carry, tuple) else carry


def substituted_carry_norms(cell, params, x, loss_fn, initial_carry):
  """For each t: a Python loop of `cell.apply` with a free carry s in place of s_t (y_t read
  from it), `jax.grad` w.r.t. s at the true s_t; per-example norms averaged over the batch."""
  carries, outputs, carry = [], [], initial_carry
  for t in range(T):
    carry, y = cell.apply({'params': params}, carry, x[:, t])
    carries.append(carry)
    outputs.append(y)

  def loss_after(t, s):
    ys, carry = outputs[:t] + [hidden_of(s)], s
    for later in range(t + 1, T):
      carry, y = cell.apply({'params': params}, carry, x[:, later])
      ys.append(y)
    return loss_fn(jnp.stack(ys, axis=1))

  norms = []
  for t in range(T):
    grad = jax.grad(functools.partial(loss_after, t))(carries[t])
    squares = sum(np.sum(np.asarray(g) ** 2, axis=-1) for g in jax.tree_util.tree_leaves(grad))
    norms.append(np.mean(np.sqrt(squares)))
  return np.array(norms)


@pytest.mark.parametrize('make_cell', [
    lambda: sn.ElmanCell(H, activation_fn=jax.nn.relu),
    lambda: sn.LSTMCell(H),
    lambda: sn.GRUCell(H),
], ids=['elman_relu', 'lstm', 'gru'])
def test_matches_the_substituted_carry_reference_with_a_given_initial_carry(make_cell):
  cell = make_cell()
  params, x = random_params(cell, 3), random_inputs(4)
  weights = jnp.asarray(np.random.default_rng(5).normal(size=(T, H)), jnp.float32)
  loss_fn = lambda y: sin_loss(y, weights)
  zero = cell.initialize_carry(jax.random.key(0), (B, F))
  rng = np.random.default_rng(6)
  carry = jax.tree_util.tree_map(lambda c: jnp.asarray(rng.normal(size=c.shape), c.dtype), zero)
  norms = gradient_flow.state_gradient_norms(cell, params, x, loss_fn, initial_carry=carry)
  close(norms, substituted_carry_norms(cell, params, x, loss_fn, carry))
  assert not np.allclose(norms, gradient_flow.state_gradient_norms(cell, params, x, loss_fn))


def linear_elman(recurrent_kernel, seed=7):
  cell = sn.ElmanCell(H, activation_fn=identity)
  params = dict(random_params(cell, seed), recurrent_kernel=jnp.asarray(recurrent_kernel,
                                                                         jnp.float32))
  return cell, params


def test_linear_elman_with_u_a_times_identity_scales_by_a_per_step():
  # h_t = x_t W + a h_{t−1} + b and L = Σ_b v · h_{T−1}: ∂L/∂h_t = a^d v, d = T − 1 − t.
  # a = 0.5, ‖v‖ = ‖(3, 4, 0, 0)‖ = 5: norms 5 · 0.5^5 … 5 · 0.5^0.
  cell, params = linear_elman(0.5 * np.eye(H))
  v = jnp.array([3.0, 4.0, 0.0, 0.0])
  norms = gradient_flow.state_gradient_norms(cell, params, random_inputs(8),
                                             lambda y: jnp.sum(y[:, -1] @ v))
  close(norms, [0.15625, 0.3125, 0.625, 1.25, 2.5, 5.0])
  # A mean over the batch divides each example's gradient by B.
  mean_norms = gradient_flow.state_gradient_norms(cell, params, random_inputs(8),
                                                  lambda y: jnp.mean(y[:, -1] @ v))
  close(mean_norms, np.array([0.15625, 0.3125, 0.625, 1.25, 2.5, 5.0]) / B)


def test_linear_elman_with_orthogonal_u_keeps_the_norm():
  q, _ = np.linalg.qr(np.random.default_rng(9).normal(size=(H, H)))
  cell, params = linear_elman(q)
  v = jnp.asarray(np.random.default_rng(10).normal(size=H), jnp.float32)
  norms = gradient_flow.state_gradient_norms(cell, params, random_inputs(11),
                                             lambda y: jnp.sum(y[:, -1] @ v))
  close(norms, np.full(T, np.linalg.norm(v)))


def test_step_jacobian_of_a_linear_elman_cell_is_u():
  u = np.random.default_rng(12).normal(size=(H, H))
  cell, params = linear_elman(u)
  norms = gradient_flow.step_jacobian_norms(cell, params, random_inputs(13))
  assert norms.shape == (B, T)
  sigma = np.linalg.svd(u, compute_uv=False)[0]
  close(gradient_flow.recurrent_spectral_norm(params), sigma)
  close(norms, np.full((B, T), sigma))


def test_step_jacobian_of_a_tanh_elman_cell_is_diag_of_tanh_derivative_times_u_transposed():
  # h_t = tanh(x_t W + h_{t−1} U + b): ∂h_t/∂h_{t−1} = diag(1 − h_t²) Uᵀ.
  cell = sn.ElmanCell(H)
  params, x = random_params(cell, 14), random_inputs(15)
  h = elman_forward_numpy(params, x)
  u = np.asarray(params['recurrent_kernel'], np.float64)
  expected = [[np.linalg.svd((1 - h[b, t, :, None] ** 2) * u.T, compute_uv=False)[0]
               for t in range(T)] for b in range(B)]
  close(gradient_flow.step_jacobian_norms(cell, params, x), expected)


def test_step_jacobian_of_an_lstm_with_constant_gates():
  # U = 0, W = 0: gates i, f, g, o are constants, c_t = f c_{t−1} + i g, h_t = o tanh(c_t).
  # Per unit, ∂(c_t, h_t)/∂(c_{t−1}, h_{t−1}) = [[f, 0], [o f (1 − tanh² c_t), 0]],
  # whose largest singular value is f √(1 + (o (1 − tanh² c_t))²).
  cell = sn.LSTMCell(H)
  gate_bias = {'i': 0.3, 'f': 1.2, 'g': -0.7, 'o': 0.4}
  params = {'input_kernel': jnp.zeros((F, 4 * H)), 'recurrent_kernel': jnp.zeros((H, 4 * H)),
            'bias': jnp.repeat(jnp.array(list(gate_bias.values())), H)}
  sigmoid = lambda z: 1 / (1 + np.exp(-z))
  i, f, o, g = (sigmoid(gate_bias['i']), sigmoid(gate_bias['f']), sigmoid(gate_bias['o']),
                np.tanh(gate_bias['g']))
  c, expected = 0.0, []
  for _ in range(T):
    c = f * c + i * g
    expected.append(f * np.sqrt(1 + (o * (1 - np.tanh(c) ** 2)) ** 2))
  close(gradient_flow.step_jacobian_norms(cell, params, random_inputs(16)),
        np.tile(expected, (B, 1)))


def test_spectral_norms_of_gate_blocks_worked_example():
  # U = [2I | 3I | 0.5I | I]: blocks 2, 3, 0.5, 1; U Uᵀ = (4 + 9 + 0.25 + 1) I, σ = √14.25.
  u = np.concatenate([2 * np.eye(H), 3 * np.eye(H), 0.5 * np.eye(H), np.eye(H)], axis=1)
  params = {'recurrent_kernel': jnp.asarray(u, jnp.float32)}
  close(gradient_flow.recurrent_gate_spectral_norms(params), [2, 3, 0.5, 1])
  close(gradient_flow.recurrent_spectral_norm(params), np.sqrt(14.25))
  elman = random_params(sn.ElmanCell(H), 17)
  close(gradient_flow.recurrent_gate_spectral_norms(elman),
        [gradient_flow.recurrent_spectral_norm(elman)])


def test_functions_run_under_jit():
  cell = sn.LSTMCell(H)
  params, x = random_params(cell, 18), random_inputs(19)
  loss_fn = lambda y: jnp.sum(y[:, -1] ** 2)
  norms = jax.jit(lambda p, x: gradient_flow.state_gradient_norms(cell, p, x, loss_fn))
  jacobians = jax.jit(lambda p, x: gradient_flow.step_jacobian_norms(cell, p, x))
  close(norms(params, x), gradient_flow.state_gradient_norms(cell, params, x, loss_fn))
  close(jacobians(params, x), gradient_flow.step_jacobian_norms(cell, params, x))
  close(jax.jit(gradient_flow.recurrent_spectral_norm)(params),
        gradient_flow.recurrent_spectral_norm(params))
