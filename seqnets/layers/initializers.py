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


CHRONO = 'chrono'


def chrono_gate_bias_init(gate_values: tuple, max_length: int) -> Initializer:
  """Chrono initialisation (Tallec & Ollivier 2018, arXiv:1804.11188): bias `[G·H]` whose
  gate block g is `gate_values[g]`, a constant, or `'chrono'` / `'-chrono'`:

    b = ±log u,   u ~ U(1, max_length − 1), one u per unit shared by the gate blocks

  LSTM (i, f, g, o): `('-chrono', 'chrono', 0, 0)`, so b_f = log u and b_i = −b_f: unit j
  starts with a forgetting time of about u_j steps, spread over [1, max_length]. GRU
  (r, z, n, z weighting the new state): `(0, '-chrono', 0)`, b_z = −log u.
  """
  if max_length < 3:
    raise ValueError(f'chrono max_length must be >= 3 (u ~ U(1, max_length - 1)), '
                     f'got {max_length}')
  signs = {CHRONO: 1.0, '-' + CHRONO: -1.0}
  for value in gate_values:
    if isinstance(value, str) and value not in signs:
      raise ValueError(f'gate value {value!r}; valid: a number, {sorted(signs)}')

  def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    num_gates = len(gate_values)
    if shape[-1] % num_gates:
      raise ValueError(f'bias size {shape[-1]} is not a multiple of {num_gates} gates')
    block = shape[-1] // num_gates
    log_u = jnp.log(jax.random.uniform(key, (block,), jnp.float32, 1.0, max_length - 1.0))
    blocks = [signs[v] * log_u if isinstance(v, str) else jnp.full((block,), v, jnp.float32)
              for v in gate_values]
    return jnp.concatenate(blocks).reshape(shape).astype(dtype)

  return init


def uses_chrono(name: str, value: float | str, chrono_max_length: int | None) -> bool:
  """Whether the gate bias setting `name=value` asks for the chrono initialisation; ValueError
  for a string other than 'chrono', or one of the two chrono settings without the other."""
  if value == CHRONO:
    if chrono_max_length is None:
      raise ValueError(f"{name}='chrono' needs chrono_max_length (T_max, the longest "
                       'dependency to start with)')
    return True
  if isinstance(value, str):
    raise ValueError(f"{name}={value!r}; valid: a number or 'chrono'")
  if chrono_max_length is not None:
    raise ValueError(f"chrono_max_length is read only with {name}='chrono', got "
                     f'{name}={value!r}')
  return False


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
