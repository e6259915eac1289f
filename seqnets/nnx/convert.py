"""Parameters between the linen and NNX front ends, bit for bit.

  model = snx.from_linen(lambda: snx.RNN(snx.LSTMCell(3, 4, rngs=nnx.Rngs(0))), variables)
  variables = snx.to_linen(model)            # {'params': {'cell': {'input_kernel': ...}}}

An NNX module's `nnx.Param` at path `('layers', 0, 'cell', 'bias')` is the linen param
`params['layers_0']['cell']['bias']`: attribute names are the linen submodule and param
names, and an index into an `nnx.List` joins the name before it (`layers_0`), as linen
names the modules of a list. So `snx.RNN(cell)` holds `{'cell': ...}`,
`snx.Bidirectional` `{'forward': ..., 'backward': ...}`, `snx.StackedRNN`
`{'layers_0': ..., ...}`, the trees of `seqnets.RNN`, `Bidirectional` and `StackedRNN`
(`seqnets.layers.param_trees`), and a user's NNX model maps onto its linen twin the same
way when its attributes carry the linen names.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from flax import traverse_util

Variables = Mapping[str, Any]


def linen_path(path: tuple[Any, ...]) -> tuple[str, ...]:
  """The linen name path of an NNX state path: `('layers', 0, 'cell', 'bias')` ->
  `('layers_0', 'cell', 'bias')`."""
  names: list[str] = []
  for key in path:
    if isinstance(key, int) and names:
      names[-1] = f'{names[-1]}_{key}'
    else:
      names.append(str(key))
  return tuple(names)


def to_linen(module: nnx.Module | nnx.State) -> dict[str, Any]:
  """The linen variables `{'params': {...}}` of `module`'s `nnx.Param`s (the same arrays,
  nested by `linen_path`), as `linen_module.init` returns them for the linen twin.

  `module` may also be a state of params, e.g. the gradients `nnx.grad` returns (then the
  result holds the gradients in the linen layout)."""
  state = module if isinstance(module, nnx.State) else nnx.state(module, nnx.Param)
  flat = {linen_path(path): (variable.get_value() if isinstance(variable, nnx.Variable)
                             else variable)
          for path, variable in nnx.to_flat_state(state)}
  return {'params': traverse_util.unflatten_dict(flat)}


def from_linen(module: nnx.Module | Callable[[], nnx.Module],
               variables: Variables) -> nnx.Module:
  """`module` with every `nnx.Param` set to the linen param at its `linen_path`; returns it.

  `module` is an NNX module (updated in place; also an abstract one, from `nnx.eval_shape`)
  or a function making one, e.g. `lambda: snx.RNN(snx.LSTMCell(F, H, rngs=nnx.Rngs(0)))`:
  traced with `nnx.eval_shape` (nothing initialised) when params are all its state, else
  called once (e.g. a dropout's rng stream must be made). `variables` are linen
  variables (`{'params': ...}`, as `init` returns and checkpoints hold) or the params tree
  itself. Each array is copied as it is: a param missing on either side, or one of another
  shape or dtype, is a ValueError naming its path. Only params move (rng streams and any
  other state stay the module's).
  """
  if not isinstance(module, nnx.Module):
    abstract = nnx.eval_shape(module)
    has_other_state = jax.tree_util.tree_leaves(nnx.state(abstract, nnx.Not(nnx.Param)))
    module = module() if has_other_state else abstract
  params = _params_of(variables)
  linen_flat = traverse_util.flatten_dict(params) if params else {}
  state = nnx.state(module, nnx.Param)
  values: dict[tuple[Any, ...], jax.Array] = {}
  problems = []
  for path, variable in nnx.to_flat_state(state):
    name = linen_path(path)
    if name not in linen_flat:
      problems.append(f'{"/".join(name)}: not in the linen params')
      continue
    given, own = linen_flat.pop(name), variable.get_value()
    # The dtype as given: jnp.asarray would narrow float64 to float32 without a word.
    given_dtype = given.dtype if hasattr(given, 'dtype') else np.asarray(given).dtype
    if np.shape(given) != own.shape or given_dtype != own.dtype:
      problems.append(f'{"/".join(name)}: linen {given_dtype}{list(np.shape(given))}, NNX '
                      f'{own.dtype}{list(own.shape)}')
    values[path] = jnp.asarray(given)
  problems += [f'{"/".join(name)}: no NNX param' for name in sorted(linen_flat)]
  if problems:
    raise ValueError(f'from_linen: the params of {type(module).__name__} and the linen '
                     'variables differ:\n  ' + '\n  '.join(problems))
  nnx.replace_by_pure_dict(state, traverse_util.unflatten_dict(values))
  nnx.update(module, state)
  return module


def _params_of(variables: Variables) -> Mapping[str, Any]:
  """The params tree of linen `variables` (`{'params': tree}` or the tree itself); a
  ValueError for collections other than params."""
  variables = dict(variables)
  if 'params' not in variables:
    return variables
  others = sorted(set(variables) - {'params'})
  if others:
    raise ValueError(f'from_linen moves params only; the variables also hold {others}')
  return variables['params']
