"""seqnets.interop against plain-NumPy transcriptions of torch.nn.LSTM / GRU / RNN."""

import functools
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

import seqnets as sn
from seqnets import interop

B, T, F, H = 3, 7, 5, 4
LENGTHS = np.array([7, 4, 1])
GATES = {'lstm': 4, 'gru': 3, 'rnn': 1}
# (kind, nonlinearity) as torch.nn.LSTM, nn.GRU, nn.RNN(nonlinearity='tanh'|'relu').
KINDS = [('lstm', 'tanh'), ('gru', 'tanh'), ('rnn', 'tanh'), ('rnn', 'relu')]


def sigmoid(a):
  return 1.0 / (1.0 + np.exp(-a))


def torch_step(kind, nonlinearity, weights, x, state):
  """One step of PyTorch's cell equations, weights in PyTorch's layout ([G·H, F] etc.)."""
  w_ih, w_hh, b_ih, b_hh = weights
  h = state[0] if kind == 'lstm' else state
  gi = x @ w_ih.T + b_ih                                  # [G·H]
  gh = h @ w_hh.T + b_hh
  if kind == 'lstm':
    c = state[1]
    i, f, g, o = np.split(gi + gh, 4)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c
  if kind == 'gru':
    i_r, i_z, i_n = np.split(gi, 3)
    h_r, h_z, h_n = np.split(gh, 3)
    r, z = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
    n = np.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h
  return np.tanh(gi + gh) if nonlinearity == 'tanh' else np.maximum(gi + gh, 0)


def torch_reference(sd, kind, nonlinearity, num_layers, bidirectional, x):
  """nn.LSTM/GRU/RNN over one sequence `x [T, F]` (no padding), in float64.

  Returns `(output [T, D·H], h_n [L·D, H], c_n [L·D, H] or None)`; the reverse
  direction reads the sequence from its last step and its outputs are put back
  in time order.
  """
  sd = {k: v.astype(np.float64) for k, v in sd.items()}
  hidden = sd['weight_hh_l0'].shape[1]
  layer_input = x.astype(np.float64)
  h_n, c_n = [], []
  for layer in range(num_layers):
    outputs = []
    for suffix in ['', '_reverse'][:1 + bidirectional]:
      name = f'_l{layer}{suffix}'
      zeros = np.zeros(GATES[kind] * hidden)
      weights = (sd['weight_ih' + name], sd['weight_hh' + name],
                 sd.get('bias_ih' + name, zeros), sd.get('bias_hh' + name, zeros))
      state = (np.zeros(hidden), np.zeros(hidden)) if kind == 'lstm' else np.zeros(hidden)
      steps = range(len(x)) if not suffix else reversed(range(len(x)))
      ys = np.zeros((len(x), hidden))
      for t in steps:
        state = torch_step(kind, nonlinearity, weights, layer_input[t], state)
        ys[t] = state[0] if kind == 'lstm' else state
      outputs.append(ys)
      h_n.append(state[0] if kind == 'lstm' else state)
      c_n.append(state[1] if kind == 'lstm' else None)
    layer_input = np.concatenate(outputs, axis=-1)
  return layer_input, np.stack(h_n), (np.stack(c_n) if kind == 'lstm' else None)


def random_state_dict(kind, num_layers, bidirectional, bias, seed=0, input_size=F):
  """A PyTorch state dict (keys in PyTorch's order) of N(0, 0.5) float32 weights."""
  rng = np.random.default_rng(seed)
  rows = GATES[kind] * H
  sd = {}
  for layer in range(num_layers):
    for suffix in ['', '_reverse'][:1 + bidirectional]:
      name = f'_l{layer}{suffix}'
      columns = input_size if layer == 0 else (1 + bidirectional) * H
      sd['weight_ih' + name] = rng.normal(0, 0.5, (rows, columns)).astype(np.float32)
      sd['weight_hh' + name] = rng.normal(0, 0.5, (rows, H)).astype(np.float32)
      if bias:
        sd['bias_ih' + name] = rng.normal(0, 0.5, rows).astype(np.float32)
        sd['bias_hh' + name] = rng.normal(0, 0.5, rows).astype(np.float32)
  return sd


def random_params(model, seed=0):
  """The param tree of `model` with every leaf replaced by N(0, 0.5) float32 noise."""
  shapes = jax.eval_shape(functools.partial(model.init, deterministic=True), jax.random.key(0),
                          np.zeros((B, T, F), np.float32))
  leaves, tree = jax.tree_util.tree_flatten(shapes['params'])
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      tree, [rng.normal(0, 0.5, leaf.shape).astype(np.float32) for leaf in leaves])


def inputs(seed=1):
  return np.random.default_rng(seed).normal(size=(B, T, F)).astype(np.float32)


def assert_trees_equal(a, b):
  """Same structure, dtypes and bits."""
  assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    assert x.dtype == y.dtype and x.shape == y.shape
    np.testing.assert_array_equal(x, y)


def assert_state_dicts_equal(a, b):
  assert list(a) == list(b)
  for key in a:
    assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
    np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def check_against_reference(model, params, sd, kind, nonlinearity, num_layers, bidirectional,
                            stacked=True):
  """seqnets outputs and final states = the NumPy PyTorch, full length and with lengths."""
  x = inputs()
  variables = {'params': params}
  for lengths in (None, LENGTHS):
    carries, y = jax.jit(functools.partial(model.apply, lengths=lengths, return_carry=True,
                                           deterministic=True))(variables, x)
    states = interop.final_state_to_torch(carries if stacked else (carries,), kind, bidirectional)
    h_n, c_n = states if kind == 'lstm' else (states, None)
    y = np.asarray(y)
    for b in range(B):
      length = T if lengths is None else lengths[b]
      ref_y, ref_h, ref_c = torch_reference(sd, kind, nonlinearity, num_layers, bidirectional,
                                            x[b, :length])
      np.testing.assert_allclose(y[b, :length], ref_y, rtol=1e-5, atol=1e-5)
      np.testing.assert_array_equal(y[b, length:], 0)
      np.testing.assert_allclose(h_n[:, b], ref_h, rtol=1e-5, atol=1e-5)
      if kind == 'lstm':
        np.testing.assert_allclose(c_n[:, b], ref_c, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('kind,nonlinearity', KINDS)
@pytest.mark.parametrize('num_layers,bidirectional,bias', [   # (1 layer both ways: below)
    (1, False, True), (2, False, True), (2, True, True), (2, True, False)])
def test_from_torch_runs_like_torch(kind, nonlinearity, num_layers, bidirectional, bias):
  sd = random_state_dict(kind, num_layers, bidirectional, bias)
  params, model = interop.from_torch(sd, kind, nonlinearity=nonlinearity)
  # The tree is exactly the one the module declares.
  declared = jax.eval_shape(functools.partial(model.init, deterministic=True), jax.random.key(0),
                            inputs())['params']
  assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(declared)
  for leaf, want in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(declared)):
    assert (leaf.shape, leaf.dtype) == (want.shape, want.dtype)
  assert interop.torch_kwargs(sd) == dict(input_size=F, hidden_size=H, num_layers=num_layers,
                                          bias=bias, bidirectional=bidirectional)
  check_against_reference(model, params, sd, kind, nonlinearity, num_layers, bidirectional)


@pytest.mark.parametrize('kind,nonlinearity', KINDS)
@pytest.mark.parametrize('bidirectional', [False, True])
def test_single_layer_module(kind, nonlinearity, bidirectional):
  sd = random_state_dict(kind, 1, bidirectional, True, seed=3)
  params, model = interop.from_torch(sd, kind, nonlinearity=nonlinearity, stack=False)
  assert isinstance(model, sn.Bidirectional if bidirectional else sn.RNN)
  assert set(params) == ({'forward', 'backward'} if bidirectional else {'cell'})
  check_against_reference(model, params, sd, kind, nonlinearity, 1, bidirectional, stacked=False)
  assert_state_dicts_equal(interop.to_torch(params), sd)


@pytest.mark.parametrize('kind,nonlinearity', KINDS)
@pytest.mark.parametrize('num_layers,bidirectional', [(1, False), (3, True)])
def test_seqnets_model_runs_in_torch(kind, nonlinearity, num_layers, bidirectional):
  """Params trained in seqnets (here random), exported: the NumPy PyTorch gives the same outputs."""
  model = interop.create_module(kind, H, num_layers, bidirectional, nonlinearity)
  params = random_params(model, seed=5)
  sd = interop.to_torch(params)
  assert list(sd) == list(random_state_dict(kind, num_layers, bidirectional, True))
  check_against_reference(model, params, sd, kind, nonlinearity, num_layers, bidirectional)


@pytest.mark.parametrize('kind,nonlinearity', KINDS)
@pytest.mark.parametrize('bias', [True, False])
def test_torch_round_trip_is_exact(kind, nonlinearity, bias):
  sd = random_state_dict(kind, 2, True, bias)
  params, _ = interop.from_torch(sd, kind, nonlinearity=nonlinearity)
  assert_state_dicts_equal(interop.to_torch(params, bias=bias), sd)
  assert_state_dicts_equal(interop.to_torch(params, kind=kind, bias=bias), sd)


@pytest.mark.parametrize('kind', ['lstm', 'gru', 'rnn'])
def test_merged_biases_keep_weights_and_bias_sums(kind):
  sd = random_state_dict(kind, 2, True, True)
  params, model = interop.from_torch(sd, kind, hidden_bias=False)
  check_against_reference(model, params, sd, kind, 'tanh', 2, True)
  back = interop.to_torch(params)
  assert list(back) == list(sd)
  n = slice(2 * H, 3 * H) if kind == 'gru' else slice(0, 0)   # GRU's b_in, b_hn: kept apart
  for key in sd:
    if key.startswith('weight'):
      np.testing.assert_array_equal(back[key], sd[key])
    elif key.startswith('bias_ih'):
      hh = key.replace('_ih', '_hh')
      np.testing.assert_array_equal(back[key] + back[hh], sd[key] + sd[hh])   # same float32 sum
      np.testing.assert_array_equal(back[key][n], sd[key][n])
      np.testing.assert_array_equal(back[hh][n], sd[hh][n])
      merged = np.ones(GATES[kind] * H, bool)
      merged[n] = False
      np.testing.assert_array_equal(back[hh][merged], 0)
  # A state dict already in that form (bias_hh 0 where seqnets sums) comes back bit for bit.
  assert_state_dicts_equal(interop.to_torch(interop.from_torch(back, kind, hidden_bias=False)[0]),
                           back)


@pytest.mark.parametrize('kind,nonlinearity', KINDS)
@pytest.mark.parametrize('num_layers,bidirectional,stack', [
    (2, True, True), (1, False, True), (1, False, False), (1, True, False)])
@pytest.mark.parametrize('hidden_bias', [False, True])
def test_seqnets_round_trip_is_exact(kind, nonlinearity, num_layers, bidirectional, stack,
                                     hidden_bias):
  model = interop.create_module(kind, H, num_layers, bidirectional, nonlinearity, stack=stack,
                                hidden_bias=hidden_bias)
  params = random_params(model)
  for tree in (params, {'params': params}):
    back, back_model = interop.from_torch(interop.to_torch(tree), kind,
                                          nonlinearity=nonlinearity, stack=stack,
                                          hidden_bias=hidden_bias)
    assert_trees_equal(back, params)
    assert back_model == model


def test_trained_biases_go_back_apart():
  """Training moves each bias on its own; both come back where PyTorch keeps them."""
  sd = random_state_dict('gru', 1, False, True)
  params, _ = interop.from_torch(sd, 'gru')
  cell = params['layers_0']['cell']
  cell['bias'][0] += 1.0
  cell['hidden_bias'][H] += 2.0                           # z block: sign flips
  back = interop.to_torch(params)
  assert back['bias_ih_l0'][0] == sd['bias_ih_l0'][0] + 1.0
  assert back['bias_hh_l0'][H] == sd['bias_hh_l0'][H] - 2.0
  np.testing.assert_array_equal(back['bias_ih_l0'][1:], sd['bias_ih_l0'][1:])


def test_gru_z_gate_is_negated():
  """PyTorch's z keeps the old state, seqnets' takes the new one: z's columns change sign."""
  sd = random_state_dict('gru', 1, False, True)
  cell = interop.from_torch(sd, 'gru')[0]['layers_0']['cell']
  w_r, w_z, w_n = np.split(sd['weight_ih_l0'], 3)
  np.testing.assert_array_equal(cell['input_kernel'], np.concatenate([w_r, -w_z, w_n]).T)
  b_ih, b_hh = np.split(sd['bias_ih_l0'], 3), np.split(sd['bias_hh_l0'], 3)
  np.testing.assert_array_equal(cell['bias'], np.concatenate([b_ih[0], -b_ih[1], b_ih[2]]))
  np.testing.assert_array_equal(cell['hidden_bias'],
                                np.concatenate([b_hh[0], -b_hh[1], b_hh[2]]))
  cell = interop.from_torch(sd, 'gru', hidden_bias=False)[0]['layers_0']['cell']
  np.testing.assert_array_equal(
      cell['bias'], np.concatenate([b_ih[0] + b_hh[0], -(b_ih[1] + b_hh[1]), b_ih[2]]))
  np.testing.assert_array_equal(cell['recurrent_bias'], b_hh[2])


class FakeTensor:
  """What interop needs of a torch.Tensor: `.detach().cpu().numpy()`."""

  def __init__(self, array):
    self.array = array

  def detach(self):
    return self

  def cpu(self):
    return self

  def numpy(self):
    return self.array


def test_tensors_and_prefix():
  sd = random_state_dict('gru', 2, False, True)
  full = {'embed.weight': FakeTensor(np.zeros((9, F), np.float32)),
          **{f'encoder.rnn.{k}': FakeTensor(v) for k, v in sd.items()}}
  params, _ = interop.from_torch(full, 'gru', prefix='encoder.rnn.')
  assert_trees_equal(params, interop.from_torch(sd, 'gru')[0])
  assert interop.torch_kwargs(full, prefix='encoder.rnn.')['num_layers'] == 2


def test_params_are_copies():
  sd = random_state_dict('lstm', 1, False, True)
  original = {k: v.copy() for k, v in sd.items()}
  params, _ = interop.from_torch(sd, 'lstm')
  for leaf in jax.tree_util.tree_leaves(params):
    leaf[...] = 7
  assert_state_dicts_equal(sd, original)
  back = interop.to_torch(interop.from_torch(sd, 'lstm')[0])
  for value in back.values():
    value[...] = 7
  assert_state_dicts_equal(sd, original)


def test_dtype_is_kept():
  sd = {k: v.astype(np.float64) for k, v in random_state_dict('gru', 1, True, True).items()}
  params, _ = interop.from_torch(sd, 'gru')
  assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(params)} == {np.dtype(np.float64)}
  assert_state_dicts_equal(interop.to_torch(params), sd)


def test_final_state_layout():
  h = [np.full((B, H), i, np.float32) for i in range(4)]
  carries = ((h[0], h[1]), (h[2], h[3]))          # two bidirectional GRU layers
  np.testing.assert_array_equal(interop.final_state_to_torch(carries, 'gru', True)[:, 0, 0],
                                [0, 1, 2, 3])
  h_n, c_n = interop.final_state_to_torch(((h[0], h[1]), (h[2], h[3])), 'lstm', False)  # (c, h)
  np.testing.assert_array_equal(h_n[:, 0, 0], [1, 3])
  np.testing.assert_array_equal(c_n[:, 0, 0], [0, 2])


def test_from_torch_errors():
  gru = random_state_dict('gru', 2, True, True)
  with pytest.raises(ValueError, match='gru weights'):
    interop.from_torch(gru, 'lstm')
  with pytest.raises(ValueError, match='kind='):
    interop.from_torch(gru, 'transformer')
  with pytest.raises(ValueError, match='nonlinearity'):
    interop.from_torch(gru, 'gru', nonlinearity='relu')
  with pytest.raises(ValueError, match='nonlinearity'):
    interop.from_torch(random_state_dict('rnn', 1, False, True), 'rnn', nonlinearity='gelu')
  with pytest.raises(ValueError, match='missing'):
    interop.from_torch({k: v for k, v in gru.items() if k != 'bias_hh_l1_reverse'}, 'gru')
  with pytest.raises(ValueError, match='missing'):
    interop.from_torch({k: v for k, v in gru.items() if '_l0' not in k}, 'gru')
  with pytest.raises(ValueError, match='proj_size'):
    interop.from_torch({**gru, 'weight_hr_l0': np.zeros((H, H))}, 'gru')
  with pytest.raises(ValueError, match='not a weight'):
    interop.from_torch({**gru, 'fc.weight': np.zeros(3)}, 'gru')
  with pytest.raises(ValueError, match='no recurrent weights'):
    interop.from_torch(gru, 'gru', prefix='decoder.')
  with pytest.raises(ValueError, match=r'weight_ih_l1 is \[12, 4\], expected \[12, 8\]'):
    interop.from_torch({**gru, 'weight_ih_l1': np.zeros((12, 4), np.float32)}, 'gru')
  with pytest.raises(ValueError, match='num_layers=1'):
    interop.from_torch(gru, 'gru', stack=False)


def test_to_torch_errors():
  gru = interop.create_module('gru', H)
  params = random_params(gru)
  with pytest.raises(ValueError, match='non-zero biases'):
    interop.to_torch(params, bias=False)
  with pytest.raises(ValueError, match="kind='lstm'"):
    interop.to_torch(params, kind='lstm')
  cases = [
      (sn.StackedRNN([sn.RNN(sn.LSTMCell(H, use_peepholes=True))]), 'peepholes'),
      (sn.RNN(sn.GRUCell(H)), 'reset_after=False'),
      (sn.StackedRNN([sn.RNN(sn.LSTMCell(H)), sn.RNN(sn.GRUCell(H, reset_after=True))]),
       'one kind of cell'),
      (sn.StackedRNN([sn.RNN(sn.ElmanCell(H)), sn.RNN(sn.ElmanCell(H + 1))]), 'one hidden size'),
      (sn.StackedRNN([interop.create_module('rnn', H, bidirectional=True, stack=False),
                      sn.RNN(sn.ElmanCell(H))]), 'bidirectional or none'),
  ]
  for model, message in cases:
    with pytest.raises(ValueError, match=message):
      interop.to_torch(random_params(model))
  with pytest.raises(ValueError, match='layers_0 ... layers_1'):
    interop.to_torch({'layers_0': params['layers_0'], 'layers_2': params['layers_0']})
  with pytest.raises(ValueError, match='expected the params of an RNN'):
    interop.to_torch({'dense': {'kernel': np.zeros((2, 2))}})


def test_importing_interop_does_not_import_torch():
  code = 'import sys, seqnets.interop; assert "torch" not in sys.modules'
  env = {**os.environ, 'JAX_PLATFORMS': 'cpu'}            # PYTHONPATH kept: torch may be there
  subprocess.run([sys.executable, '-c', code], check=True, env=env)


# --- against PyTorch itself, when it is installed ---

@pytest.mark.parametrize('kind,nonlinearity', KINDS)
@pytest.mark.parametrize('bias', [True, False])
def test_against_torch(kind, nonlinearity, bias):
  torch = pytest.importorskip('torch')
  torch.manual_seed(0)
  cls = {'lstm': torch.nn.LSTM, 'gru': torch.nn.GRU, 'rnn': torch.nn.RNN}[kind]
  extra = {'nonlinearity': nonlinearity} if kind == 'rnn' else {}
  module = cls(F, H, num_layers=2, bias=bias, bidirectional=True, batch_first=True, **extra)
  with torch.no_grad():
    for p in module.parameters():
      p.normal_(0, 0.5)
  x = inputs()

  def run_torch(lengths):
    with torch.no_grad():
      if lengths is None:
        y, state = module(torch.from_numpy(x))
      else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            torch.from_numpy(x), torch.from_numpy(lengths), batch_first=True,
            enforce_sorted=False)
        y, state = module(packed)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=T)
    state = state if kind == 'lstm' else (state,)
    return y.numpy(), [s.numpy() for s in state]

  def check(params, model):
    for lengths in (None, LENGTHS):
      carries, y = model.apply({'params': params}, x, lengths=lengths, return_carry=True,
                               deterministic=True)
      state = interop.final_state_to_torch(carries, kind, True)
      state = state if kind == 'lstm' else (state,)
      want_y, want_state = run_torch(lengths)
      np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-5)
      for got, want in zip(state, want_state):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

  sd = module.state_dict()
  params, model = interop.from_torch(sd, kind, nonlinearity=nonlinearity)   # tensors accepted
  check(params, model)
  np_sd = {k: v.numpy() for k, v in sd.items()}
  assert_state_dicts_equal(interop.to_torch(params, bias=bias), np_sd)

  # The other way: seqnets params (biases 0 for bias=False) loaded into torch.
  params = random_params(model, seed=9)
  if not bias:
    params = jax.tree_util.tree_map_with_path(
        lambda path, v: v if path[-1].key.endswith('kernel') else np.zeros_like(v), params)
  exported = interop.to_torch(params, bias=bias)
  assert interop.torch_kwargs(exported) == dict(input_size=F, hidden_size=H, num_layers=2,
                                                bias=bias, bidirectional=True)
  module.load_state_dict({k: torch.from_numpy(v) for k, v in exported.items()})
  check(params, model)
