"""Unitary evolution recurrent cell (Arjovsky, Shah & Bengio, 2016, "Unitary evolution
recurrent neural networks", arXiv:1511.06464)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from seqnets.layers import initializers
from seqnets.layers import fused_cell

Array = jax.Array
Params = dict[str, Array]


def uniform_init(low: float, high: float) -> initializers.Initializer:
  """Initialiser drawing every entry from U[low, high]."""

  def init(key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
    return jax.random.uniform(key, shape, dtype, low, high)

  return init


def _diagonal(theta: Array, h: Array) -> Array:
  return jax.lax.complex(jnp.cos(theta), jnp.sin(theta)).astype(h.dtype) * h


def _reflection(v: Array, h: Array) -> Array:
  """`(I − 2 v v* / ‖v‖²) h` (the identity for v = 0)."""
  norm2 = jnp.sum(jnp.real(v) ** 2 + jnp.imag(v) ** 2)
  norm2 = jnp.maximum(norm2, jnp.finfo(norm2.dtype).tiny)
  projection = jnp.sum(jnp.conj(v) * h, axis=-1, keepdims=True)
  return h - (2 / norm2) * projection * v


def unitary_matmul(params: Params, h: Array, permutation: np.ndarray,
                   dft_matrix: bool = False) -> Array:
  """`W h` for complex `h [..., N]`, `W = D3 R2 F⁻¹ D2 Π R1 F D1`, in O(N log N).

  `params` holds `theta1..3` and `reflection{1,2}_{re,im}` `[N]` (see `UnitaryRNNCell`);
  `(Π h)_i = h_{permutation[i]}`. `dft_matrix=True` applies F and F⁻¹ as `[N, N]` matrix
  products instead of FFTs (same values, O(N²)): XLA:CPU's FFT rejects operands whose
  layout a following SVD or other LAPACK call has made column-major.
  """
  def vector(name):
    return jax.lax.complex(params[f'{name}_re'], params[f'{name}_im']).astype(h.dtype)

  if dft_matrix:
    n = h.shape[-1]
    k = np.arange(n)
    f = np.exp(-2j * np.pi * np.outer(k, k) / n) / np.sqrt(n)        # symmetric
    fft = lambda a: a @ jnp.asarray(f, h.dtype)
    ifft = lambda a: a @ jnp.asarray(f.conj(), h.dtype)
  else:
    fft = lambda a: jnp.fft.fft(a, axis=-1, norm='ortho')
    ifft = lambda a: jnp.fft.ifft(a, axis=-1, norm='ortho')
  h = _diagonal(params['theta1'], h)
  h = fft(h)
  h = _reflection(vector('reflection1'), h)
  h = h[..., permutation]
  h = _diagonal(params['theta2'], h)
  h = ifft(h)
  h = _reflection(vector('reflection2'), h)
  return _diagonal(params['theta3'], h)


def complex_modrelu(z: Array, bias: Array, epsilon: float) -> Array:
  """`z / |z|_ε · relu(|z|_ε + b)`, `|z|_ε = sqrt(Re z² + Im z² + ε²)`: 0 at z = 0,
  with a finite gradient there."""
  modulus = jnp.sqrt(jnp.real(z) ** 2 + jnp.imag(z) ** 2 + epsilon ** 2)
  return z * (jax.nn.relu(modulus + bias) / modulus)


class UnitaryRNNCell(nn.RNNCellBase):
  """Unitary evolution RNN cell (uRNN): complex `h_t = modReLU(W h_{t-1} + V x_t; b)`,

    W = D3 R2 F⁻¹ D2 Π R1 F D1                 unitary, applied in O(N log N), never built
    D_j = diag(e^{iθ_j})                        θ_j ~ U[−π, π]
    R_j = I − 2 v_j v_j* / ‖v_j‖²               complex reflections, Re, Im ~ U[−1, 1]
    F = unitary DFT (`jnp.fft.fft(·, norm='ortho')`), Π a fixed random permutation
    modReLU(z; b) = z / |z|_ε · relu(|z|_ε + b),  |z|_ε = sqrt(|z|² + ε²)

  N = `features`. ε (`epsilon`, 1e-5) keeps modReLU and its gradient finite at z = 0
  (e.g. a zero input on a zero state); it changes |z| by less than ε² / (2|z|).

  The complex state is carried as a real `[..., 2N]` array `[Re h, Im h]`, and the
  output y_t is the same `[..., 2N]` array: the layer's output size is 2N. A Dense
  readout on it gives the paper's output `U [Re h; Im h] + b_o`.

  Π is drawn from `permutation_seed` (a constant, not a parameter): the same for every
  call, apply and init of cells with the same seed and N.

  Parameter layout:
    input_kernel_re, input_kernel_im  [F, N]   V = V_re + i V_im, each N(0, 1/(2F))
                                               (truncated), so E|V_ij|² ≈ 1/F
    theta1, theta2, theta3            [N]
    reflection1_re, reflection1_im    [N]
    reflection2_re, reflection2_im    [N]
    bias                              [N]      b, zeros by default: modReLU starts as
                                               the identity (up to ε)

  The step is the per-step `__call__`; `sn.RNN` runs it through its plain scan (the cell
  has no fused kernel).

  Attributes:
    features: N, the complex hidden size (the carry and outputs have 2N reals).
    permutation_seed: seed of Π.
    epsilon: ε of modReLU.
    kernel_init / theta_init / reflection_init / bias_init: initialisers.
    dtype: computation dtype of the real inputs, carry and outputs (None: promoted
      from inputs, carry and parameters).
    param_dtype: parameter dtype.

  Dtypes: complex arithmetic runs in complex64 (complex128 for float64); narrower
  floats are widened to it and the results rounded back. The carry keeps the dtype
  it is given, outputs are in the computation dtype.
  """

  features: int
  permutation_seed: int = 0
  epsilon: float = 1e-5
  kernel_init: initializers.Initializer = nn.initializers.variance_scaling(
      0.5, 'fan_in', 'truncated_normal')
  theta_init: initializers.Initializer = uniform_init(-math.pi, math.pi)
  reflection_init: initializers.Initializer = uniform_init(-1.0, 1.0)
  bias_init: initializers.Initializer = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def cell_params(self, num_features: int) -> Params:
    """Declares (at init) and returns the parameters for `F = num_features` inputs."""
    n = self.features
    param = lambda name, init, shape: self.param(name, initializers.in_float32(init), shape,
                                                 self.param_dtype)
    params = {name: param(name, self.kernel_init, (num_features, n))
              for name in ('input_kernel_re', 'input_kernel_im')}
    for j in (1, 2, 3):
      params[f'theta{j}'] = param(f'theta{j}', self.theta_init, (n,))
    for j in (1, 2):
      for part in ('re', 'im'):
        params[f'reflection{j}_{part}'] = param(f'reflection{j}_{part}', self.reflection_init,
                                                (n,))
    params['bias'] = param('bias', self.bias_init, (n,))
    return params

  def __call__(self, carry: Array, inputs: Array) -> tuple[Array, Array]:
    """One step. `carry: [..., 2N]`, `inputs: [..., F]` -> `(y_t, y_t)`, `y_t [..., 2N]`."""
    params = self.cell_params(inputs.shape[-1])
    names = sorted(params)
    inputs, carry_in, *values = nn.dtypes.promote_dtype(
        inputs, carry, *(params[n] for n in names), dtype=self.dtype)
    real_dtype = jnp.result_type(carry_in)
    wide = jnp.promote_types(real_dtype, jnp.float32)
    p = {name: value.astype(wide) for name, value in zip(names, values)}
    inputs, carry_in = inputs.astype(wide), carry_in.astype(wide)
    n = self.features
    h = jax.lax.complex(carry_in[..., :n], carry_in[..., n:])
    vx = jax.lax.complex(inputs @ p['input_kernel_re'], inputs @ p['input_kernel_im'])
    z = unitary_matmul(p, h, self.permutation()) + vx
    new_h = complex_modrelu(z, p['bias'], self.epsilon)
    y = jnp.concatenate([jnp.real(new_h), jnp.imag(new_h)], axis=-1).astype(real_dtype)
    return y.astype(jnp.result_type(carry)), y

  @nn.nowrap
  def permutation(self) -> np.ndarray:
    """Π as indices `[N]`: `(Π h)_i = h_{permutation[i]}`."""
    return np.random.default_rng(self.permutation_seed).permutation(self.features)

  @nn.nowrap
  def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> Array:
    """Zeros `[*batch, 2N]` in the carry dtype for inputs of shape `[*batch, F]`."""
    del rng
    return fused_cell.zero_carry(self, input_shape, width=2 * self.features)

  @property
  def num_feature_axes(self) -> int:
    return 1
