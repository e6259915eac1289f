"""`EchoStateCell`'s reservoir, its echo state property, and the closed-form readout."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn
from seqnets.layers.echo_state import EchoStateCell, collect_states, ridge_readout

B, T, F, H = 2, 30, 3, 40
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('radius,density', [(0.9, 1.0), (1.3, 0.2)])
def test_reservoir_has_the_requested_spectral_radius_and_density(radius, density):
  arrays = EchoStateCell(H, spectral_radius=radius, density=density, input_scale=0.5,
                         bias_scale=0.2).reservoir(F)
  w = arrays['recurrent_kernel']
  assert w.shape == (H, H) and arrays['input_kernel'].shape == (F, H)
  np.testing.assert_allclose(np.max(np.abs(np.linalg.eigvals(w))), radius, rtol=1e-10)
  assert abs(np.mean(w != 0) - density) < 0.05
  assert 0.4 < np.max(np.abs(arrays['input_kernel'])) <= 0.5
  assert 0.1 < np.max(np.abs(arrays['bias'])) <= 0.2


def test_same_seed_same_reservoir_different_seed_different():
  a = EchoStateCell(H, reservoir_seed=3).reservoir(F)
  b = EchoStateCell(H, reservoir_seed=3).reservoir(F)
  c = EchoStateCell(H, reservoir_seed=4).reservoir(F)
  for name in a:
    np.testing.assert_array_equal(a[name], b[name])
  assert not np.allclose(a['recurrent_kernel'], c['recurrent_kernel'])
  assert not np.allclose(a['input_kernel'], c['input_kernel'])
  # W does not depend on the input size.
  np.testing.assert_array_equal(EchoStateCell(H, reservoir_seed=3).reservoir(F + 2)[
      'recurrent_kernel'], a['recurrent_kernel'])


def test_cell_has_no_params_and_steps_as_numpy():
  cell = EchoStateCell(H, spectral_radius=0.8, leak=0.3, bias_scale=0.1)
  x = np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)
  rnn = sn.RNN(cell)
  variables = rnn.init(jax.random.key(0), x)
  assert not jax.tree_util.tree_leaves(variables)
  y = rnn.apply(variables, x)
  r = cell.reservoir(F)
  h, want = np.zeros((B, H)), []
  for t in range(T):
    h = 0.7 * h + 0.3 * np.tanh(x[:, t] @ r['input_kernel'] + h @ r['recurrent_kernel'] + r['bias'])
    want.append(h)
  close(y, np.stack(want, axis=1))
  states = collect_states(cell, x, washout=10)
  close(states, y[:, 10:])


def test_states_forget_the_initial_state():
  """Echo state property: from two different initial states, the same inputs drive the
  reservoir (radius < 1) to the same trajectory."""
  cell = EchoStateCell(H, spectral_radius=0.8)
  x = np.random.default_rng(0).normal(size=(1, 200, F)).astype(np.float32)
  starts = np.random.default_rng(1).uniform(-1, 1, size=(2, 1, H)).astype(np.float32)
  a, b = (collect_states(cell, x, initial_carry=c)[0] for c in starts)
  gap = np.linalg.norm(np.asarray(a - b), axis=-1)
  assert gap[0] > 0.1 and gap[-1] < 1e-5 and gap[-1] < gap[20] < gap[0]


@pytest.mark.parametrize('n,h', [(50, 6), (5, 8)])
def test_ridge_readout_matches_numpy_closed_form(n, h):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(n, h)) @ rng.normal(size=(h, h))
  y = rng.normal(size=(n, 2))
  l2 = 0.7
  # Unpenalised bias: the augmented normal equations with a zero penalty on the bias row.
  xa = np.concatenate([x, np.ones((n, 1))], axis=1)
  want = np.linalg.solve(xa.T @ xa + l2 * np.diag([1.0] * h + [0.0]), xa.T @ y)
  with jax.enable_x64(True):
    kernel, bias = ridge_readout(x, y, l2)
    assert kernel.dtype == jnp.float64
    np.testing.assert_allclose(kernel, want[:h], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bias, want[h], rtol=1e-10, atol=1e-12)
  kernel32, bias32 = ridge_readout(x.astype(np.float32), y.astype(np.float32), l2)
  np.testing.assert_allclose(kernel32, want[:h], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(bias32, want[h], rtol=1e-4, atol=1e-5)


def test_ridge_readout_recovers_a_linear_map_with_reservoir_states():
  """l2 = 0 on (correlated) reservoir states with targets = states @ K + c gives K and c back."""
  cell = EchoStateCell(H, spectral_radius=0.9, input_scale=0.5)
  x = np.random.default_rng(0).normal(size=(1, 400, F)).astype(np.float32)
  states = np.asarray(collect_states(cell, x, washout=50)[0], np.float64)
  rng = np.random.default_rng(1)
  k, c = rng.normal(size=(H, 2)), rng.normal(size=2)
  with jax.enable_x64(True):
    kernel, bias = ridge_readout(states, states @ k + c, 0.0)
  np.testing.assert_allclose(kernel, k, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(bias, c, rtol=1e-6, atol=1e-6)
  kernel32, bias32 = ridge_readout(states.astype(np.float32), (states @ k + c).astype(np.float32),
                                   0.0)
  fitted = states @ np.asarray(kernel32, np.float64) + np.asarray(bias32, np.float64)
  np.testing.assert_allclose(fitted, states @ k + c, atol=1e-3)
