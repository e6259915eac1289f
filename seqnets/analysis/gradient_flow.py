"""Gradient flow through a recurrent cell: how ∂L/∂s_t shrinks or grows with distance.

Synopsis:
  from seqnets.analysis import gradient_flow
  cell = sn.ElmanCell(64)
  params = cell.init(key, cell.initialize_carry(key, (B, F)), x[:, 0])['params']
  loss_fn = lambda outputs: jnp.sum(outputs[:, -1] ** 2)              # outputs: [B, T, H]
  gradient_flow.state_gradient_norms(cell, params, x, loss_fn)       # [T]: ‖∂L/∂s_t‖
  gradient_flow.recurrent_spectral_norm(params)                      # σ_max(U)
  gradient_flow.recurrent_gate_spectral_norms(params)                # [G]: σ_max of each gate's U
  gradient_flow.recurrent_matrix(cell, params, num_inputs=F)         # U of any seqnets cell
  gradient_flow.step_jacobian_norms(cell, params, x)                 # [B, T]: ‖∂s_t/∂s_{t−1}‖₂

`params` is the cell's own parameter dict (what `cell.init(...)['params']`
holds; for `sn.RNN(cell)` on its own, `variables['params']['cell']`). The state s_t is the carry after
step t: h_t for Elman and GRU cells, the pair (c_t, h_t) for an LSTM. Every
function is pure and can be jitted (close over `cell` and `loss_fn`).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import linen as nn
from jax.flatten_util import ravel_pytree

Array = jax.Array
Carry = Any


def _initial_carry(cell: nn.RNNCellBase, inputs: Array, initial_carry: Carry | None) -> Carry:
  if initial_carry is not None:
    return initial_carry
  return cell.initialize_carry(jax.random.key(0), inputs[:, 0].shape)


def _hidden(cell: nn.RNNCellBase, carry: Carry) -> Array:
  """The part of the carry the cell outputs: h (for an LSTM the h of (c, h))."""
  if hasattr(cell, 'scan_kernel'):
    return cell.scan_kernel().hidden(carry)
  return carry[-1] if isinstance(carry, tuple) else carry


def _norms_per_step_and_example(tree: Any) -> Array:
  """Leaves `[T, B, ...]` -> the Euclidean norm over all leaves of each `[t, b]`, `[T, B]`."""
  leaves = jax.tree_util.tree_leaves(tree)
  lead = leaves[0].shape[:2]
  return jnp.sqrt(sum(jnp.sum(jnp.reshape(leaf, lead + (-1,)) ** 2, axis=-1) for leaf in leaves))


def state_gradient_norms(cell: nn.RNNCellBase, params: Any, inputs: Array,
                         loss_fn: Callable[[Array], Array],
                         initial_carry: Carry | None = None) -> Array:
  """`g_t = mean_b ‖∂L/∂s_t[b]‖` for t = 0..T−1, `[T]`.

  `inputs: [B, T, F]`; `L = loss_fn(outputs)` with `outputs: [B, T, H]` the
  cell's outputs, a scalar. `s_t` is the carry after step t (for an LSTM both c_t
  and h_t enter the norm); ∂L/∂s_t is the total derivative: through y_t and
  through every later step. The norm is taken per example and averaged over the
  batch, so a `loss_fn` that sums per-example losses gives per-example
  gradients (a mean divides them by B).

  Written as its own scan because neither `sn.RNN` nor flax's RNN gives a place
  to perturb the intermediate carries: here `s_t + δ_t` replaces s_t (and y_t is
  read from it), every δ_t = 0, and ∂L/∂δ_t = ∂L/∂s_t.
  """
  carry = _initial_carry(cell, inputs, initial_carry)
  steps = inputs.shape[1]
  time_major = jnp.swapaxes(inputs, 0, 1)                                   # [T, B, F]

  def loss_of(perturbations):
    def step(carry, x_and_delta):
      x_t, delta_t = x_and_delta
      carry, _ = cell.apply({'params': params}, carry, x_t)
      carry = jax.tree_util.tree_map(jnp.add, carry, delta_t)
      return carry, _hidden(cell, carry)

    _, outputs = jax.lax.scan(step, carry, (time_major, perturbations))
    return loss_fn(jnp.swapaxes(outputs, 0, 1))

  zeros = jax.tree_util.tree_map(lambda c: jnp.zeros((steps,) + c.shape, c.dtype), carry)
  grads = jax.grad(loss_of)(zeros)                                          # [T, B, ...] leaves
  return jnp.mean(_norms_per_step_and_example(grads), axis=1)


def recurrent_spectral_norm(params: Any) -> Array:
  """σ_max(U), the largest singular value of `recurrent_kernel` `[H, G·H]` (all gates), a scalar."""
  return jnp.linalg.norm(params['recurrent_kernel'], ord=2)


def recurrent_matrix(cell: nn.RNNCellBase, params: Any, num_inputs: int) -> Array:
  """The matrix U `[S, G·S]` that the cell's step multiplies the previous state by (row
  vectors, `h_{t−1} U`), from the cell's own `params`, or None if the cell has none:

    a `recurrent_kernel` parameter     Elman, LSTM, GRU, leaky, skip (the h_{t−1} term)
    `cell.recurrent_kernel(params)`    the orthogonal cell's U = expm(A − Aᵀ) or Cayley(A)
    the reservoir                      `EchoStateCell` (a constant, not a parameter)
    W on [Re h; Im h]                  `UnitaryRNNCell`: the real 2N × 2N form of its W
  """
  from seqnets.layers import echo_state
  from seqnets.layers import unitary
  if isinstance(cell, echo_state.EchoStateCell):
    return jnp.asarray(cell.reservoir(num_inputs)['recurrent_kernel'], jnp.float32)
  if isinstance(cell, unitary.UnitaryRNNCell):
    n = cell.features
    basis = jnp.eye(2 * n, dtype=jnp.float32)
    images = unitary.unitary_matmul(params, jax.lax.complex(basis[:, :n], basis[:, n:]),
                                    cell.permutation(), dft_matrix=True)
    return jnp.concatenate([images.real, images.imag], axis=-1)                # row k: W e_k
  if callable(getattr(cell, 'recurrent_kernel', None)):
    return cell.recurrent_kernel(params)
  return params.get('recurrent_kernel') if isinstance(params, dict) else None


def recurrent_gate_spectral_norms(params: Any) -> Array:
  """σ_max of each gate's block `U[:, k·H:(k+1)·H]`, `[G]`, in the cell's gate order:
  LSTM (i, f, g, o), GRU (r, z, n), Elman a single block (= `recurrent_spectral_norm`)."""
  kernel = params['recurrent_kernel']
  hidden, width = kernel.shape
  blocks = jnp.stack(jnp.split(kernel, width // hidden, axis=-1))          # [G, H, H]
  return jax.vmap(lambda u: jnp.linalg.norm(u, ord=2))(blocks)


def step_jacobian_norms(cell: nn.RNNCellBase, params: Any, inputs: Array,
                        initial_carry: Carry | None = None) -> Array:
  """`‖∂s_t/∂s_{t−1}‖₂` along the trajectory, `[B, T]` (s_{−1}: the initial carry).

  The carry of one example is flattened to a vector (for an LSTM `[c; h]`, 2H),
  the step's Jacobian with x_t fixed is taken by forward mode, and its largest
  singular value is returned. `inputs: [B, T, F]`.

  On CPU the SVDs run in LAPACK; with OpenBLAS, `OPENBLAS_NUM_THREADS=1` keeps its
  threads from fighting XLA's (800 SVDs of 128 × 128: 0.3 s instead of 1–50 s on 2 cores).
  """
  carry = _initial_carry(cell, inputs, initial_carry)

  def step(carry, x_t):
    new_carry, _ = cell.apply({'params': params}, carry, x_t)
    return new_carry, carry

  _, previous = jax.lax.scan(step, carry, jnp.swapaxes(inputs, 0, 1))    # s_{t−1}: [T, B, ...]
  one_carry = jax.tree_util.tree_map(lambda c: c[0, 0], previous)
  _, unflatten = ravel_pytree(one_carry)

  def norm(flat_carry, x_t):
    def flat_step(s):
      new_carry, _ = cell.apply({'params': params}, unflatten(s), x_t)
      return ravel_pytree(new_carry)[0]
    return jnp.linalg.norm(jax.jacfwd(flat_step)(flat_carry), ord=2)

  flat = jax.vmap(jax.vmap(lambda c: ravel_pytree(c)[0]))(previous)    # [T, B, D]
  # One step at a time: a [B, D, D] Jacobian in memory rather than [T, B, D, D].
  norms = jax.lax.map(lambda args: jax.vmap(norm)(*args), (flat, jnp.swapaxes(inputs, 0, 1)))
  return jnp.swapaxes(norms, 0, 1)
