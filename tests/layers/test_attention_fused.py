"""`sn.RNN` runs an `AttentionCell` through its fused kernel (`attention_scan`): outputs,
every carry, the final carry and the gradients w.r.t. the params, inputs, memory and
initial carry equal the plain scan's (lengths with a 0, padded source positions)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

import seqnets as sn
from seqnets.layers import attention
from seqnets.layers import rnn as rnn_module

B, S, T, F, H, A = 3, 5, 4, 3, 4, 5
LENGTHS = np.array([4, 0, 2])
MASK = np.arange(S)[None] < np.array([5, 3, 2])[:, None]
CELLS = {'gru': lambda **kw: sn.GRUCell(H, **kw),
         'gru_after': lambda **kw: sn.GRUCell(H, reset_after=True, **kw),
         'lstm': lambda **kw: sn.LSTMCell(H, **kw),
         'elman': lambda **kw: sn.ElmanCell(H, **kw)}
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-5)


class Decoder(nn.Module):
  cell: str
  score: str
  placement: str
  implementation: str = 'fused'
  precomputed: bool = True

  @nn.compact
  def __call__(self, x, memory, carry):
    keys = None
    if self.precomputed:
      keys = attention.MemoryKeys(self.score, H, A, name='keys')(memory)
    cell = sn.AttentionCell(CELLS[self.cell](name='cell'), memory=memory, memory_mask=MASK,
                            keys=keys, score=self.score, placement=self.placement,
                            attention_size=A, name='attention')
    return sn.RNN(cell, implementation=self.implementation, return_carry=True,
                  return_all_carries=True)(x, LENGTHS, carry)


def random_like(tree, seed):
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
      lambda a: jnp.asarray(rng.normal(0, 0.5, np.shape(a)), jnp.float32), tree)


def arguments(cell, score, placement):
  """`(x [B, T, F], memory [B, S, D], initial carry)`, random; D = H for the dot score."""
  width = H if score == 'dot' else 6
  cell_carry = ((jnp.zeros((B, H)),) * 2) if cell == 'lstm' else jnp.zeros((B, H))
  feed = jnp.zeros((B, H if placement == 'luong' else width))
  zeros = (jnp.zeros((B, T, F)), jnp.zeros((B, S, width)), (cell_carry, feed, jnp.zeros((B, S))))
  return random_like(zeros, 1)


CASES = [('gru', 'additive', 'bahdanau', True), ('gru', 'additive', 'bahdanau', False),
         ('gru_after', 'additive', 'luong', True), ('lstm', 'dot', 'luong', True),
         ('lstm', 'additive', 'bahdanau', True), ('elman', 'general', 'bahdanau', True),
         ('elman', 'dot', 'bahdanau', False), ('gru', 'general', 'luong', False)]


@pytest.mark.parametrize('cell,score,placement,precomputed', CASES)
def test_fused_equals_the_plain_scan(cell, score, placement, precomputed):
  fused, scan = (Decoder(cell, score, placement, implementation, precomputed)
                 for implementation in ('fused', 'scan'))
  x, memory, carry = arguments(cell, score, placement)
  variables = fused.init(jax.random.key(0), x, memory, carry)
  assert (jax.tree_util.tree_structure(variables)
          == jax.tree_util.tree_structure(scan.init(jax.random.key(0), x, memory, carry)))
  weights = random_like(jax.eval_shape(fused.apply, variables, x, memory, carry), 2)

  def loss(module, args):
    results = module.apply(*args)
    return sum(jnp.sum(r * w) for r, w in zip(jax.tree_util.tree_leaves(results),
                                              jax.tree_util.tree_leaves(weights))), results

  @jax.jit
  def both(args):
    return [jax.value_and_grad(functools.partial(loss, module), has_aux=True)(args)
            for module in (fused, scan)]

  ((_, got), grads), ((_, want), want_grads) = both((variables, x, memory, carry))
  jax.tree_util.tree_map(close, got, want)              # final carry, all carries, outputs
  alphas = np.asarray(got[1][2])                         # [B, T, S]
  real_steps = np.arange(T)[None, :, None] < LENGTHS[:, None, None]
  assert alphas.shape == (B, T, S) and np.all(alphas[real_steps & ~MASK[:, None, :]] == 0)
  jax.tree_util.tree_map(close, grads, want_grads)      # params, inputs, memory, carry
  assert all(np.any(g != 0) for g in jax.tree_util.tree_leaves(grads[0]))


def test_rnn_routes_attention_cells():
  """The fused kernel for a plain cell; the scan for a regularised one, with remat, or when
  asked (`implementation='scan'`)."""
  calls = []
  original = rnn_module.fused_scan

  def counting(*args, **kwargs):
    calls.append(kwargs.get('context') is not None)
    return original(*args, **kwargs)

  def runs_fused(cell, **rnn_kwargs):
    x, memory, carry = arguments('gru', 'additive', 'bahdanau')
    calls.clear()

    class Model(nn.Module):
      @nn.compact
      def __call__(self, x):
        wrapped = sn.AttentionCell(cell, memory=memory, memory_mask=MASK)
        return sn.RNN(wrapped, **rnn_kwargs)(x, LENGTHS, deterministic=True)

    jax.eval_shape(Model().init, jax.random.key(0), x)
    return calls == [True]

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(rnn_module, 'fused_scan', counting)
    assert runs_fused(sn.GRUCell(H))
    assert not runs_fused(sn.GRUCell(H), implementation='scan')
    assert not runs_fused(sn.GRUCell(H), remat=2)
    assert not runs_fused(sn.GRUCell(H, zoneout_rate=0.1))
    assert not runs_fused(nn.GRUCell(H))


def test_forward_mode_names_the_plain_scan():
  x, memory, carry = arguments('gru', 'additive', 'bahdanau')
  variables = Decoder('gru', 'additive', 'bahdanau').init(jax.random.key(0), x, memory, carry)
  outputs = lambda implementation, m: Decoder('gru', 'additive', 'bahdanau', implementation).apply(
      variables, x, m, carry)[2]
  with pytest.raises(TypeError, match='fused=False'):
    jax.jvp(functools.partial(outputs, 'fused'), (memory,), (memory,))
  _, tangent = jax.jvp(functools.partial(outputs, 'scan'), (memory,), (memory,))
  assert np.all(np.isfinite(tangent))
