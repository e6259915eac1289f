"""`FusedCell`, the base of the cells with a scan kernel, and `fused_scan` called as a pure
function, without `sn.RNN`."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

import seqnets as sn
from seqnets.layers import fused_cell
from seqnets.layers import fused_scan
from seqnets.layers import rnn as rnn_module

B, T, F, H = 3, 5, 4, 6
LENGTHS = np.array([5, 2, 0])
KERNEL_CELLS = {
    'elman': lambda: sn.ElmanCell(H),
    'lstm_peep': lambda: sn.LSTMCell(H, use_peepholes=True),
    'gru': lambda: sn.GRUCell(H),
    'gru_after': lambda: sn.GRUCell(H, reset_after=True),
    'leaky': lambda: sn.LeakyRNNCell(H, leak=0.4),
    'orthogonal': lambda: sn.OrthogonalRNNCell(H, parametrization='cayley'),
}
OTHER_CELLS = {
    'unitary': lambda: sn.UnitaryRNNCell(H),
    'echo_state': lambda: sn.EchoStateCell(H),
    'skip': lambda: sn.SkipRNNCell(H),
    'conv_lstm': lambda: sn.ConvLSTMCell(H),
    'flax_gru': lambda: nn.GRUCell(H),
}
close = functools.partial(np.testing.assert_allclose, rtol=2e-5, atol=2e-5)


class HalvingElman(sn.ElmanCell):

  def __call__(self, carry, inputs):
    h, _ = super().__call__(carry, inputs)
    return h / 2, h / 2


def random_tree(tree, seed):
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_unflatten(
      treedef, [rng.normal(0, 0.5, np.shape(l)).astype(np.float32) for l in leaves])


def test_the_kernel_cells_share_the_base_and_no_other_cell_runs_fused():
  for make in KERNEL_CELLS.values():
    cell = make()
    assert isinstance(cell, fused_cell.FusedCell) and rnn_module.uses_fused_kernel(cell)
    assert type(cell).__call__ is fused_cell.FusedCell.__call__
  for make in OTHER_CELLS.values():
    assert not rnn_module.uses_fused_kernel(make())
  assert not rnn_module.uses_fused_kernel(HalvingElman(H))


def test_which_steps_take_masks():
  assert all(fused_cell.step_takes_masks(KERNEL_CELLS[n]()) for n in ('elman', 'lstm_peep', 'gru'))
  assert not any(fused_cell.step_takes_masks(KERNEL_CELLS[n]()) for n in ('leaky', 'orthogonal'))
  assert not fused_cell.step_takes_masks(HalvingElman(H))
  assert not fused_cell.step_takes_masks(nn.GRUCell(H))
  memory = jnp.zeros((B, 2, H))
  assert fused_cell.step_takes_masks(sn.AttentionCell(sn.GRUCell(H), memory=memory))


@pytest.mark.parametrize('name', sorted(KERNEL_CELLS))
def test_the_step_is_the_kernel_forward_on_prepared_params(name):
  """One `__call__` is exactly `forward(prepare(params))`, the step `fused_scan` runs."""
  rng = np.random.default_rng(0)
  cell = KERNEL_CELLS[name]()
  x = rng.normal(size=(B, F)).astype(np.float32)
  carry = random_tree(cell.initialize_carry(None, (B, F)), seed=1)
  params = random_tree(cell.init(jax.random.key(0), carry, x), seed=2)
  new_carry, y = cell.apply(params, carry, x)
  kernel = cell.scan_kernel()
  prepared = kernel.prepare(cell.apply(params, F, method=cell.cell_params))
  want_carry, want_y, _ = kernel.forward(prepared, carry, jnp.asarray(x), False)
  np.testing.assert_array_equal(y, want_y)
  jax.tree_util.tree_map(np.testing.assert_array_equal, new_carry, want_carry)


@pytest.mark.parametrize('name', ['lstm_peep', 'gru_after', 'orthogonal'])
def test_fused_scan_alone_equals_the_linen_layer(name):
  """A front end other than `sn.RNN` needs only the kernel, the params and the mask."""
  rng = np.random.default_rng(0)
  cell = KERNEL_CELLS[name]()
  x = rng.normal(size=(B, T, F)).astype(np.float32)
  carry = random_tree(cell.initialize_carry(None, (B, F)), seed=1)
  layer = sn.RNN(cell, return_carry=True)
  variables = random_tree(layer.init(jax.random.key(0), x), seed=2)
  mask = sn.sequence_mask(LENGTHS, T)
  kernel = cell.scan_kernel()

  def pure(params, carry, x):
    return fused_scan.fused_scan(kernel, params, carry, x, mask)

  def linen(params, carry, x):
    return layer.apply({'params': {'cell': params}}, x, lengths=LENGTHS, initial_carry=carry)

  params = variables['params']['cell']
  jax.tree_util.tree_map(close, pure(params, carry, x), linen(params, carry, x))
  loss = lambda run: lambda *args: sum(jnp.sum(jnp.tanh(leaf))
                                       for leaf in jax.tree_util.tree_leaves(run(*args)))
  got = jax.grad(loss(pure), argnums=(0, 1, 2))(params, carry, x)
  want = jax.grad(loss(linen), argnums=(0, 1, 2))(params, carry, x)
  jax.tree_util.tree_map(close, got, want)
