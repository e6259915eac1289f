"""Estimate of the memory one training step needs: weights, gradients, optimizer state, activations.

Synopsis:
  est = training_memory(model, x, dtype=jnp.float32, optimizer_slots=2)   # Adam: m and v
  est.weights, est.gradients, est.optimizer_state, est.activations, est.total   # bytes
  training_memory_bytes(model, jax.ShapeDtypeStruct((32, 227, 227, 3), jnp.float32))

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
