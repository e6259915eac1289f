"""Multi-layer perceptron with activations chosen by name.

Synopsis:
  mlp = sn.MLP((64, 64, 10), activation='tanh', output_activation='softmax')
  y = mlp.apply(params, x)                       # x: [..., F] -> [..., 10]
  sn.ACTIVATIONS['selu'](x)                      # the functions, by config name
"""

from __future__ import annotations

from typing import Callable, Sequence

import jax
from flax import linen as nn

Array = jax.Array


def _identity(x: Array) -> Array:
  return x


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    'relu': jax.nn.relu,
    'tanh': jax.nn.tanh,
    'sigmoid': jax.nn.sigmoid,
    'elu': jax.nn.elu,
    'selu': jax.nn.selu,
    'softplus': jax.nn.softplus,
    'softsign': jax.nn.soft_sign,
    'identity': _identity,
}

OUTPUT_ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    **ACTIVATIONS,
    'softmax': jax.nn.softmax,
    'log_softmax': jax.nn.log_softmax,
}


def get_activation(name: str, *, output: bool = False) -> Callable[[Array], Array]:
  """The function called `name` in `ACTIVATIONS` (or `OUTPUT_ACTIVATIONS`).

  Raises:
    ValueError: for an unknown name, listing the valid ones.
  """
  table = OUTPUT_ACTIVATIONS if output else ACTIVATIONS
  if name not in table:
    kind = 'output_activation' if output else 'activation'
    raise ValueError(f'unknown {kind} {name!r}; valid: {sorted(table)}')
  return table[name]


class MLP(nn.Module):
  """Stack of dense layers:

    h_0 = x,   h_l = φ(W_l h_{l−1} + b_l)  for l < L,   y = ψ(W_L h_{L−1} + b_L)

  with φ = `activation`, ψ = `output_activation` (none: y are logits), and
  dropout on every hidden h_l (not on x, not on y). Parameters:
  `Dense_l/kernel [F_{l−1}, F_l]`, `Dense_l/bias [F_l]`, l = 0 … L − 1.

  Attributes:
    features: output size of each layer, last = output size.
    activation: hidden φ, a key of `ACTIVATIONS`: relu, tanh, sigmoid, elu,
      selu, softplus, softsign, identity.
    output_activation: ψ, None or a key of `OUTPUT_ACTIVATIONS` (also softmax,
      log_softmax). Leave None when the loss takes logits.
    dropout_rate: dropout after each hidden activation.
  """

  features: Sequence[int]
  activation: str = 'relu'
  output_activation: str | None = None
  dropout_rate: float = 0.0

  def __post_init__(self):
    # Validate at construction, so a bad config fails before init or compile.
    if not self.features or any(not isinstance(f, int) or f < 1 for f in self.features):
      raise ValueError(f'MLP features={self.features!r} must be a non-empty list of positive ints')
    get_activation(self.activation)
    if self.output_activation is not None:
      get_activation(self.output_activation, output=True)
    if not 0.0 <= self.dropout_rate < 1.0:
      raise ValueError(f'MLP dropout_rate={self.dropout_rate} must be in [0, 1)')
    super().__post_init__()

  @nn.compact
  def __call__(self, x: Array, *, deterministic: bool = True) -> Array:
    """`x: [..., F]` -> `[..., features[-1]]`."""
    phi = get_activation(self.activation)
    for width in self.features[:-1]:
      x = phi(nn.Dense(width)(x))
      if self.dropout_rate > 0:
        x = nn.Dropout(self.dropout_rate)(x, deterministic=deterministic)
    y = nn.Dense(self.features[-1])(x)
    if self.output_activation is not None:
      y = get_activation(self.output_activation, output=True)(y)
    return y
