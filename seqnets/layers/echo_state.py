"""Echo state network (Jaeger 2001, "The 'echo state' approach to analysing and training
recurrent neural networks", GMD Report 148): a fixed random reservoir and a trained readout.

Synopsis:
  cell = EchoStateCell(500, spectral_radius=0.9, leak=0.3)
  states = collect_states(cell, inputs, washout=100)            # [B, T − 100, H]
  kernel, bias = ridge_readout(states.reshape(-1, 500), targets.reshape(-1, O), l2=1e-8)
  predictions = states @ kernel + bias                          # or nn.Dense(O) trained by SGD
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from seqnets.layers import fused_cell
from seqnets.layers import rnn

Array = jax.Array


@functools.lru_cache(maxsize=16)
def _reservoir(features: int, num_inputs: int, spectral_radius: float, input_scale: float,
               density: float, bias_scale: float, seed: int) -> dict[str, np.ndarray]:
  """The reservoir's arrays in float64, read-only (see `EchoStateCell.reservoir`)."""
  recurrent_rng, input_rng, bias_rng = (
      np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
  w = recurrent_rng.uniform(-1, 1, (features, features))
  w *= recurrent_rng.random((features, features)) < density
  radius = np.max(np.abs(np.linalg.eigvals(w))) if features else 0.0
  if spectral_radius > 0:
    if radius == 0:
      raise ValueError(f'EchoStateCell: the random reservoir of {features} units at density '
                       f'{density} has no nonzero eigenvalue to scale; raise density or features')
    w *= spectral_radius / radius
  else:
    w[:] = 0
  arrays = {
      'input_kernel': input_rng.uniform(-input_scale, input_scale, (num_inputs, features)),
      'recurrent_kernel': w,
      'bias': bias_rng.uniform(-bias_scale, bias_scale, (features,)),
  }
  for a in arrays.values():
    a.flags.writeable = False
  return arrays


class EchoStateCell(nn.RNNCellBase):
  """Reservoir step: `h_t = (1 − a) h_{t-1} + a tanh(W_in x_t + W h_{t-1} + b)`.

  Reservoir (row-vector layout as `ElmanCell`: the step computes `x W_in + h W + b`):
    input_kernel      W_in  [F, H]  uniform in [−input_scale, input_scale]
    recurrent_kernel  W     [H, H]  uniform in [−1, 1] on a random `density` fraction of
                                    entries (zero elsewhere), scaled so that its spectral
                                    radius (largest |eigenvalue|) is `spectral_radius`
    bias              b     [H]     uniform in [−bias_scale, bias_scale]
  drawn in NumPy (float64) from `reservoir_seed` by independent streams, so W
  does not depend on F, input_scale or bias_scale; see `reservoir(F)`.

  The reservoir is a constant of the cell, not a parameter: it is rebuilt
  from the seed and the input size F (known at the first call), cached per
  process, and enters the step as a constant of the traced computation (the
  compiled program holds it: 4 H² bytes in float32). So the cell has no
  params (`init` gives `{}`): no optimizer ever updates, nor holds state for,
  the H² + F·H + H reservoir numbers, no gradient is computed for them, and
  no checkpoint stores them; the attributes alone reproduce it. Only a
  readout is trained, either by gradient descent (an `nn.Dense` on the
  cell's outputs, as for any cell) or in closed form (`ridge_readout` on
  `collect_states`).

  Spectral radius < 1 (with a = 1) usually gives the echo state property: the
  state forgets its initial value and becomes a function of the input history.

  Carry: h `[*batch, H]`; output y_t = h_t. The step runs through a plain scan in `sn.RNN`.

  Attributes:
    features: reservoir size H.
    spectral_radius: largest |eigenvalue| of W (≥ 0).
    input_scale: W_in's entries lie in [−input_scale, input_scale].
    leak: a in (0, 1] (1: no leak).
    density: fraction of nonzero entries of W, in (0, 1].
    bias_scale: b's entries lie in [−bias_scale, bias_scale] (0: no bias).
    reservoir_seed: seed of the reservoir.
    dtype: computation dtype (None: promoted from inputs and carry); the
      reservoir is rounded to it.
    param_dtype: the carry's dtype when `dtype` is None (as for the other cells).
  """

  features: int
  spectral_radius: float = 0.9
  input_scale: float = 1.0
  leak: float = 1.0
  density: float = 1.0
  bias_scale: float = 0.0
  reservoir_seed: int = 0
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.nowrap
  def reservoir(self, num_inputs: int) -> dict[str, np.ndarray]:
    """`{'input_kernel': [F, H], 'recurrent_kernel': [H, H], 'bias': [H]}` for `F = num_inputs`,
    float64 NumPy arrays (read-only, cached: the same arrays for the same attributes)."""
    checks = {
        'spectral_radius': self.spectral_radius >= 0, 'input_scale': self.input_scale >= 0,
        'leak': 0 < self.leak <= 1, 'density': 0 < self.density <= 1,
        'bias_scale': self.bias_scale >= 0,
    }
    for name, ok in checks.items():
      if not ok:
        raise ValueError(f'EchoStateCell {name}={getattr(self, name)!r} is out of range (see '
                         'the class docstring)')
    return dict(_reservoir(int(self.features), int(num_inputs), float(self.spectral_radius),
                           float(self.input_scale), float(self.density),
                           float(self.bias_scale), int(self.reservoir_seed)))

  def __call__(self, carry: Array, inputs: Array) -> tuple[Array, Array]:
    """One step. `carry: [..., H]`, `inputs: [..., F]` -> `(h_t, h_t)`."""
    arrays = self.reservoir(inputs.shape[-1])
    x, h = nn.dtypes.promote_dtype(inputs, carry, dtype=self.dtype)
    w_in, w, b = (jnp.asarray(arrays[n], x.dtype) for n in ('input_kernel', 'recurrent_kernel',
                                                            'bias'))
    new_h = h + self.leak * (jnp.tanh(x @ w_in + h @ w + b) - h)
    return new_h.astype(jnp.result_type(carry)), new_h

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Array:
    """Zeros `[*batch, H]` in the carry dtype for inputs of shape `[*batch, F]`."""
    del rng
    return fused_cell.zero_carry(self, input_shape)

  @property
  def num_feature_axes(self) -> int:
    return 1


def collect_states(cell: EchoStateCell, inputs: Array, washout: int = 0,
                   initial_carry: Array | None = None) -> Array:
  """Runs `sn.RNN(cell)` over `inputs [B, T, F]` (jitted) and returns the states after the
  first `washout` steps, `[B, T − washout, H]` (the washout lets the initial state fade)."""
  steps = inputs.shape[1]
  if not 0 <= washout <= steps:
    raise ValueError(f'collect_states washout={washout} must lie in [0, T = {steps}]')
  return _run_reservoir(cell, inputs, initial_carry)[:, washout:]


@functools.partial(jax.jit, static_argnums=0)
def _run_reservoir(cell: EchoStateCell, inputs: Array, initial_carry: Array | None) -> Array:
  return rnn.RNN(cell).apply({}, inputs, initial_carry=initial_carry)


def ridge_readout(states: Array, targets: Array, l2: float) -> tuple[Array, Array]:
  """Closed-form readout: `(kernel [H, O], bias [O])` minimising
  `Σ_n ‖targets_n − (states_n kernel + bias)‖² + l2 ‖kernel‖²` (the bias is not
  penalised).

  `states [N, H]`, `targets [N, O]`, `l2 ≥ 0`. With the column means removed
  (X_c, Y_c; that is what leaves the bias unpenalised), the normal equations
  `(X_cᵀ X_c + l2 I) kernel = X_cᵀ Y_c` are solved through the thin SVD
  `X_c = U diag(s) Vᵀ` (taken as a QR decomposition, then the SVD of R, when
  N > H): `kernel = V diag(s / (s² + l2)) Uᵀ Y_c`, then
  `bias = ȳ − x̄ kernel`. Singular values at or below `ε · s_max` (ε of the
  dtype: below rounding) count as zero: with `l2 = 0` this is the
  minimum-norm least-squares solution. (`lstsq`'s default cutoff,
  `max(N, H) · ε · s_max`, would drop directions the readout needs: on 5000
  float32 states of a 500-unit reservoir driven by Mackey-Glass it raised the
  one-step NRMSE from 5e-5 to 2e-3.)

  Precision: this route works on X_c and never forms X_cᵀ X_c, whose
  condition number is cond(X_c)². Reservoir states are strongly correlated
  (cond(X_c) ≈ 5e7 in the example above, 1/ε ≈ 1e7 in float32): there
  float32 gave test NRMSE 5e-5 through this route and 3e-2 through `solve`
  of the normal equations, with l2 = 1e-8 (float64: 5e-5; 2e-5 with
  l2 ≤ 1e-10). For float64 accuracy, pass float64 arrays under
  `jax.enable_x64()`: the computation runs in the arrays' dtype.
  """
  states, targets = jnp.asarray(states), jnp.asarray(targets)
  if states.ndim != 2 or targets.ndim != 2 or states.shape[0] != targets.shape[0]:
    raise ValueError(f'ridge_readout needs states [N, H] and targets [N, O], got shapes '
                     f'{states.shape} and {targets.shape}')
  if not l2 >= 0:
    raise ValueError(f'ridge_readout l2 must be >= 0, got {l2!r}')
  dtype = jnp.result_type(states, targets, jnp.float32)
  return _ridge(states.astype(dtype), targets.astype(dtype), jnp.asarray(l2, dtype))


@jax.jit
def _ridge(states: Array, targets: Array, l2: Array) -> tuple[Array, Array]:
  x_mean, y_mean = jnp.mean(states, axis=0), jnp.mean(targets, axis=0)
  centred, y_centred = states - x_mean, targets - y_mean
  if states.shape[0] > states.shape[1]:
    # X_c = Q R, R = U' S Vᵀ: the SVD of the small R (3–4 × faster for N = 10 H).
    q, r = jnp.linalg.qr(centred)
    u, s, vt = jnp.linalg.svd(r)
    projected = u.T @ (q.T @ y_centred)
  else:
    u, s, vt = jnp.linalg.svd(centred, full_matrices=False)
    projected = u.T @ y_centred
  cutoff = jnp.finfo(states.dtype).eps * jnp.max(s, initial=0)
  keep = s > cutoff
  scale = jnp.where(keep, s / jnp.where(keep, s * s + l2, 1), 0)
  kernel = vt.T @ (scale[:, None] * projected)
  return kernel, y_mean - x_mean @ kernel
