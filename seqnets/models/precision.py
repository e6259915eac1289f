"""Mixed precision for any model: parameters stored in one dtype, computation in another.

  config.model.dtype = 'bfloat16'          # computation; the default is 'float32'
  config.model.param_dtype = 'float32'     # the stored parameters (and their gradients)

`with_policy(cls, Policy('bfloat16', 'float32'))` is `cls` with every public method
(`__call__`, `encode`, `initial_carry`, `step`, ...) wrapped so that

  * the parameters enter cast to the computation dtype (`nn.map_variables`: the stored
    ones keep `param_dtype`, and their gradients come back in it, through the cast);
  * floating-point arguments enter cast to the computation dtype, so every layer
    (embeddings, cells, attention, Transformer, heads) computes in it;
  * floating-point results leave as float32, so the losses, their softmax and the metrics
    are computed in float32 whatever the computation dtype;
  * parameters a run creates are stored in `param_dtype`.

The parameter tree (names, shapes) is the same as `cls`'s, so a checkpoint does not
depend on the computation dtype. The factory builds the cells with `dtype` too, so a
recurrent step's carry is in the computation dtype. Other collections (batch statistics,
a language model's carried state) are not cast.

Why by hand: flax's layers take `dtype` one by one; this applies one policy to a whole
model without a field on each module (`jmp`'s policy, for flax modules).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}


@dataclasses.dataclass(frozen=True)
class Policy:
  """`dtype`: the computation dtype; `param_dtype`: the stored parameters' (names of `DTYPES`)."""
  dtype: str = 'float32'
  param_dtype: str = 'float32'

  def __post_init__(self):
    for field in ('dtype', 'param_dtype'):
      if getattr(self, field) not in DTYPES:
        raise ValueError(f'{field} must be one of {sorted(DTYPES)}, got {getattr(self, field)!r}')

  @property
  def is_default(self) -> bool:
    return self.dtype == 'float32' and self.param_dtype == 'float32'


def cast_floating(tree: Any, dtype: Any) -> Any:
  """`tree` with every floating-point array leaf in `dtype` (other leaves as they are)."""
  def cast(leaf):
    if (isinstance(leaf, (jax.Array, np.ndarray, np.generic))
        and jnp.issubdtype(leaf.dtype, jnp.floating)):
      return jnp.asarray(leaf, dtype)
    return leaf
  return jax.tree_util.tree_map(cast, tree)


def public_methods(cls: type) -> list[str]:
  """`__call__` and the public methods `cls` defines beyond `nn.Module`'s."""
  base = set(dir(nn.Module))
  found = ['__call__'] if hasattr(cls, '__call__') else []
  for name, value in inspect.getmembers(cls, inspect.isfunction):
    if not name.startswith('_') and name not in base and name != 'setup':
      found.append(name)
  return found


def with_policy(cls: type, policy: Policy) -> type:
  """`cls` computing in `policy.dtype` with parameters stored in `policy.param_dtype`
  (see the module docstring); `cls` itself for the default float32 policy."""
  if policy.is_default:
    return cls
  compute, stored = DTYPES[policy.dtype], DTYPES[policy.param_dtype]
  methods = public_methods(cls)
  to_compute = lambda variables: cast_floating(variables, compute)
  # Applying: the stored parameters enter cast. Initialising with parameters stored in
  # another dtype than float32: they are created, then stored cast. (flax's map_variables
  # with init=True loses the parameters when other collections are mutable, so the two
  # cases are two transforms.)
  applying = nn.map_variables(cls, 'params', trans_in_fn=to_compute, methods=methods)
  creating = nn.map_variables(cls, 'params', trans_in_fn=to_compute,
                              trans_out_fn=lambda variables: cast_floating(variables, stored),
                              init=True, mutable=True, methods=methods)

  def wrap(name):
    plain = getattr(cls, name)

    @functools.wraps(plain)
    def method(self, *args, **kwargs):
      args, kwargs = cast_floating((args, kwargs), compute)
      if not self.is_initializing():
        run = getattr(applying, name)
      else:    # float32 parameters are created exactly as `cls` creates them
        run = plain if stored == jnp.float32 else getattr(creating, name)
      return cast_floating(run(self, *args, **kwargs), jnp.float32)
    return method

  namespace = {name: wrap(name) for name in methods}
  namespace['__module__'] = cls.__module__
  namespace['__doc__'] = cls.__doc__
  return type(cls.__name__, (cls,), namespace)

MATMULS = ('dot_general', 'conv_general_dilated')


def matmuls_in(jaxpr: Any, dtype: Any = jnp.float32) -> list[str]:
  """The matrix products (`dot_general`, convolutions) of a (closed) jaxpr, its scans,
  loops, custom derivatives and nested calls included, with an operand in `dtype`; each
  as `'dot_general(float32[2, 16], bfloat16[16, 64])'`. With a bfloat16 policy, none of a
  model's should be float32 (`jax.make_jaxpr(loss_and_grad)(params)`)."""
  found = []
  jaxpr = getattr(jaxpr, 'jaxpr', jaxpr)
  for eqn in jaxpr.eqns:
    if eqn.primitive.name in MATMULS:
      avals = [v.aval for v in eqn.invars]
      if any(a.dtype == jnp.dtype(dtype) for a in avals):
        found.append(f"{eqn.primitive.name}({', '.join(a.str_short() for a in avals)})")
    for param in eqn.params.values():
      for sub in (param if isinstance(param, (tuple, list)) else (param,)):
        if hasattr(sub, 'eqns') or hasattr(getattr(sub, 'jaxpr', None), 'eqns'):
          found.extend(matmuls_in(sub, dtype))
  return found
