"""`seqnets.nnx` layers under NNX's transforms and tools: `nnx.vmap` over models and over
inputs, `nnx.scan` with `nnx.remat` over chunks of a sequence, `nnx.split` / `nnx.merge`,
orbax checkpoints of `nnx.state`; and flax's own NNX recurrences: `flax.nnx.RNN` of a
seqnets cell, seqnets layers over flax cells and `flax.nnx.RNN` layers."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

import seqnets.nnx as snx

B, T, F, H = 2, 5, 3, 4
LENGTHS = np.array([3, 0])
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)


def inputs(shape=(B, T, F), seed=0):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_vmap_over_models_and_over_inputs():
  @nnx.split_rngs(splits=3)
  @nnx.vmap(in_axes=(0,), out_axes=0)
  def make(rngs):
    return snx.RNN(snx.GRUCell(F, H, reset_after=True, rngs=rngs))

  models = make(nnx.Rngs(0))
  model0 = snx.RNN(snx.GRUCell(F, H, reset_after=True, rngs=nnx.Rngs(1)))
  x, xs = inputs(), inputs((4, B, T, F), seed=1)

  @nnx.jit
  def run(models, model0, x, xs):
    over_models = nnx.vmap(lambda m, x: m(x, LENGTHS), in_axes=(0, None))(models, x)
    over_inputs = nnx.vmap(lambda m, x: m(x, LENGTHS), in_axes=(None, 0))(model0, xs)
    graphdef, state = nnx.split(models)
    one_by_one = [nnx.merge(graphdef, jax.tree_util.tree_map(lambda a: a[i], state))(
        x, LENGTHS) for i in range(3)]
    return over_models, over_inputs, jnp.stack(one_by_one), jnp.stack(
        [model0(a, LENGTHS) for a in xs])

  over_models, over_inputs, one_by_one, each_input = run(models, model0, x, xs)
  assert over_models.shape == (3, B, T, H) and over_inputs.shape == (4, B, T, H)
  close(over_models, one_by_one)
  close(over_inputs, each_input)
  assert not np.allclose(over_models[0], over_models[1])        # one draw per model


def test_scan_with_remat_over_chunks_equals_one_call():
  rnn = snx.RNN(snx.LSTMCell(F, H, use_peepholes=True, rngs=nnx.Rngs(0)), return_carry=True)
  x = inputs((B, 6, F))
  chunks = jnp.swapaxes(x.reshape(B, 3, 2, F), 0, 1)            # [3 chunks, B, 2, F]

  @nnx.remat
  def chunk_step(rnn, carry, chunk):
    return rnn(chunk, initial_carry=carry)

  @nnx.scan(in_axes=(None, nnx.Carry, 0), out_axes=(nnx.Carry, 0))
  def run_chunks(rnn, carry, chunk):
    return chunk_step(rnn, carry, chunk)

  def loss(rnn, chunked):
    carry0 = rnn.cell.initialize_carry((B, F))
    if chunked:
      (c, h), ys = run_chunks(rnn, carry0, chunks)
      y = jnp.swapaxes(ys, 0, 1).reshape(B, 6, H)
    else:
      (c, h), y = rnn(x, initial_carry=carry0)
    return jnp.sum(jnp.sin(y)) + jnp.sum(c * h), (c, h, y)

  @nnx.jit
  def both(rnn):
    return [nnx.value_and_grad(functools.partial(loss, chunked=chunked), has_aux=True)(rnn)
            for chunked in (True, False)]

  chunked, whole = both(rnn)
  jax.tree_util.tree_map(close, chunked, whole)


def make_stack(rngs):
  return snx.StackedRNN(
      [snx.Bidirectional(snx.RNN(snx.ElmanCell(F, H, rngs=rngs)),
                         snx.RNN(snx.ElmanCell(F, H, rngs=rngs))),
       snx.RNN(snx.LSTMCell(2 * H, H, rngs=rngs))], dropout_rate=0.5, rngs=rngs)


def test_split_merge_and_orbax_checkpoint(tmp_path):
  model = make_stack(nnx.Rngs(0))
  x = inputs()

  @functools.partial(nnx.jit, static_argnums=2)
  def run(model, x, deterministic):
    return model(x, LENGTHS, deterministic=deterministic)

  graphdef, state = nnx.split(model)
  merged = nnx.merge(graphdef, state)
  assert nnx.graphdef(make_stack(nnx.Rngs(1))) == graphdef
  np.testing.assert_array_equal(run(merged, x, True), run(model, x, True))
  dropped = run(model, x, False)
  assert not np.allclose(dropped, run(model, x, True))          # dropout between the layers
  assert not np.allclose(dropped, run(model, x, False))         # a new mask per call

  checkpointer = ocp.StandardCheckpointer()
  checkpointer.save(tmp_path / 'state', nnx.state(model))
  checkpointer.wait_until_finished()
  abstract_graphdef, abstract_state = nnx.split(nnx.eval_shape(lambda: make_stack(nnx.Rngs(2))))
  restored = nnx.merge(abstract_graphdef,
                       checkpointer.restore(tmp_path / 'state', abstract_state))
  jax.tree_util.tree_map(np.testing.assert_array_equal, snx.to_linen(restored),
                         snx.to_linen(model))
  np.testing.assert_array_equal(run(restored, x, True), run(model, x, True))
  np.testing.assert_array_equal(run(restored, x, False), run(model, x, False))


def test_flax_nnx_rnn_and_flax_cells():
  rngs = nnx.Rngs(0)
  lstm, gru_f, gru_b = (snx.LSTMCell(F, H, rngs=rngs), snx.GRUCell(F, H, rngs=rngs),
                        snx.GRUCell(F, H, rngs=rngs))
  flax_cell = nnx.OptimizedLSTMCell(F, H, rngs=rngs)
  x = inputs()

  @nnx.jit
  def run(lstm, gru_f, gru_b, flax_cell, x):
    out = {
        'flax_rnn_of_snx_cell': nnx.RNN(lstm, return_carry=True)(x),
        'snx_rnn': snx.RNN(lstm, return_carry=True)(x),
        'scan_remat': snx.RNN(lstm, return_carry=True, implementation='scan', remat=2)(x),
        'bi_of_flax_rnn': snx.Bidirectional(nnx.RNN(gru_f), nnx.RNN(gru_b),
                                            return_carry=True)(x, LENGTHS),
        'bi_of_snx_rnn': snx.Bidirectional(snx.RNN(gru_f), snx.RNN(gru_b),
                                           return_carry=True)(x, LENGTHS),
        'flax_cell': nnx.RNN(flax_cell, return_carry=True)(x),
    }
    for name, remat in (('snx_rnn_of_flax_cell', None), ('snx_rnn_of_flax_cell_remat', 2)):
      out[name] = snx.RNN(flax_cell, return_carry=True, remat=remat)(x, LENGTHS)
    return out

  out = run(lstm, gru_f, gru_b, flax_cell, x)
  jax.tree_util.tree_map(close, out['flax_rnn_of_snx_cell'], out['snx_rnn'])
  jax.tree_util.tree_map(close, out['scan_remat'], out['snx_rnn'])
  jax.tree_util.tree_map(close, out['bi_of_flax_rnn'], out['bi_of_snx_rnn'])
  # A flax cell under seqnets' contract: rows of length 0 keep the initial carry, output 0.
  for name in ('snx_rnn_of_flax_cell', 'snx_rnn_of_flax_cell_remat'):
    (c, h), y = out[name]
    (c_ref, h_ref), y_ref = out['flax_cell']
    assert y.shape == (B, T, H) and not np.any(y[1]) and not np.any(y[0, 3:])
    assert not np.any(c[1]) and not np.any(h[1])
    ref = snx.RNN(flax_cell, return_carry=True)(x[:1, :3])
    jax.tree_util.tree_map(close, ((c[:1], h[:1]), y[:1, :3]), ref)
  # Without lengths, the seqnets loop is flax's.
  np.testing.assert_array_equal(snx.RNN(flax_cell)(x), out['flax_cell'][1])
