"""PyTorch weights reach NNX through the linen params: a torch state dict ->
`seqnets.interop.from_torch` -> `snx.from_linen`. The NNX model runs like the linen one
bit for bit and goes back to the same state dict; against PyTorch itself when torch is
installed."""

import jax
import numpy as np
import pytest
from flax import nnx

import seqnets.nnx as snx
from seqnets import interop

B, T, F, H = 3, 6, 5, 4
LENGTHS = np.array([6, 3, 1])


def torch_gru_state_dict(seed=0):
  """A state dict of `torch.nn.GRU(F, H, num_layers=2, bidirectional=True)`: N(0, 0.5)."""
  rng = np.random.default_rng(seed)
  sd = {}
  for layer, columns in ((0, F), (1, 2 * H)):
    for suffix in ('', '_reverse'):
      name = f'_l{layer}{suffix}'
      sd['weight_ih' + name] = rng.normal(0, 0.5, (3 * H, columns)).astype(np.float32)
      sd['weight_hh' + name] = rng.normal(0, 0.5, (3 * H, H)).astype(np.float32)
      sd['bias_ih' + name] = rng.normal(0, 0.5, 3 * H).astype(np.float32)
      sd['bias_hh' + name] = rng.normal(0, 0.5, 3 * H).astype(np.float32)
  return sd


def nnx_gru_stack(input_size, hidden_size, num_layers, bidirectional):
  """The NNX twin of `interop.create_module('gru', ..., hidden_bias=True)`."""
  rngs = nnx.Rngs(0)
  cell = lambda f: snx.GRUCell(f, hidden_size, reset_after=True, hidden_bias=True, rngs=rngs)
  layers = []
  for layer in range(num_layers):
    f = input_size if layer == 0 else (1 + bidirectional) * hidden_size
    layers.append(snx.Bidirectional(snx.RNN(cell(f)), snx.RNN(cell(f))) if bidirectional
                  else snx.RNN(cell(f)))
  return snx.StackedRNN(layers)


def load(sd):
  """`(nnx model, linen params, linen model)` of a torch GRU state dict."""
  params, linen_model = interop.from_torch(sd, 'gru')
  kwargs = interop.torch_kwargs(sd)
  model = snx.from_linen(lambda: nnx_gru_stack(kwargs['input_size'], kwargs['hidden_size'],
                                               kwargs['num_layers'], kwargs['bidirectional']),
                         params)
  return model, params, linen_model


def test_torch_weights_reach_nnx_and_go_back():
  sd = torch_gru_state_dict()
  model, params, linen_model = load(sd)
  x = np.random.default_rng(1).normal(size=(B, T, F)).astype(np.float32)
  y = nnx.jit(lambda m, x: m(x, LENGTHS, deterministic=True))(model, x)
  expected = jax.jit(lambda p, x: linen_model.apply({'params': p}, x, lengths=LENGTHS,
                                                    deterministic=True))(params, x)
  np.testing.assert_array_equal(y, expected)
  assert y.shape == (B, T, 2 * H)
  back = interop.to_torch(snx.to_linen(model))
  assert list(back) == list(sd)
  for key in sd:
    np.testing.assert_array_equal(back[key], sd[key])


def test_against_torch():
  torch = pytest.importorskip('torch')
  torch.manual_seed(0)
  module = torch.nn.GRU(F, H, num_layers=2, bidirectional=True, batch_first=True)
  x = np.random.default_rng(1).normal(size=(B, T, F)).astype(np.float32)
  model, _, _ = load(module.state_dict())
  with torch.no_grad():
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(x), torch.from_numpy(LENGTHS), batch_first=True, enforce_sorted=False)
    expected, _ = torch.nn.utils.rnn.pad_packed_sequence(module(packed)[0], batch_first=True,
                                                         total_length=T)
  np.testing.assert_allclose(model(x, LENGTHS, deterministic=True), expected.numpy(),
                             rtol=1e-5, atol=1e-5)
