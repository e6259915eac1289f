"""Orthogonal recurrent cell: U kept exactly orthogonal by a parametrisation
(Lezcano-Casado & Martínez-Rubio, 2019, "Cheap orthogonal constraints in neural
networks", arXiv:1901.08428; Helfrich, Willmott & Ye, 2018, "Orthogonal recurrent
neural networks with scaled Cayley transform", arXiv:1707.09520)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from seqnets.layers import fused_cell
from seqnets.layers import fused_scan
from seqnets.layers import initializers

Array = jax.Array
Params = dict[str, Array]

PARAMETRIZATIONS = ('expm', 'cayley')
ACTIVATIONS = ('modrelu', 'tanh', 'identity')


def _rotation_blocks_init(angle_to_entry, low: float, high: float) -> initializers.Initializer:
  """`A [H, H]` zero but for `A[2i, 2i+1] = angle_to_entry(θ_i)`, θ_i ~ U[low, high],
  i < H // 2 (an odd H leaves the last unit a 1 × 1 identity block)."""

  def init(key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
    size = shape[-1]
    if len(shape) != 2 or shape[0] != size:
      raise ValueError(f'the skew-symmetric generator must be square, got shape {shape}')
    angles = jax.random.uniform(key, (size // 2,), jnp.float32, low, high)
    rows = jnp.arange(size // 2) * 2
    skew = jnp.zeros(shape, jnp.float32).at[rows, rows + 1].set(angle_to_entry(angles))
    return skew.astype(dtype)

  return init


def henaff_init() -> initializers.Initializer:
  """For `parametrization='expm'`: `expm(A − Aᵀ)` is block diagonal with 2 × 2 rotations
  by angles θ ~ U[−π, π] (Henaff, Szlam & LeCun, 2016, as in Lezcano-Casado &
  Martínez-Rubio's code)."""
  return _rotation_blocks_init(lambda angles: angles, -math.pi, math.pi)


def cayley_init() -> initializers.Initializer:
  """For `parametrization='cayley'`: the Cayley transform of `A − Aᵀ` is block diagonal
  with 2 × 2 rotations by angles α ~ U[−π/2, π/2] (entries `tan(α/2)` in [−1, 1]; the
  Cayley map reaches the angle ±π only as the entry goes to infinity)."""
  return _rotation_blocks_init(lambda angles: jnp.tan(angles / 2), -math.pi / 2, math.pi / 2)


def orthogonal_from_skew(skew: Array, parametrization: str = 'expm') -> Array:
  """U from the generator A `[H, H]`, S = A − Aᵀ: `expm(S)` or `(I + S)⁻¹(I − S)`.

  Computed in at least float32 (a bfloat16 A is widened, U rounded back).
  """
  dtype = jnp.promote_types(skew.dtype, jnp.float32)
  a = skew.astype(dtype)
  s = a - a.T
  if parametrization == 'expm':
    u = jax.scipy.linalg.expm(s)
  elif parametrization == 'cayley':
    eye = jnp.eye(s.shape[0], dtype=dtype)
    u = jnp.linalg.solve(eye + s, eye - s)
  else:
    raise ValueError(f'OrthogonalRNNCell.parametrization must be one of {PARAMETRIZATIONS}, '
                     f'got {parametrization!r}')
  return u.astype(skew.dtype)


def modrelu(z: Array, bias: Array) -> Array:
  """Real modReLU (Arjovsky, Shah & Bengio, 2016): `sign(z) · relu(|z| + b)`."""
  return jnp.sign(z) * jax.nn.relu(jnp.abs(z) + bias)


class OrthogonalRNNCell(fused_cell.FusedCell):
  """Orthogonal RNN cell: `h_t = φ(W x_t + U h_{t-1}; b)` with U orthogonal at every step
  of training, through its parametrisation by a free matrix A (S = A − Aᵀ):

    parametrization='expm'    U = expm(S)               (expRNN, Lezcano-Casado &
                                                          Martínez-Rubio 2019)
    parametrization='cayley'  U = (I + S)⁻¹ (I − S)     (scoRNN without its scaling, Helfrich
                                                          et al. 2018; no eigenvalue −1)

    activation='modrelu'   φ(z; b) = sign(z) · relu(|z| + b)   (Arjovsky et al. 2016)
    activation='tanh'      φ(z; b) = tanh(z + b)
    activation='identity'  φ(z; b) = z + b

  Parameter layout:
    input_kernel    W  [F, H]
    recurrent_skew  A  [H, H]   only A − Aᵀ matters (its symmetric part gets zero gradient)
    bias            b  [H]      zeros by default: modReLU starts as the identity, so the
                                initial cell is a linear orthogonal recurrence

  A's default initialiser (None) depends on the parametrisation: `henaff_init()` for
  'expm', `cayley_init()` for 'cayley'; either makes U a block-diagonal matrix of random
  2 × 2 rotations.

  Inside `sn.RNN` the cell runs through `scan_kernel()` (see `_OrthogonalKernel`): U is
  computed once per call of the layer, outside the time loop, and the backward pass maps
  `dU = Σ_t h_{t-1}ᵀ dz_t` back to A with the vjp of the parametrisation. The per-step
  `__call__` (`sn.RNN(cell, fused=False)`, `flax.linen.RNN`) computes U at every step, an
  order of magnitude slower (H = 128: about 16× for a forward and backward pass on CPU).
  The cell has no in-step regularisers; `sn.RNN`'s variational input dropout applies.

  Attributes:
    features: hidden size H.
    parametrization: 'expm' or 'cayley'.
    activation: 'modrelu', 'tanh' or 'identity'.
    kernel_init / recurrent_skew_init / bias_init: initialisers (see above for None).
    dtype: computation dtype (None: promoted from inputs, carry and parameters).
    param_dtype: parameter dtype (narrower floats are initialised in float32 and
      rounded, see `initializers.in_float32`).

  Dtypes as `ElmanCell`: the carry keeps the dtype it is given, outputs are in the
  computation dtype; U is computed in at least float32 and rounded to it.
  """

  features: int
  parametrization: str = 'expm'
  activation: str = 'modrelu'
  kernel_init: initializers.Initializer = nn.initializers.lecun_normal()
  recurrent_skew_init: initializers.Initializer | None = None
  bias_init: initializers.Initializer = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def cell_params(self, num_features: int) -> Params:
    """Declares (at init) and returns the parameters for `F = num_features` inputs."""
    self._check()
    skew_init = self.recurrent_skew_init
    if skew_init is None:
      skew_init = henaff_init() if self.parametrization == 'expm' else cayley_init()
    return {
        'input_kernel': self.param('input_kernel', initializers.in_float32(self.kernel_init),
                                   (num_features, self.features), self.param_dtype),
        'recurrent_skew': self.param('recurrent_skew', initializers.in_float32(skew_init),
                                     (self.features, self.features), self.param_dtype),
        'bias': self.param('bias', initializers.in_float32(self.bias_init), (self.features,),
                           self.param_dtype),
    }

  @nn.nowrap
  def scan_kernel(self) -> _OrthogonalKernel:
    """Step, reverse step and gradients (see `fused_scan.fused_scan`). Carry: h `[B, H]`."""
    self._check()
    return _OrthogonalKernel(self.parametrization, self.activation)

  @nn.nowrap
  def recurrent_kernel(self, params: Params) -> Array:
    """U `[H, H]` from this cell's params (`variables['params']` of the cell)."""
    return orthogonal_from_skew(params['recurrent_skew'], self.parametrization)

  def _check(self) -> None:
    if self.parametrization not in PARAMETRIZATIONS:
      raise ValueError(f'OrthogonalRNNCell.parametrization must be one of {PARAMETRIZATIONS}, '
                       f'got {self.parametrization!r}')
    if self.activation not in ACTIVATIONS:
      raise ValueError(f'OrthogonalRNNCell.activation must be one of {ACTIVATIONS}, '
                       f'got {self.activation!r}')


@dataclasses.dataclass(frozen=True)
class _OrthogonalKernel:
  """Orthogonal step, reverse step and gradients for `fused_scan.fused_scan`.

  `prepare` adds U (`recurrent_kernel`) to the params, once per sequence. No residuals
  are kept: every derivative is a function of the output y_t. For modReLU,
  `∂y/∂z = [y ≠ 0]` (sign(z)² relu'(|z| + b)) and `∂y/∂b = sign(y)`, as autodiff of
  `modrelu` gives (also at z = 0); dz_t is then the pair `(dz_t, db_t)`.
  Hoisted (`fused_scan.HoistedScanKernel`): `X W` `[B, T, H]` before the loop (b
  belongs to the activation), `h U` in it.
  """

  parametrization: str
  activation: str

  def hidden(self, carry: Array) -> Array:
    return carry

  def prepare(self, params: Params) -> Params:
    return dict(params,
                recurrent_kernel=orthogonal_from_skew(params['recurrent_skew'],
                                                      self.parametrization))

  def forward(self, consts: Params, carry: Array, x_t: Array,
              keep_residuals: bool) -> tuple[Array, Array, Any]:
    del keep_residuals
    return self._activate(consts, x_t @ consts['input_kernel']
                          + carry @ consts['recurrent_kernel'])

  def project(self, consts: Params, inputs: Array) -> Array:
    return fused_scan.input_projection(consts, inputs, bias=False)     # [B, T, H]

  def forward_projected(self, consts: Params, carry: Array, projected_t: Array,
                        keep_residuals: bool) -> tuple[Array, Array, Any]:
    del keep_residuals
    return self._activate(consts, projected_t + carry @ consts['recurrent_kernel'])

  def _activate(self, consts: Params, z: Array) -> tuple[Array, Array, None]:
    """The step from `z = W x_t + U h_{t-1}` `[B, H]` (no residuals)."""
    if self.activation == 'modrelu':
      new_h = modrelu(z, consts['bias'])
    elif self.activation == 'tanh':
      new_h = jnp.tanh(z + consts['bias'])
    else:
      new_h = z + consts['bias']
    return new_h, new_h, None

  def backward(self, consts: Params, residuals: Any, y_t: Array, h_prev: Array,
               d_carry: Array, d_y: Array) -> tuple[Array, Any]:
    del residuals, h_prev
    d_h = d_carry + d_y
    if self.activation == 'modrelu':
      d_z = jnp.where(y_t != 0, d_h, 0)
      dz = (d_z, d_h * jnp.sign(y_t))
    elif self.activation == 'tanh':
      d_z = dz = d_h * (1 - y_t * y_t)
    else:
      d_z = dz = d_h
    return d_z @ consts['recurrent_kernel'].T, dz

  def gradients(self, params: Params, consts: Params, inputs: Array, residuals: Any,
                h_prev: Array, dz: Any) -> tuple[Params, Array]:
    del consts, residuals
    d_bias = None
    if self.activation == 'modrelu':
      dz, d_bias = dz
    grads, d_inputs = fused_scan.input_gradients(params, inputs, dz)
    if d_bias is not None:
      grads['bias'] = fused_scan.sum_bt(d_bias)
    d_u = fused_scan.matmul_tn(h_prev, dz)
    _, skew_vjp = jax.vjp(lambda a: orthogonal_from_skew(a, self.parametrization),
                          params['recurrent_skew'])
    (grads['recurrent_skew'],) = skew_vjp(d_u.astype(params['recurrent_skew'].dtype))
    return grads, d_inputs
