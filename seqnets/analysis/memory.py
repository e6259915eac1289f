"""Estimate of the memory one training step needs: weights, gradients, optimizer state, activations.

Synopsis:
  est = training_memory(model, x, dtype=jnp.float32, optimizer_slots=2)   # Adam: m and v
  est.weights, est.gradients, est.optimizer_state, est.activations, est.total   # bytes
  training_memory_bytes(model, jax.ShapeDtypeStruct((32, 227, 227, 3), jnp.float32))
  rnn_activation_bytes(8, 10_000, 128, cell='lstm', remat=100, peak=True)  # one sn.RNN layer

Inputs may be arrays or `jax.ShapeDtypeStruct`s: everything is traced, nothing
is computed or allocated, so an estimate for a large model costs milliseconds.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn
from jax.extend import core as jax_core

from seqnets.analysis.params import count_params
from seqnets.layers.fused_scan import check_remat


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
  """Bytes per part of one training step; `total` is their sum."""

  weights: int
  gradients: int
  optimizer_state: int
  activations: int

  @property
  def total(self) -> int:
    return self.weights + self.gradients + self.optimizer_state + self.activations


def _rngs() -> dict[str, jax.Array]:
  return {'params': jax.random.key(0), 'dropout': jax.random.key(1)}


def _struct(x: Any) -> jax.ShapeDtypeStruct:
  return jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x))


def _bytes(aval: Any, dtype: Any) -> int:
  """Floating values are counted at `dtype`'s width, others (bool masks, ints) at their own."""
  width = jnp.dtype(dtype).itemsize if jnp.issubdtype(aval.dtype, jnp.floating) else aval.dtype.itemsize
  return math.prod(aval.shape) * width


def _residual_avals(model: nn.Module, variables: Any, inputs: tuple, apply_kwargs: dict,
                    mutable: Any) -> list:
  """Abstract values autodiff keeps from the forward pass for the backward pass.

  The same analysis as `jax.ad_checkpoint.print_saved_residuals`, done with
  public APIs: trace `jax.vjp` with respect to the parameters and read the
  residuals (the leaves of the returned VJP function) off the jaxpr. Excluded:
  the variables themselves (counted as weights), literals, and values built
  from literals alone (e.g. a broadcast zero the ReLU rule keeps), which XLA
  folds into constants. The example inputs are kept when they are residuals
  (the first layer's weight gradient needs its input).
  """
  params = variables['params']
  rest = {k: v for k, v in variables.items() if k != 'params'}

  def loss(p, r, *xs):
    # A stand-in scalar loss; a real loss keeps a few outputs-sized residuals more.
    outputs = model.apply({'params': p, **r}, *xs, rngs=_rngs(), mutable=mutable, **apply_kwargs)
    if mutable is not False:
      outputs = outputs[0]             # (outputs, updated collections)
    return sum(jnp.sum(y) for y in jax.tree_util.tree_leaves(outputs)
               if jnp.issubdtype(y.dtype, jnp.inexact))

  def residuals(p, r, *xs):
    _, vjp_fn = jax.vjp(lambda p: loss(p, r, *xs), p)
    return jax.tree_util.tree_leaves(vjp_fn)

  # Non-parameter variables (batch statistics, constants) are traced inputs as well.
  jaxpr = jax.make_jaxpr(residuals)(params, rest, *inputs).jaxpr
  variable_vars = set(jaxpr.invars[:len(jax.tree_util.tree_leaves(variables))])
  producers = {v: eqn for eqn in jaxpr.eqns for v in eqn.outvars}
  seen, avals = set(), []
  for v in jaxpr.outvars:
    if isinstance(v, jax_core.Literal) or v in seen or v in variable_vars:
      continue
    seen.add(v)
    eqn = producers.get(v)
    if eqn is not None and all(isinstance(i, jax_core.Literal) for i in eqn.invars):
      continue
    avals.append(v.aval)
  return avals


def training_memory(model: nn.Module, *example_inputs: Any, dtype: Any = jnp.float32,
                    optimizer_slots: int = 0, **apply_kwargs: Any) -> MemoryEstimate:
  """Estimates the bytes one training step of `model` holds at its peak.

    weights          = (all variables) × width(dtype)
    gradients        = (params) × width(dtype)
    optimizer_state  = optimizer_slots × (params) × width(dtype)
                       (SGD 0, momentum 1, Adam 2)
    activations      = Σ residuals kept for the backward pass (see below)

  Activations are measured, not modelled: the residuals JAX's autodiff saves
  between the forward and the backward pass of `model.apply` (differentiated
  with respect to `params`), found by tracing. For `Dense → ReLU → Dense` on
  x `[B, F]` they are x (for W₁'s gradient), the ReLU output `[B, H]` (for
  W₂'s gradient) and the ReLU's bool mask `[B, H]`.

  An `sn.RNN` layer on its fused kernel keeps, per step, its kernel's
  residuals and output; with `remat = k` only the carry entering every k-th
  step (`rnn_activation_bytes` gives both in closed form, and the activations
  here equal it plus the layer's inputs and its `prepare`d weight copies).
  The segment `remat` recomputes during the backward pass is a temporary, not
  counted here (`rnn_activation_bytes(..., peak=True)` adds it).

  Approximations: the residual set is what autodiff asks for before XLA
  optimises; XLA may fuse or recompute cheap ones, so the real peak can be
  lower. Not counted: the loss's own residuals (a scalar stand-in, the sum of
  the outputs, is differentiated), temporaries of the backward pass, XLA
  workspace, and the input pipeline. Floating values count at `dtype`'s width
  whatever the model's dtypes (mixed precision is not modelled); bool and
  integer residuals count at their own width.

  Args:
    model: a flax module; initialised abstractly with `jax.eval_shape`.
    *example_inputs: positional inputs to `model.apply` (arrays or
      `jax.ShapeDtypeStruct`s), with the training batch size.
    dtype: training dtype for weights, gradients, optimizer state and float
      activations.
    optimizer_slots: per-parameter arrays the optimizer keeps.
    **apply_kwargs: keyword inputs (e.g. `deterministic=False`; rng streams
      'params' and 'dropout' are supplied). `mutable` (e.g. `['batch_stats']`
      for batch norm in training) goes to `model.apply` only, whose first
      output is then the one differentiated.

  Returns:
    A `MemoryEstimate` in bytes.
  """
  inputs = tuple(_struct(x) for x in example_inputs)
  mutable = apply_kwargs.pop('mutable', False)
  variables = jax.eval_shape(lambda *xs: model.init(_rngs(), *xs, **apply_kwargs), *inputs)
  width = jnp.dtype(dtype).itemsize
  num_params = count_params(variables['params'])
  return MemoryEstimate(
      weights=count_params(variables) * width,
      gradients=num_params * width,
      optimizer_state=optimizer_slots * num_params * width,
      activations=sum(_bytes(aval, dtype)
                      for aval in _residual_avals(model, variables, inputs, apply_kwargs, mutable)))


def training_memory_bytes(model: nn.Module, *example_inputs: Any, dtype: Any = jnp.float32,
                          optimizer_slots: int = 0, **apply_kwargs: Any) -> int:
  """`training_memory(...).total`: the whole estimate in bytes."""
  return training_memory(model, *example_inputs, dtype=dtype, optimizer_slots=optimizer_slots,
                         **apply_kwargs).total


# Per-step `[B, H]` arrays of the fused kernels (`_*Kernel` in seqnets.layers): kept for the
# backward pass (the residuals and the output h_t), dz of the reverse step, the carry.
RNN_STEP_ARRAYS = {
    'lstm': dict(kept=6, dz=4, carry=2),            # i, f, g, o, c_{t-1}, h_t; (c, h)
    'gru': dict(kept=4, dz=3, carry=1),             # r, z, h̃, h_t (reset before h̃'s matmul)
    'gru_reset_after': dict(kept=5, dz=4, carry=1),  # r, z, h̃, U_n h_{t-1} + b_u, h_t
    'elman': dict(kept=1, dz=1, carry=1),           # h_t (tanh: its derivative is 1 − h_t²)
    'elman_other': dict(kept=2, dz=1, carry=1),     # a_t, h_t (any other activation)
}


def rnn_activation_bytes(batch: int, steps: int, hidden: int, *, cell: str = 'lstm',
                         remat: int | None = None, features: int = 0, dtype: Any = jnp.float32,
                         peak: bool = False) -> int:
  """Activation bytes of one `sn.RNN` layer's training step on its fused kernel.

  With B = `batch`, T = `steps`, H = `hidden`, F = `features`, w = width(dtype),
  k = `remat` and S, G, C = `RNN_STEP_ARRAYS[cell]` (`[B, H]` arrays a step
  kept for the backward pass, of dz, of the carry; LSTM 6, 4, 2):

    kept (peak=False, what `training_memory` traces for the layer, less its
    weight-sized `prepare` arrays):
      no remat   w·B·(T·S·H + T·F)
      remat = k  w·B·(⌈T/k⌉·C·H + T·F)        the carry entering each segment
    at the backward pass's peak (peak=True), for a loss on every output:
      no remat   w·B·(T·(S + G + 2)·H + T·F)  + dz and h_{t-1} of every step,
                                                the outputs' cotangent
      remat = k  w·B·(⌈T/k⌉·C·H + 2·T·H + k·(S + G + 1)·H + T·F)
                                                + the outputs and their cotangent
                                                (no longer among the kept arrays),
                                                one recomputed segment with its dz
                                                and h_{t-1}

  The F term is the layer's inputs, kept for the input kernel's gradient
  (pass `features=0` where they are counted elsewhere, e.g. as the model's
  input). The peak with remat is least near k = √(T·C / (S + G + 1)): for
  an LSTM, T = 10,000 and H = 128, B = 8, k = 100 gives 83 MiB against
  469 MiB without remat, most of it the outputs and their cotangent.
  Other temporaries (the loss, the optimizer update, XLA's workspace) are
  not counted; XLA may share buffers, so compiled programs measure up to
  ~10 % less (benchmarks/remat_memory.py). The plain scan (`fused=False`)
  keeps the same carries with remat and more per step without.
  """
  if cell not in RNN_STEP_ARRAYS:
    raise ValueError(f'cell={cell!r}; known: {", ".join(RNN_STEP_ARRAYS)}')
  arrays = RNN_STEP_ARRAYS[cell]
  kept, dz, carry = arrays['kept'], arrays['dz'], arrays['carry']
  width = jnp.dtype(dtype).itemsize
  segment = min(check_remat(remat), steps)
  if not segment:
    per_row = steps * (kept + (dz + 2 if peak else 0)) * hidden
  else:
    per_row = -(-steps // segment) * carry * hidden
    if peak:
      per_row += 2 * steps * hidden + segment * (kept + dz + 1) * hidden
  return width * batch * (per_row + steps * features)
