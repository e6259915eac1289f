"""bfloat16 computation and bfloat16 parameters in every cell and wrapper, against the
float32 model on the same values (params, inputs, initial carry and output cotangents
are drawn once, rounded to bfloat16, so every model sees them exactly)."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from jax.flatten_util import ravel_pytree

import seqnets as sn

B, T, F, H = 2, 7, 3, 8
LENGTHS = np.array([7, 4])
ATOL = 0.05          # |bfloat16 − float32| of outputs and carries, relative above 1 (docs/layers.md)
MIN_COSINE = 0.98    # cosine similarity of bfloat16 and float32 gradients
bf16, f32 = jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float32)

CELLS = {
    'elman': lambda **kw: sn.ElmanCell(H, **kw),
    'lstm': lambda **kw: sn.LSTMCell(H, **kw),
    'lstm_peep': lambda **kw: sn.LSTMCell(H, use_peepholes=True, **kw),
    'gru': lambda **kw: sn.GRUCell(H, **kw),
    'gru_after': lambda **kw: sn.GRUCell(H, reset_after=True, **kw),
}
# name: (cell attributes, input dtype, expected dtypes of params, carry and outputs)
PRECISIONS = {
    'bf16_compute': (dict(dtype=bf16, param_dtype=f32), f32, (f32, bf16, bf16)),
    'bf16_params': (dict(param_dtype=bf16), bf16, (bf16, bf16, bf16)),
    'bf16_params_f32_inputs': (dict(param_dtype=bf16), f32, (bf16, bf16, f32)),
}
CELL_PRECISIONS = ('bf16_compute', 'bf16_params')          # every cell × runner
WRAPPER_PRECISIONS = ('bf16_compute', 'bf16_params_f32_inputs')
RUNNERS = {
    'fused': lambda cell: sn.RNN(cell, return_carry=True),
    'plain_scan': lambda cell: sn.RNN(cell, return_carry=True, fused=False),
    'flax_rnn': lambda cell: nn.RNN(cell, return_carry=True),
}


def seqnets_call(fn, x, carry):
  """`fn`: a model's `init` or `apply` with its first argument bound."""
  return fn(x, lengths=LENGTHS, initial_carry=carry)


def flax_call(fn, x, carry):
  return fn(x, initial_carry=carry)


def dtypes(tree):
  return [jnp.result_type(a) for a in jax.tree_util.tree_leaves(tree)]


def random_like(tree, seed):
  """N(0, 0.5) leaves shaped like `tree`, rounded to bfloat16, in each leaf's dtype."""
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(treedef, [
      jnp.asarray(rng.normal(0, 0.5, l.shape), bf16).astype(l.dtype) for l in leaves])


def cast_like(tree, like):
  return jax.tree_util.tree_map(lambda a, l: a.astype(jnp.result_type(l)), tree, like)


def cosine(a, b):
  a, b = (ravel_pytree(jax.tree_util.tree_map(lambda v: v.astype(f32), t))[0] for t in (a, b))
  return float(a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b)))


def setup(model, x_dtype, call):
  """Random `(params, x, initial_carry)` in the dtypes `model.init` and the default carry
  have (init is traced, not run), and random output cotangents."""
  x = random_like(jax.ShapeDtypeStruct((B, T, F), x_dtype), 0)
  params = random_like(jax.eval_shape(lambda: call(partial(model.init, jax.random.key(0)), x,
                                                   None)), 1)
  carry, y = jax.eval_shape(lambda: call(partial(model.apply, params), x, None))
  return (params, x, random_like(carry, 2)), random_like((carry, y), 3)


def run(model, call, args, cotangents):
  """`(final_carry, outputs, gradients of (params, x, initial carry))`."""
  (carry, y), vjp = jax.vjp(lambda p, x, c: call(partial(model.apply, p), x, c), *args)
  return carry, y, vjp(cast_like(cotangents, (carry, y)))


def check(label, args, got, want):
  """`got` (low precision) against `want` (float32): dtypes, values, gradients."""
  carry, y, grads = got
  carry32, y32, grads32 = want
  assert dtypes(carry) == dtypes(args[2]), label        # the carry keeps its dtype
  for a, b in zip(jax.tree_util.tree_leaves((y, carry)), jax.tree_util.tree_leaves((y32, carry32))):
    err = np.abs(np.asarray(a, np.float32) - np.asarray(b))
    assert (err <= ATOL * np.maximum(1, np.abs(b))).all(), (label, err.max())  # LSTM c: relative
  for part, primal, g, g32 in zip(('params', 'inputs', 'carry'), args, grads, grads32):
    assert dtypes(g) == dtypes(primal), (label, part)       # cotangents in the primal dtypes
    assert np.isfinite(ravel_pytree(cast_like(g, g32))[0]).all(), (label, part)
    assert cosine(g, g32) >= MIN_COSINE, (label, part, cosine(g, g32))


def check_all(cases, references):
  """Runs every case and its float32 reference in one jit (compiling dominates the time)
  and checks them. `cases`: `(label, model, call, precision, reference key)`;
  `references`: key -> `(float32 model, call)`. A reference runs once, on the float32
  cast of its first case's values (every case of a key has the same values)."""
  prepared = [setup(model, PRECISIONS[precision][1], call)
              for _, model, call, precision, _ in cases]
  as_f32 = lambda tree: jax.tree_util.tree_map(lambda a: a.astype(f32), tree)
  first = {}
  for (_, _, _, _, key), values in zip(cases, prepared):
    first.setdefault(key, values)
    jax.tree_util.tree_map(np.testing.assert_array_equal, as_f32(values), as_f32(first[key]))

  def everything(prepared, first):
    low = [run(model, call, *values) for (_, model, call, _, _), values in zip(cases, prepared)]
    ref = {key: run(*references[key], *as_f32(values)) for key, values in first.items()}
    return low, ref

  # LLVM's optimisations took a quarter of the test's time; speed does not matter here.
  compiled = jax.jit(everything).lower(prepared, first).compile(
      compiler_options={'xla_backend_optimization_level': 0})
  low, ref = compiled(prepared, first)
  for (label, _, _, precision, key), (args, _), got in zip(cases, prepared, low):
    params_dtype, carry_dtype, y_dtype = PRECISIONS[precision][2]
    assert set(dtypes(args[0])) == {params_dtype}, label
    assert set(dtypes(got[0])) == {carry_dtype} and got[1].dtype == y_dtype, label
    check(label, args, got, ref[key])


@pytest.mark.parametrize('name', sorted(CELLS))
def test_cell_in_low_precision_agrees_with_float32(name):
  # The float32 fused scan is the reference of both sn.RNN paths (equal to 2e-5).
  references = {'sn': (RUNNERS['fused'](CELLS[name]()), seqnets_call),
                'flax': (RUNNERS['flax_rnn'](CELLS[name]()), flax_call)}
  cases = []
  for runner, make in RUNNERS.items():
    key = 'flax' if runner == 'flax_rnn' else 'sn'
    for precision in CELL_PRECISIONS:
      model = make(CELLS[name](**PRECISIONS[precision][0]))
      cases.append((f'{runner}/{precision}', model, references[key][1], precision, key))
  check_all(cases, references)


@pytest.mark.parametrize('name', sorted(CELLS))
def test_low_precision_init_and_step_dtypes(name):
  """bfloat16 params are the float32 init rounded; a step keeps its carry's dtype."""
  x = np.ones((B, F), np.float32)
  for attributes in (dict(param_dtype=bf16), dict(dtype=bf16)):
    carry = CELLS[name](**attributes).initialize_carry(None, x.shape)
    assert set(dtypes(carry)) == {bf16}, attributes
  cell, cell32 = CELLS[name](param_dtype=bf16), CELLS[name]()
  params = cell.init(jax.random.key(0), cell.initialize_carry(None, x.shape), x)
  params32 = cell32.init(jax.random.key(0), cell32.initialize_carry(None, x.shape), x)
  assert set(dtypes(params)) == {bf16}
  jax.tree_util.tree_map(np.testing.assert_array_equal, params,
                         jax.tree_util.tree_map(lambda a: a.astype(bf16), params32))
  # float32 inputs with bfloat16 params and carry compute in float32 (dtype=None) ...
  carry, y = cell.apply(params, cell.initialize_carry(None, x.shape), x)
  assert set(dtypes(carry)) == {bf16} and y.dtype == f32
  # ... and a float32 carry stays float32 through a bfloat16 step.
  carry, y = CELLS[name](dtype=bf16).apply(params32, cell32.initialize_carry(None, x.shape), x)
  assert set(dtypes(carry)) == {f32} and y.dtype == bf16


def test_wrappers_in_low_precision_agree_with_float32():
  """A StackedRNN of an Elman layer and a Bidirectional of a fused LSTM with peepholes
  and a flax.linen.RNN of a GRU; carries: `(h, ((c, h), h))`."""
  def build(**kw):
    return sn.StackedRNN([
        sn.RNN(sn.ElmanCell(H, **kw), fused=False),
        sn.Bidirectional(sn.RNN(sn.LSTMCell(H, use_peepholes=True, **kw)),
                         nn.RNN(sn.GRUCell(H, reset_after=True, **kw)))], return_carry=True)

  def call(fn, x, carry):
    return fn(x, lengths=LENGTHS, initial_carry=carry, deterministic=True)

  cases = [(precision, build(**PRECISIONS[precision][0]), call, precision, 'stack')
           for precision in WRAPPER_PRECISIONS]
  check_all(cases, {'stack': (build(), call)})
