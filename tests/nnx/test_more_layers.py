"""The unitary, skip, echo state and ConvLSTM cells, the attention cell (both placements,
the three scores) and the CRF in `seqnets.nnx` against their linen twins: with the same
weights (moved by `snx.from_linen`, whose trees equal linen's `init`) the same outputs,
carries and gradients, one jit per side."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn
from flax import nnx

import seqnets as sn
import seqnets.nnx as snx

B, T, F, H = 2, 5, 3, 4
S, D = 6, 4                       # memory length and size (D = H for the dot score)
IMAGE = (3, 4)
LENGTHS = np.array([4, 0])
MEMORY_LENGTHS = np.array([6, 2])


def random_tree(tree, seed):
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda a: rng.normal(0, 0.5, np.shape(a)).astype(np.float32), tree)


def with_loss(outputs):
  """`(loss, outputs)`: the loss weights every float output element differently."""
  return sum(jnp.sum(a * jnp.cos(jnp.arange(a.size, dtype=jnp.float32).reshape(a.shape)))
             for a in jax.tree_util.tree_leaves(outputs)
             if jnp.issubdtype(a.dtype, jnp.floating)), outputs


def param_shapes(variables):
  """`{path: shape}` of a linen variables tree (a tree without params gives {})."""
  flat = flax.traverse_util.flatten_dict(dict(variables).get('params', {}))
  return {path: np.shape(a) for path, a in flat.items()}


def run_both(model, linen, args, seed, differentiated=2):
  """Random weights into `model` (from linen variables), then `(outputs, grads)` of both,
  gradients w.r.t. the params (linen layout) and the first `differentiated - 1` args."""
  variables = random_tree(snx.to_linen(model), seed)
  shapes = jax.eval_shape(linen.init, jax.random.key(0), *args)
  assert param_shapes(snx.to_linen(model)) == param_shapes(shapes)
  snx.from_linen(model, variables)
  argnums = tuple(range(differentiated))

  @nnx.jit
  def nnx_run(model, *args):
    (_, outputs), grads = nnx.value_and_grad(
        lambda m, *a: with_loss(m(*a)), argnums=argnums, has_aux=True)(model, *args)
    return outputs, (snx.to_linen(grads[0]),) + grads[1:]

  @jax.jit
  def linen_run(variables, *args):
    (_, outputs), grads = jax.value_and_grad(
        lambda v, *a: with_loss(linen.apply(v, *a)), argnums=argnums, has_aux=True)(
            variables, *args)
    return outputs, grads

  return nnx_run(model, *args), linen_run(variables, *args)


def assert_close(actual, expected, **tolerance):
  assert jax.tree_util.tree_structure(actual) == jax.tree_util.tree_structure(expected)
  check = (np.testing.assert_array_equal if not tolerance
           else lambda a, b: np.testing.assert_allclose(a, b, **tolerance))
  jax.tree_util.tree_map(check, actual, expected)


class StepCells(nnx.Module):
  """One `snx.RNN` per cell without a fused kernel."""

  def __init__(self, rngs):
    self.unitary = snx.RNN(snx.UnitaryRNNCell(F, H, permutation_seed=3, rngs=rngs),
                           return_carry=True)
    self.skip = snx.RNN(snx.SkipRNNCell(F, H, skip=3, rngs=rngs), return_all_carries=True,
                        reverse=True)
    self.echo = snx.RNN(snx.EchoStateCell(F, H, leak=0.5, bias_scale=0.3), return_carry=True)
    self.conv = snx.RNN(snx.ConvLSTMCell(F, H, kernel_size=(3, 2), use_peepholes=True,
                                         image_size=IMAGE, rngs=rngs), return_carry=True)

  def __call__(self, x, images):
    return (self.unitary(x, LENGTHS), self.skip(x, LENGTHS), self.echo(x, LENGTHS),
            self.conv(images, LENGTHS))


class LinenStepCells(nn.Module):
  @nn.compact
  def __call__(self, x, images):
    # Cells made unbound (parent=None), so that each RNN adopts its own as 'cell'.
    return (sn.RNN(sn.UnitaryRNNCell(H, permutation_seed=3, parent=None), return_carry=True,
                   name='unitary')(x, LENGTHS),
            sn.RNN(sn.SkipRNNCell(H, skip=3, parent=None), return_all_carries=True,
                   reverse=True, name='skip')(x, LENGTHS),
            sn.RNN(sn.EchoStateCell(H, leak=0.5, bias_scale=0.3, parent=None),
                   return_carry=True, name='echo')(x, LENGTHS),
            sn.RNN(sn.ConvLSTMCell(H, kernel_size=(3, 2), use_peepholes=True, parent=None),
                   return_carry=True, name='conv')(images, LENGTHS))


def test_step_cells_equal_linen():
  data = np.random.default_rng(0)
  x = data.normal(size=(B, T, F)).astype(np.float32)
  images = data.normal(size=(B, T, *IMAGE, F)).astype(np.float32)
  model = nnx.eval_shape(lambda: StepCells(nnx.Rngs(0)))
  (outputs, grads), (ref_outputs, ref_grads) = run_both(
      model, LinenStepCells(), (x, images), seed=1, differentiated=3)
  assert_close(outputs, ref_outputs)
  assert_close(grads, ref_grads)
  assert outputs[3][1].shape == (B, T, *IMAGE, H) and outputs[0][1].shape == (B, T, 2 * H)
  assert np.all(np.asarray(outputs[3][1])[1] == 0)
  np.testing.assert_array_equal(model.echo.cell.reservoir()['bias'],
                                sn.EchoStateCell(H, bias_scale=0.3).reservoir(F)['bias'])
  with pytest.raises(ValueError, match='image_size'):
    snx.ConvLSTMCell(F, H, use_peepholes=True, rngs=nnx.Rngs(0))


ATTENTION = {   # name: (wrapped cell for its inputs, score, placement, attention / output size)
    'bahdanau_additive': (lambda f, rngs: snx.LSTMCell(f, H, rngs=rngs),
                          lambda: sn.LSTMCell(H, parent=None), 'additive', 'bahdanau', 5),
    'luong_general': (lambda f, rngs: snx.GRUCell(f, H, reset_after=True, rngs=rngs),
                      lambda: sn.GRUCell(H, reset_after=True, parent=None), 'general', 'luong',
                      3),
    'bahdanau_dot': (lambda f, rngs: snx.ElmanCell(f, H, rngs=rngs),
                     lambda: sn.ElmanCell(H, parent=None), 'dot', 'bahdanau', 0),
}


def sizes(score, placement, size):
  kwargs = {'attention_size': size} if score == 'additive' else {}
  if placement == 'luong':
    kwargs['output_size'] = size
  return kwargs


class AttentionModels(nnx.Module):
  def __init__(self, rngs):
    for name, (make, _, score, placement, size) in ATTENTION.items():
      kwargs = sizes(score, placement, size)
      feed = D if placement == 'bahdanau' else (size or H)
      cell = snx.AttentionCell(make(F + feed, rngs), D, score=score, placement=placement,
                               rngs=rngs, **kwargs)
      setattr(self, name, snx.RNN(cell, return_carry=True, return_all_carries=True))

  def __call__(self, x, memory, mask):
    results = {}
    for name in ATTENTION:
      layer = getattr(self, name)
      layer.cell.set_memory(memory, mask)
      results[name] = layer(x, LENGTHS)
    return results


class LinenAttentionModels(nn.Module):
  @nn.compact
  def __call__(self, x, memory, mask):
    results = {}
    for name, (_, make, score, placement, size) in ATTENTION.items():
      cell = sn.AttentionCell(make(), memory=memory, memory_mask=mask, score=score,
                              placement=placement, parent=None,
                              **sizes(score, placement, size))
      results[name] = sn.RNN(cell, return_carry=True, return_all_carries=True,
                             name=name)(x, LENGTHS)
    return results


def test_attention_cells_equal_linen():
  """The linen cell computes the memory's keys at every step, the NNX cell once
  (`set_memory`): the same outputs; gradients equal to float32 rounding."""
  data = np.random.default_rng(0)
  x = data.normal(size=(B, T, F)).astype(np.float32)
  memory = data.normal(size=(B, S, D)).astype(np.float32)
  mask = np.arange(S) < MEMORY_LENGTHS[:, None]
  model = nnx.eval_shape(lambda: AttentionModels(nnx.Rngs(0)))
  (outputs, grads), (ref_outputs, ref_grads) = run_both(
      model, LinenAttentionModels(), (x, memory, mask), seed=2, differentiated=3)
  assert_close(outputs, ref_outputs, rtol=1e-6, atol=1e-6)
  assert_close(grads, ref_grads, rtol=1e-5, atol=1e-6)     # params, x, memory
  carries, y = outputs['luong_general'][1:]
  assert y.shape == (B, T, 3) and outputs['bahdanau_dot'][2].shape == (B, T, H + D)
  alpha = np.asarray(carries[2])
  np.testing.assert_allclose(alpha[0, :4].sum(-1), 1, rtol=1e-6)
  assert np.all(alpha[0, :, 2:] >= 0) and np.all(alpha[1] == 0)
  with pytest.raises(ValueError, match='set_memory'):
    snx.AttentionCell(snx.LSTMCell(F + D, H, rngs=nnx.Rngs(0)), D,
                      rngs=nnx.Rngs(0)).initialize_carry((B, F))
  with pytest.raises(ValueError, match="'dot' attention"):
    snx.AttentionCell(snx.LSTMCell(F + D + 1, H, rngs=nnx.Rngs(0)), D + 1, score='dot',
                      rngs=nnx.Rngs(0))


TAGS = ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC']


class CRFModel(nnx.Module):
  def __init__(self, rngs):
    self.crf = snx.CRF(len(TAGS), allowed=sn.layers.bio_constraints(TAGS), rngs=rngs)

  def __call__(self, emissions, tags, lengths):
    return (self.crf.log_likelihood(emissions, tags, lengths),
            self.crf.log_partition(emissions, lengths), self.crf(emissions, lengths))


class LinenCRFModel(nn.Module):
  @nn.compact
  def __call__(self, emissions, tags, lengths):
    crf = sn.layers.CRF(len(TAGS), allowed=sn.layers.bio_constraints(TAGS), name='crf')
    return (crf.log_likelihood(emissions, tags, lengths), crf.log_partition(emissions, lengths),
            crf(emissions, lengths))


def test_crf_equals_linen():
  data = np.random.default_rng(0)
  emissions = data.normal(size=(3, T, len(TAGS))).astype(np.float32)
  tags = data.integers(0, len(TAGS), size=(3, T))
  lengths = np.array([5, 2, 0])
  model = nnx.eval_shape(lambda: CRFModel(nnx.Rngs(0)))
  (outputs, grads), (ref_outputs, ref_grads) = run_both(
      model, LinenCRFModel(), (emissions, tags, lengths), seed=3)
  assert_close(outputs, ref_outputs)
  assert_close(grads, ref_grads)
  path, _ = outputs[2]
  assert np.all(np.asarray(path)[2] == 0) and model.crf.num_tags == len(TAGS)
