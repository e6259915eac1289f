"""Leaky-integrator recurrent cell (continuous-time RNN units discretised with step α;
Jaeger et al. 2007, "Optimization and applications of echo state networks with
leaky-integrator neurons")."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from seqnets.layers import fused_cell
from seqnets.layers import fused_scan
from seqnets.layers import initializers

Array = jax.Array
Params = dict[str, Array]


def _check_leak(leak: float | Sequence[float], features: int,
                learn_leak: bool) -> tuple[float, ...]:
  """`leak` as H floats; raises ValueError unless each is in (0, 1] ((0, 1) when learned)."""
  array = np.asarray(leak, np.float64)
  if array.ndim > 1 or (array.ndim == 1 and array.shape[0] != features):
    raise ValueError(f'LeakyRNNCell leak must be a float or {features} floats (one per unit), '
                     f'got shape {array.shape}')
  values = tuple(float(a) for a in np.broadcast_to(array, (features,)))
  upper_ok = (lambda a: a < 1) if learn_leak else (lambda a: a <= 1)
  if not all(0 < a and upper_ok(a) for a in values):
    interval = '(0, 1) with learn_leak (its logit must be finite)' if learn_leak else '(0, 1]'
    raise ValueError(f'LeakyRNNCell leak must lie in {interval}, got {leak!r}')
  return values


class LeakyRNNCell(fused_cell.FusedCell):
  """Leaky-integrator cell: `h_t = (1 − α) ⊙ h_{t-1} + α ⊙ tanh(W x_t + U h_{t-1} + b)`.

  α `[H]` (each in (0, 1]) is the units' leak rate: the fraction of the state
  replaced at each step, the step size of the Euler-discretised continuous-time
  unit `τ dh/dt = −h + tanh(W x + U h + b)` with α = Δt / τ. Small α gives slow
  units that integrate their input over about 1/α steps; α = 1 is the Elman
  tanh cell (`ElmanCell`, same parameters).

  Parameter layout (as `ElmanCell`):
    input_kernel      W  [F, H]
    recurrent_kernel  U  [H, H]   orthogonal by default
    bias              b  [H]
    leak_logit           [H]      only with `learn_leak=True`: α = sigmoid(leak_logit),
                                  initialised at logit(leak)

  Carry: h `[*batch, H]`; output y_t = h_t. The step is `scan_kernel()`'s (see
  `_LeakyKernel`, `fused_cell.FusedCell`); inside `sn.RNN` it runs through `fused_scan`
  with a hand-written backward pass.

  Attributes:
    features: hidden size H.
    leak: α, a float for every unit or H floats, one per unit; in (0, 1], or
      (0, 1) with `learn_leak` (the initial value).
    learn_leak: train α (as `leak_logit`); otherwise α is a constant of the cell.
    kernel_init / recurrent_kernel_init / bias_init: initialisers.
    dtype: computation dtype (None: promoted from inputs, carry and parameters).
    param_dtype: parameter dtype.

  Dtypes as `ElmanCell`: the carry keeps the dtype it is given, outputs are in
  the computation dtype.
  """

  features: int
  leak: float | Sequence[float] = 1.0
  learn_leak: bool = False
  kernel_init: initializers.Initializer = nn.initializers.lecun_normal()
  recurrent_kernel_init: initializers.Initializer = nn.initializers.orthogonal()
  bias_init: initializers.Initializer = nn.initializers.zeros_init()
  dtype: Any = None
  param_dtype: Any = jnp.float32

  @nn.compact
  def cell_params(self, num_features: int) -> Params:
    """Declares (at init) and returns the parameters for `F = num_features` inputs; with
    `learn_leak`, also `leak` = sigmoid(leak_logit) `[H]`."""
    leak = _check_leak(self.leak, self.features, self.learn_leak)
    params = fused_cell.affine_params(self, num_features, 1)
    if self.learn_leak:
      logits = [math.log(a / (1 - a)) for a in leak]
      init = lambda key, shape, dtype: jnp.asarray(logits, dtype).reshape(shape)
      params['leak'] = jax.nn.sigmoid(
          self.param('leak_logit', init, (self.features,), self.param_dtype))
    return params

  @nn.nowrap
  def scan_kernel(self) -> _LeakyKernel:
    """Step, reverse step and gradients (see `fused_scan.fused_scan`). Carry: h `[B, H]`."""
    leak = None if self.learn_leak else _check_leak(self.leak, self.features, False)
    return _LeakyKernel(leak)


@dataclasses.dataclass(frozen=True)
class _LeakyKernel:
  """Leaky step, reverse step and gradients for `fused_scan.fused_scan`.

  `leak`: the constant α per unit, or None when α is learned (then it is
  `params['leak']`). Residuals per step: g_t = tanh(a_t) `[B, H]`, none when
  α = 1 for every unit (then h_t = g_t exactly, the Elman step). Reverse step, with d_t = ∂L/∂h_t:
  `dz_t = α ⊙ (1 − g_t²) ⊙ d_t`, `d_{t-1} = (1 − α) ⊙ d_t + dz_t Uᵀ`; with a
  learned α also d_t itself, for `∂L/∂α = Σ_t d_t ⊙ (g_t − h_{t-1})`.
  Hoisted (`fused_scan.HoistedScanKernel`): `X W + b` `[B, T, H]` before the
  loop, `h U` in it.
  """

  leak: tuple[float, ...] | None

  def hidden(self, carry: Array) -> Array:
    return carry

  def prepare(self, params: Params) -> Params:
    if self.leak is None:
      return params
    return dict(params, leak=jnp.asarray(self.leak, jnp.result_type(params['bias'])))

  def forward(self, consts: Params, carry: Array, x_t: Array,
              keep_residuals: bool) -> tuple[Array, Array, Any]:
    a = x_t @ consts['input_kernel'] + carry @ consts['recurrent_kernel'] + consts['bias']
    return self._leak(consts, carry, a, keep_residuals)

  def project(self, consts: Params, inputs: Array) -> Array:
    return fused_scan.input_projection(consts, inputs)                 # [B, T, H]

  def forward_projected(self, consts: Params, carry: Array, projected_t: Array,
                        keep_residuals: bool) -> tuple[Array, Array, Any]:
    return self._leak(consts, carry, projected_t + carry @ consts['recurrent_kernel'],
                      keep_residuals)

  def _leak(self, consts: Params, h: Array, a: Array,
            keep_residuals: bool) -> tuple[Array, Array, Any]:
    """The step from its pre-activation `a = W x_t + U h_{t-1} + b` `[B, H]`."""
    g = jnp.tanh(a)
    if self._elman:
      return g, g, None
    new_h = h + consts['leak'] * (g - h)
    return new_h, new_h, g if keep_residuals else None

  def backward(self, consts: Params, residuals: Any, y_t: Array, h_prev: Array,
               d_carry: Array, d_y: Array) -> tuple[Array, Any]:
    del h_prev
    alpha, g = consts['leak'], y_t if self._elman else residuals
    d_h = d_carry + d_y
    d_a = d_h * alpha * (1 - g * g)
    d_prev = d_h * (1 - alpha) + d_a @ consts['recurrent_kernel'].T
    return d_prev, (d_a if self.leak is not None else (d_a, d_h))

  @property
  def _elman(self) -> bool:
    """α = 1 for every unit: the Elman tanh step, h_t = g_t."""
    return self.leak is not None and all(a == 1 for a in self.leak)

  def gradients(self, params: Params, consts: Params, inputs: Array, residuals: Any,
                h_prev: Array, dz: Any) -> tuple[Params, Array]:
    del consts
    d_a, d_h = (dz, None) if self.leak is not None else dz
    grads, d_inputs = fused_scan.input_gradients(params, inputs, d_a)
    grads['recurrent_kernel'] = fused_scan.matmul_tn(h_prev, d_a)
    if d_h is not None:
      grads['leak'] = fused_scan.sum_bt(d_h * (residuals - h_prev))
    return grads, d_inputs
