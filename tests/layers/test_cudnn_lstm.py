"""cuDNN's weight layout for `LSTMCell` layers: with the packed weights, jax's own reference
LSTM (`jax.experimental.rnn.lstm_ref`) equals `sn.RNN` / `Bidirectional` / `StackedRNN` over
`LSTMCell` (the fused kernel), outputs, final carries and gradients; pack and unpack are
inverses."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn
from seqnets import interop
from seqnets.layers import cudnn_lstm

B, T, F, H = 4, 6, 3, 5
LENGTHS = np.array([6, 3, 0, 1])
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-5)
SHAPES = [(1, False), (1, True), (2, False), (2, True)]


def random_tree(tree, seed):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      treedef, [rng.normal(0, 0.5, np.shape(l)).astype(np.float32) for l in leaves])


def seqnets_model(num_layers, bidirectional, hidden_bias=False):
  """The seqnets layer and random params: an RNN or Bidirectional alone for one layer."""
  model = interop.create_module('lstm', H, num_layers, bidirectional, stack=num_layers > 1,
                                hidden_bias=hidden_bias)
  x = np.zeros((B, T, F), np.float32)
  kwargs = dict(deterministic=True) if num_layers > 1 else {}
  params = model.init(jax.random.key(0), x, lengths=LENGTHS, **kwargs)['params']
  return model, random_tree(params, seed=1), kwargs


def inputs(seed=2):
  return np.random.default_rng(seed).normal(size=(B, T, F)).astype(np.float32)


@pytest.mark.parametrize('num_layers,bidirectional', SHAPES)
@pytest.mark.parametrize('hidden_bias', [False, True])
def test_lstm_ref_equals_seqnets(num_layers, bidirectional, hidden_bias):
  model, params, kwargs = seqnets_model(num_layers, bidirectional, hidden_bias)
  x = inputs()
  carry, y = model.apply({'params': params}, x, lengths=LENGTHS, return_carry=True, **kwargs)
  ref_carry, ref_y = cudnn_lstm.lstm(params, jnp.asarray(x), LENGTHS)
  assert ref_y.shape == (B, T, (2 if bidirectional else 1) * H)
  close(ref_y, y)
  assert jax.tree_util.tree_structure(ref_carry) == jax.tree_util.tree_structure(carry)
  jax.tree_util.tree_map(close, ref_carry, carry)


@pytest.mark.parametrize('num_layers,bidirectional', SHAPES)
def test_gradients_through_pack_and_lstm_ref_equal_seqnets(num_layers, bidirectional):
  model, params, kwargs = seqnets_model(num_layers, bidirectional)
  x = inputs()
  weights = random_tree(jax.eval_shape(
      lambda: model.apply({'params': params}, x, lengths=LENGTHS, return_carry=True, **kwargs)),
      seed=3)

  def loss(run, p, x):
    carry, y = run(p, x)
    return sum(jnp.sum(a * w) for a, w in zip(jax.tree_util.tree_leaves((carry, y)),
                                               jax.tree_util.tree_leaves(weights)))

  seqnets_run = lambda p, x: model.apply({'params': p}, x, lengths=LENGTHS, return_carry=True,
                                         **kwargs)
  cudnn_run = lambda p, x: cudnn_lstm.lstm(p, x, LENGTHS)
  want = jax.jit(jax.grad(functools.partial(loss, seqnets_run), argnums=(0, 1)))(params, x)
  got = jax.jit(jax.grad(functools.partial(loss, cudnn_run), argnums=(0, 1)))(params, x)
  jax.tree_util.tree_map(close, got, want)


def test_a_given_initial_carry_and_no_lengths():
  model, params, kwargs = seqnets_model(2, True)
  x = inputs()
  initial = random_tree(jax.eval_shape(
      lambda: model.apply({'params': params}, x, return_carry=True, **kwargs))[0], seed=4)
  carry, y = model.apply({'params': params}, x, initial_carry=initial, return_carry=True,
                         **kwargs)
  ref_carry, ref_y = cudnn_lstm.lstm(params, jnp.asarray(x), initial_carry=initial)
  close(ref_y, y)
  jax.tree_util.tree_map(close, ref_carry, carry)


def test_no_steps_keep_the_initial_carry():
  model, params, kwargs = seqnets_model(2, True)
  x = np.zeros((B, 0, F), np.float32)
  carry, y = model.apply({'params': params}, x, return_carry=True, **kwargs)
  ref_carry, ref_y = cudnn_lstm.lstm(params, jnp.asarray(x))
  assert ref_y.shape == y.shape == (B, 0, 2 * H)
  jax.tree_util.tree_map(close, ref_carry, carry)


@pytest.mark.parametrize('num_layers,bidirectional', SHAPES)
@pytest.mark.parametrize('hidden_bias', [False, True])
def test_pack_then_unpack_is_the_identity(num_layers, bidirectional, hidden_bias):
  _, params, _ = seqnets_model(num_layers, bidirectional, hidden_bias)
  cells, found_bidirectional = cudnn_lstm.layer_cells(params)
  assert found_bidirectional == bidirectional
  assert len(cells) == num_layers * (2 if bidirectional else 1)
  weights = cudnn_lstm.pack(cells, bidirectional)
  assert weights.shape == (jax.experimental.rnn.get_num_params_in_lstm(
      F, H, num_layers, bidirectional),)
  back = cudnn_lstm.unpack(weights, F, H, num_layers, bidirectional, hidden_bias=hidden_bias)
  jax.tree_util.tree_map(np.testing.assert_array_equal, back, [dict(c) for c in cells])
  np.testing.assert_array_equal(cudnn_lstm.pack(back, bidirectional), weights)


def test_unpack_without_hidden_bias_sums_the_two_biases():
  weights = jax.random.normal(jax.random.key(0), (jax.experimental.rnn.get_num_params_in_lstm(
      F, H, 1, False),))
  (two,) = cudnn_lstm.unpack(weights, F, H, hidden_bias=True)
  (one,) = cudnn_lstm.unpack(weights, F, H)
  np.testing.assert_array_equal(one['bias'], two['bias'] + two['hidden_bias'])


def test_the_layout_is_pytorchs_per_pseudo_layer():
  """W_ih = input_kernelᵀ first, then W_hh; all kernels before all biases."""
  _, params, _ = seqnets_model(1, True)
  cells, _ = cudnn_lstm.layer_cells(params)
  weights = np.asarray(cudnn_lstm.pack(cells, bidirectional=True))
  forward, backward = cells
  ih, hh = 4 * H * F, 4 * H * H
  np.testing.assert_array_equal(weights[:ih], np.asarray(forward['input_kernel']).T.ravel())
  np.testing.assert_array_equal(weights[ih + hh:2 * ih + hh],
                                np.asarray(backward['input_kernel']).T.ravel())
  biases = weights[2 * (ih + hh):]
  np.testing.assert_array_equal(biases[:4 * H], forward['bias'])
  np.testing.assert_array_equal(biases[4 * H:8 * H], 0)                  # b_hh
  np.testing.assert_array_equal(biases[8 * H:12 * H], backward['bias'])


@pytest.mark.parametrize('cell,needle', [
    (sn.LSTMCell(H, use_peepholes=True), 'peephole_f'),
    (sn.LSTMCell(H, layer_norm=True), 'input_norm_scale'),
])
def test_cells_cudnn_cannot_run_are_refused_by_name(cell, needle):
  params = sn.RNN(cell).init(jax.random.key(0), inputs())['params']
  with pytest.raises(ValueError, match=needle):
    cudnn_lstm.lstm(params, jnp.asarray(inputs()))


def test_other_dtypes_and_mixed_stacks_are_refused():
  _, params, _ = seqnets_model(1, False)
  with pytest.raises(ValueError, match='bfloat16'):
    cudnn_lstm.lstm(params, jnp.asarray(inputs(), jnp.bfloat16))
  _, bi_params, _ = seqnets_model(1, True)
  with pytest.raises(ValueError, match='bidirectional or none'):
    cudnn_lstm.layer_cells({'layers_0': bi_params, 'layers_1': {'cell': params['cell']}})
  with pytest.raises(ValueError, match='lengths'):
    cudnn_lstm.lstm(params, jnp.asarray(inputs()), np.array([7, 1, 1, 1]))


# sn.RNN(implementation=...): on this CPU, 'cudnn' is refused by platform; with the platform
# reported as 'gpu' and cuDNN's call replaced by lstm_ref, the plumbing is checked.


class Calls(list):
  """The shapes of the inputs cuDNN's forward half was traced with; `runs` names each half
  as it runs (on the host, from a callback that refuses `vmap` as cuDNN's primitives do)."""
  runs: list


def refusing_vmap(x, name, runs):
  """`x`, through a callback that records `name` in `runs` and has no batching rule."""
  def record(value):
    runs.append(name)
    return value
  return jax.pure_callback(record, jax.ShapeDtypeStruct(x.shape, x.dtype), x)


@pytest.fixture
def fake_gpu(monkeypatch):
  """`jax.default_backend()` says 'gpu'; cuDNN's halves (`rnn.lstm_fwd`, `rnn.lstm_bwd`) run
  `lstm_ref` and refuse `vmap`. Yields their `Calls`."""
  calls = Calls()
  calls.runs = []

  def lstm_fwd(x, *args, **kwargs):
    calls.append(x.shape)
    return cudnn_lstm._reference_fwd(refusing_vmap(x, 'forward', calls.runs), *args, **kwargs)

  def lstm_bwd(*args):
    *statics, (x, *residuals), gradients = args
    x = refusing_vmap(x, 'backward', calls.runs)
    return cudnn_lstm._reference_bwd(*statics, (x, *residuals), gradients)

  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  monkeypatch.setattr(cudnn_lstm.rnn, 'lstm_fwd', lstm_fwd)
  monkeypatch.setattr(cudnn_lstm.rnn, 'lstm_bwd', lstm_bwd)
  yield calls


def bidirectional(implementation, **cell_kwargs):
  layer = lambda: sn.RNN(sn.LSTMCell(H, **cell_kwargs), implementation=implementation)
  return sn.Bidirectional(layer(), layer(), return_carry=True)


def test_cudnn_off_a_gpu_names_the_platform():
  model = bidirectional('cudnn')
  with pytest.raises(ValueError, match="needs a GPU; the platform is 'cpu'"):
    model.init(jax.random.key(0), inputs(), lengths=LENGTHS)


@pytest.mark.parametrize('kwargs,message', [
    (dict(implementation='cuda'),
     "implementation='cuda'; valid: fused, fused_hoisted, fused_in_loop, scan, cudnn, auto"),
    (dict(implementation='cudnn', fused=False), 'fused=False runs the plain scan'),
])
def test_bad_implementations_are_named(kwargs, message):
  with pytest.raises(ValueError, match=message):
    sn.RNN(sn.LSTMCell(H), **kwargs).init(jax.random.key(0), inputs())


def test_the_rnn_through_cudnn_equals_the_fused_kernel(fake_gpu):
  x = inputs()
  fused = bidirectional('fused')
  params = random_tree(fused.init(jax.random.key(0), x, lengths=LENGTHS)['params'], seed=1)
  run = lambda model, p, x: model.apply({'params': p}, x, lengths=LENGTHS)
  loss = lambda model, p, x: sum(jnp.sum(jnp.sin(a)) for a in jax.tree_util.tree_leaves(
      run(model, p, x)))
  for implementation in ('cudnn', 'auto'):
    fake_gpu.clear()
    model = bidirectional(implementation)
    jax.tree_util.tree_map(close, run(model, params, x), run(fused, params, x))
    jax.tree_util.tree_map(close, jax.jit(jax.grad(functools.partial(loss, model), argnums=(0, 1)))(
        params, x), jax.jit(jax.grad(functools.partial(loss, fused), argnums=(0, 1)))(params, x))
    assert fake_gpu, implementation


def test_weight_drop_through_cudnn_uses_the_same_mask(fake_gpu):
  x = jnp.asarray(inputs())
  model = sn.RNN(sn.LSTMCell(H, weight_drop_rate=0.5), implementation='cudnn')
  params = model.init(jax.random.key(0), x, deterministic=True)
  run = lambda model: model.apply(params, x, lengths=LENGTHS, deterministic=False,
                                  rngs={'dropout': jax.random.key(1)})
  close(run(model), run(model.clone(implementation='fused')))
  assert fake_gpu


@pytest.mark.parametrize('case', ['peepholes', 'bfloat16', 'all_carries'])
def test_auto_keeps_the_fused_kernel_where_cudnn_cannot_run(fake_gpu, case):
  cell_kwargs = dict(use_peepholes=True) if case == 'peepholes' else (
      dict(dtype=jnp.bfloat16) if case == 'bfloat16' else {})
  kwargs = dict(return_all_carries=True) if case == 'all_carries' else {}
  x = jnp.asarray(inputs())
  results = {}
  for implementation in ('auto', 'fused'):
    model = sn.RNN(sn.LSTMCell(H, **cell_kwargs), implementation=implementation, **kwargs)
    params = model.init(jax.random.key(0), x)
    fake_gpu.clear()
    results[implementation] = model.apply(params, x)
    assert not fake_gpu, implementation
  jax.tree_util.tree_map(close, results['auto'], results['fused'])
  reason = {'peepholes': 'use_peepholes', 'bfloat16': 'float32 only',
            'all_carries': 'return_all_carries'}[case]
  with pytest.raises(ValueError, match=reason):
    model.clone(implementation='cudnn').apply(params, x)


def test_scan_is_fused_false():
  x = jnp.asarray(inputs())
  scan = sn.RNN(sn.LSTMCell(H), implementation='scan')
  params = scan.init(jax.random.key(0), x)
  close(scan.apply(params, x, lengths=LENGTHS),
        sn.RNN(sn.LSTMCell(H), fused=False).apply(params, x, lengths=LENGTHS))
  jax.jvp(lambda x: scan.apply(params, x), (x,), (x,))   # forward mode: the plain scan
  for implementation in ('fused', 'auto'):
    jax.jvp(lambda x: scan.clone(implementation=implementation, fused=False).apply(params, x),
            (x,), (x,))


# Under vmap (seeds side by side) cuDNN's call runs once per seed: the CPU route is wrapped
# the same way, and the fake GPU's halves refuse vmap as cuDNN's primitives do.


def outputs_and_gradients(run):
  """jit(vmap) of `(params, x) -> (gradients of a loss, (carry, outputs))` for `run`."""
  def loss(p, x):
    results = run(p, x)
    return sum(jnp.sum(jnp.sin(a)) for a in jax.tree_util.tree_leaves(results)), results
  return jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))


def two_seeds(params):
  """Params of two seeds stacked `[2, ...]`, with inputs `[2, B, T, F]`."""
  stacked = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), params,
                                   random_tree(params, seed=5))
  return stacked, jnp.stack([inputs(2), inputs(6)])


def test_vmap_over_seeds_equals_each_seed_alone_and_the_fused_kernel():
  model, params, kwargs = seqnets_model(2, False)
  seeds, xs = two_seeds(params)
  cudnn_run = lambda p, x: cudnn_lstm.lstm(p, x, LENGTHS)
  fused_run = lambda p, x: model.apply({'params': p}, x, lengths=LENGTHS, return_carry=True,
                                       **kwargs)
  got = jax.vmap(outputs_and_gradients(cudnn_run))(seeds, xs)
  jax.tree_util.tree_map(close, got, jax.vmap(outputs_and_gradients(fused_run))(seeds, xs))
  alone = outputs_and_gradients(cudnn_run)
  for s in range(2):
    seed = lambda tree: jax.tree_util.tree_map(lambda a: a[s], tree)
    jax.tree_util.tree_map(close, seed(got), alone(seed(seeds), xs[s]))


def test_under_vmap_the_rnn_runs_cudnn_once_per_seed(fake_gpu):
  fused = bidirectional('fused')
  params = fused.init(jax.random.key(0), inputs(), lengths=LENGTHS)['params']
  seeds, xs = two_seeds(params)
  run = lambda model: lambda p, x: model.apply({'params': p}, x, lengths=LENGTHS)
  got = jax.vmap(outputs_and_gradients(run(bidirectional('auto'))))(seeds, xs)
  assert fake_gpu and sorted(fake_gpu.runs) == ['backward'] * 4 + ['forward'] * 4  # 2 × 2 seeds
  jax.tree_util.tree_map(close, got, jax.vmap(outputs_and_gradients(run(fused)))(seeds, xs))
  # Inputs mapped, params shared: 'cudnn' runs each direction once per row of the map.
  fake_gpu.runs.clear()
  one_seed = jax.tree_util.tree_map(lambda a: a[0], seeds)
  shared = jax.jit(jax.vmap(run(bidirectional('cudnn')), in_axes=(None, 0)))(one_seed, xs)
  assert fake_gpu.runs == ['forward'] * 4
  jax.tree_util.tree_map(close, shared, jax.vmap(run(fused), in_axes=(None, 0))(one_seed, xs))


def test_with_a_mesh_in_context_each_device_runs_its_rows():
  """jit over 8 devices, batch sharded: with the mesh set the call is a shard_map over the
  batch, and values and gradients (the weights' summed over the devices) are unchanged."""
  _, params, _ = seqnets_model(1, False)
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ('data',))
  rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  x = jax.device_put(jnp.concatenate([inputs(2), inputs(6)]), rows)       # [8, T, F]
  lengths = jax.device_put(np.concatenate([LENGTHS, LENGTHS[::-1]]), rows)
  step = lambda: outputs_and_gradients(lambda p, x: cudnn_lstm.lstm(p, x, lengths))
  with jax.set_mesh(mesh):
    assert 'shard_map' in str(jax.make_jaxpr(step())(params, x))
    split = step()(params, x)
  assert 'shard_map' not in str(jax.make_jaxpr(step())(params, x))
  jax.tree_util.tree_map(close, split, step()(params, x))
