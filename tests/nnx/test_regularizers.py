"""The cells' regularisers (update dropout, zoneout, weight drop, layer norm) and variational
dropout in `seqnets.nnx` against the linen layers: in evaluation the same outputs, in
training the same outputs and gradients given the same 'dropout' key (passed to the call, or
drawn from the cell's own stream); `.eval()`, `.train()` and `nnx.view` set the mode; the
input mask drawn for cells without a linen twin has the rate's statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import seqnets as sn
import seqnets.nnx as snx

B, T, F, H = 3, 5, 4, 3
LENGTHS = np.array([5, 3, 0])
RATE = 0.4
LAYERS = {   # name: (NNX layer, the linen layer over the same cell)
    'zoneout': (
        lambda rngs: snx.RNN(snx.LSTMCell(F, H, use_peepholes=True, zoneout_rate=RATE,
                                          rngs=rngs), reverse=True),
        lambda: sn.RNN(sn.LSTMCell(H, use_peepholes=True, zoneout_rate=RATE, parent=None),
                       reverse=True)),
    'weight_drop': (
        lambda rngs: snx.RNN(snx.ElmanCell(F, H, weight_drop_rate=RATE, rngs=rngs)),
        lambda: sn.RNN(sn.ElmanCell(H, weight_drop_rate=RATE, parent=None))),
    'layer_norm': (
        lambda rngs: snx.RNN(snx.LSTMCell(F, H, layer_norm=True, rngs=rngs), remat=2),
        lambda: sn.RNN(sn.LSTMCell(H, layer_norm=True, parent=None), remat=2)),
    'variational_update_dropout': (
        lambda rngs: snx.RNN(snx.GRUCell(F, H, reset_after=True, update_dropout_rate=RATE,
                                         rngs=rngs),
                             variational_input_rate=RATE, variational_state_rate=RATE,
                             rngs=rngs),
        lambda: sn.RNN(sn.GRUCell(H, reset_after=True, update_dropout_rate=RATE, parent=None),
                       variational_input_rate=RATE, variational_state_rate=RATE)),
}
STREAM = 'zoneout'    # this layer draws its key from its cell's stream, the others get one


class Layers(nnx.Module):
  def __init__(self, rngs):
    for name, (make, _) in LAYERS.items():
      setattr(self, name, make(rngs))

  def __call__(self, x, keys):
    return {name: getattr(self, name)(x, LENGTHS, rngs=None if name == STREAM else key)
            for name, key in zip(LAYERS, keys)}


def linen_layers(variables, x, keys, deterministic):
  """Each linen layer applied on its own, with its own 'dropout' key."""
  return {name: make().apply({'params': variables['params'][name]}, x, LENGTHS,
                             deterministic=deterministic, rngs={'dropout': key})
          for (name, (_, make)), key in zip(LAYERS.items(), keys)}


def stream_key(stream):
  """The next key `stream` draws (`nnx.RngStream.__call__`)."""
  return jax.random.fold_in(stream.key[...], stream.count[...])


def with_loss(outputs):
  """`(loss, outputs)`: the loss weights every output element differently."""
  return sum(jnp.sum(a * jnp.cos(jnp.arange(a.size, dtype=jnp.float32).reshape(a.shape)))
             for a in jax.tree_util.tree_leaves(outputs)), outputs


def test_training_and_evaluation_equal_linen():
  x = np.random.default_rng(0).normal(size=(B, T, F)).astype(np.float32)
  model = Layers(nnx.Rngs(0))
  rng = np.random.default_rng(1)
  variables = jax.tree_util.tree_map(
      lambda a: rng.normal(0, 0.5, a.shape).astype(np.float32), snx.to_linen(model))
  snx.from_linen(model, variables)
  keys = list(jax.random.split(jax.random.key(7), len(LAYERS)))
  linen_keys = [stream_key(model.zoneout.cell.rngs) if name == STREAM else key
                for name, key in zip(LAYERS, keys)]

  @nnx.jit
  def nnx_run(model, x, keys):
    (_, train), grads = nnx.value_and_grad(lambda m, x: with_loss(m(x, keys)),
                                           argnums=(0, 1), has_aux=True)(model, x)
    return train, nnx.view(model, deterministic=True)(x, keys), snx.to_linen(grads[0]), grads[1]

  @jax.jit
  def linen_run(variables, x, keys):
    (_, train), grads = jax.value_and_grad(
        lambda v, x: with_loss(linen_layers(v, x, keys, False)), argnums=(0, 1),
        has_aux=True)(variables, x)
    return train, linen_layers(variables, x, keys, True), grads[0], grads[1]

  count = model.zoneout.cell.rngs.count[...]
  results = nnx_run(model, x, keys)
  expected = linen_run(variables, x, linen_keys)
  assert jax.tree_util.tree_structure(results) == jax.tree_util.tree_structure(expected)
  jax.tree_util.tree_map(np.testing.assert_array_equal, results, expected)
  train, evaluation = results[:2]
  for name in ('zoneout', 'weight_drop', 'variational_update_dropout'):
    assert not np.allclose(train[name], evaluation[name]), name
  np.testing.assert_array_equal(train['layer_norm'], evaluation['layer_norm'])
  assert model.zoneout.cell.rngs.count[...] > count       # the stream moved on

  model.eval()
  assert model.variational_update_dropout.deterministic and model.zoneout.cell.deterministic
  model.train()
  assert not (model.variational_update_dropout.deterministic
              or model.weight_drop.cell.deterministic)


def test_cells_step_alone_and_need_a_key():
  cell = snx.LSTMCell(F, H, zoneout_rate=RATE, weight_drop_rate=RATE, rngs=nnx.Rngs(0))
  carry, x = cell.initialize_carry((B, F)), np.ones((B, F), np.float32)
  key = jax.random.key(3)
  variables = {'params': cell.linen_params()}
  step = jax.jit(lambda v, c, x, k: cell.linen_cell.apply(v, c, x, deterministic=False,
                                                          rngs={'dropout': k}))
  np.testing.assert_array_equal(cell(carry, x, rngs=key)[1], step(variables, carry, x, key)[1])
  np.testing.assert_array_equal(
      cell(carry, x, deterministic=True)[1],
      cell.linen_cell.apply(variables, carry, x, deterministic=True)[1])
  flax_rnn = snx.RNN(nnx.GRUCell(F, H, rngs=nnx.Rngs(0)), variational_input_rate=RATE)
  with pytest.raises(ValueError, match="needs a 'dropout' key"):
    flax_rnn(np.ones((B, T, F), np.float32))
  with pytest.raises(ValueError, match='variational_state_rate needs a seqnets cell'):
    snx.RNN(nnx.GRUCell(F, H, rngs=nnx.Rngs(0)), variational_state_rate=RATE)(
        np.ones((B, T, F), np.float32), rngs=key)
  with pytest.raises(ValueError, match=r'variational_input_rate must be in \[0, 1\)'):
    snx.RNN(cell, variational_input_rate=1.0)


def test_input_mask_of_other_cells_has_the_rate():
  """For flax's cells the layer draws the variational input mask itself: one per sequence
  `[B, F]`, the same at every step, kept with probability 1 − rate and scaled by
  1 / (1 − rate); a new one at every call."""
  rnn = snx.RNN(nnx.SimpleCell(F, H, rngs=nnx.Rngs(0)), variational_input_rate=RATE,
                rngs=nnx.Rngs(dropout=5))
  ones = np.ones((2000, 2, F), np.float32)
  first, second = rnn._drop_inputs(ones, None), rnn._drop_inputs(ones, None)
  for mask in (np.asarray(first), np.asarray(second)):
    np.testing.assert_array_equal(mask[:, 0], mask[:, 1])
    assert set(np.unique(mask)) == {0.0, np.float32(1 / (1 - RATE))}
    assert abs(np.mean(mask == 0) - RATE) < 0.02           # 8000 draws: σ ≈ 0.0055
  assert not np.array_equal(first, second)
