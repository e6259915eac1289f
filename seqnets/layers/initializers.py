"""Initialisers the recurrent cells need beyond `flax.linen.initializers`."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

Initializer = Callable[..., jax.Array]


def gate_bias_init(gate_values: tuple[float, ...]) -> Initializer:
  """Bias `[G·H]` initialiser that fills gate block g with `gate_values[g]`.

  `gate_bias_init((0., 1., 0., 0.))` gives an LSTM forget-gate bias of 1 (gate
  order i, f, g, o). flax has no per-block constant initialiser.
  """

  def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    del key
    num_gates = len(gate_values)
    if shape[-1] % num_gates:
      raise ValueError(f'bias size {shape[-1]} is not a multiple of {num_gates} gates')
    block = shape[-1] // num_gates
    return jnp.repeat(jnp.asarray(gate_values, dtype), block).reshape(shape)

  return init


def in_float32(init: Initializer) -> Initializer:
  """`init` for any dtype: a float narrower than 32 bits (bfloat16, float16) is
  drawn in float32 and rounded, so such parameters equal the float32 ones rounded
  and initialisers float32-only in JAX (`orthogonal`: no bfloat16 QR) work.
  Other dtypes go to `init` unchanged."""

  def wrapped(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    if jnp.issubdtype(dtype, jnp.floating) and jnp.finfo(dtype).bits < 32:
      return init(key, shape, jnp.float32).astype(dtype)
    return init(key, shape, dtype)

  return wrapped
