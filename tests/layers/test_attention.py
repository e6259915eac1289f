"""Attention against NumPy: the three scores, masking, and the cell wrapper's two placements
written out step by step; padding of the memory never changes a result; any cell works."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

import seqnets as sn
from seqnets.layers import attention

B, S, D, T, F, H = 2, 5, 6, 4, 3, 6
RNG = np.random.default_rng(0)
MEMORY = RNG.normal(size=(B, S, D)).astype(np.float32)
LENGTHS = np.array([5, 3])
MASK = np.arange(S)[None] < LENGTHS[:, None]
INPUTS = RNG.normal(size=(B, T, F)).astype(np.float32)


def np_softmax(e, mask):
  e = np.where(mask, e, -np.inf)
  w = np.exp(e - e.max(-1, keepdims=True))
  return w / w.sum(-1, keepdims=True)


def np_attend(score, p, query, memory, mask):
  """NumPy reference of `Attention` with params `p` (keys computed from the memory here)."""
  if score == 'dot':
    e = np.einsum('bsd,bd->bs', memory, query)
  elif score == 'general':
    e = np.einsum('bsd,dq,bq->bs', memory, p['keys']['memory']['kernel'], query)
  else:
    hidden = np.tanh(memory @ p['keys']['memory']['kernel']
                     + (query @ p['attention']['query']['kernel'] + p['attention']['query']['bias'])[:, None])
    e = (hidden @ p['attention']['energy']['kernel'])[..., 0]
  w = np_softmax(e, mask)
  return np.einsum('bs,bsd->bd', w, memory), w


class KeysThenAttention(nn.Module):
  score: str

  @nn.compact
  def __call__(self, query, memory, mask):
    keys = attention.MemoryKeys(self.score, query.shape[-1], 4, name='keys')(memory)
    return attention.Attention(self.score, name='attention')(query, keys, memory, mask)


@pytest.mark.parametrize('score', attention.SCORES)
def test_scores_and_context_match_numpy(score):
  query = RNG.normal(size=(B, D)).astype(np.float32)
  module = KeysThenAttention(score)
  variables = module.init(jax.random.key(0), query, MEMORY, MASK)
  context, weights = module.apply(variables, query, MEMORY, MASK)
  p = jax.tree_util.tree_map(np.asarray, variables.get('params', {}))
  want_context, want_weights = np_attend(score, p, query, MEMORY, MASK)
  np.testing.assert_allclose(weights, want_weights, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(context, want_context, rtol=1e-5, atol=1e-6)
  assert np.all(np.asarray(weights)[1, 3:] == 0)                      # exactly 0 on padding


def test_masked_softmax_of_a_row_without_positions_is_zero():
  w = attention.masked_softmax(jnp.ones((2, 3)), jnp.array([[True, False, True], [False] * 3]))
  np.testing.assert_allclose(w, [[0.5, 0, 0.5], [0, 0, 0]])


def test_dot_score_needs_one_size():
  with pytest.raises(ValueError, match="'dot' attention needs keys and query of one size"):
    attention.Attention('dot').init(jax.random.key(0), jnp.ones((B, 3)), MEMORY, MEMORY)


def elman_step(p, h, x):
  return np.tanh(x @ p['input_kernel'] + h @ p['recurrent_kernel'] + p['bias'])


def run_cell(placement, memory, mask, score='additive', precomputed=False):
  class Decoder(nn.Module):
    @nn.compact
    def __call__(self, x, memory, mask):
      keys = None
      if precomputed:
        keys = attention.MemoryKeys(score, H, H, name='precomputed')(memory)
      cell = sn.AttentionCell(sn.ElmanCell(H, name='elman'), memory=memory, memory_mask=mask,
                              keys=keys, score=score, placement=placement, name='wrapper')
      return sn.RNN(cell, return_all_carries=True)(x)

  module = Decoder()
  variables = module.init(jax.random.key(1), INPUTS, memory, mask)
  return module, variables, module.apply(variables, INPUTS, memory, mask)


@pytest.mark.parametrize('placement', attention.PLACEMENTS)
def test_cell_placements_match_numpy(placement):
  _, variables, (carries, outputs) = run_cell(placement, MEMORY, MASK)
  p = jax.tree_util.tree_map(np.asarray, variables['params'])
  cell_p, wrap_p = p['elman'], p['wrapper']
  attend_p = {'keys': wrap_p['memory_keys'], 'attention': wrap_p['attention']}
  h = np.zeros((B, H), np.float32)
  feed = np.zeros((B, H), np.float32)
  for t in range(T):
    x = INPUTS[:, t]
    if placement == 'bahdanau':
      context, w = np_attend('additive', attend_p, h, MEMORY, MASK)
      h = elman_step(cell_p, h, np.concatenate([x, context], -1))
      y = np.concatenate([h, context], -1)
    else:
      h = elman_step(cell_p, h, np.concatenate([x, feed], -1))
      context, w = np_attend('additive', attend_p, h, MEMORY, MASK)
      feed = np.tanh(np.concatenate([context, h], -1) @ wrap_p['combine']['kernel'])
      y = feed
    np.testing.assert_allclose(outputs[:, t], y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(carries[2][:, t], w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('placement', attention.PLACEMENTS)
def test_padding_the_memory_changes_nothing(placement):
  _, _, (carries, outputs) = run_cell(placement, MEMORY, MASK)
  extra = np.concatenate([MEMORY, RNG.normal(size=(B, 3, D)).astype(np.float32) * 100], 1)
  extra_mask = np.concatenate([MASK, np.zeros((B, 3), bool)], 1)
  _, _, (carries2, outputs2) = run_cell(placement, extra, extra_mask)
  np.testing.assert_allclose(outputs2, outputs, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(carries2[2][..., :S], carries[2], rtol=1e-5, atol=1e-6)
  assert np.all(np.asarray(carries2[2])[..., S:] == 0)


def test_precomputed_keys_equal_keys_computed_at_every_step():
  _, variables, (_, outputs) = run_cell('luong', MEMORY, MASK, precomputed=True)
  params = dict(variables['params'])
  wrapper = dict(params['wrapper'], memory_keys=params.pop('precomputed'))
  module, _, _ = run_cell('luong', MEMORY, MASK)
  _, expected = module.apply({'params': {**params, 'wrapper': wrapper}}, INPUTS, MEMORY, MASK)
  np.testing.assert_allclose(outputs, expected, rtol=1e-6)


def test_wraps_a_flax_cell_in_flax_rnn():
  class Decoder(nn.Module):
    @nn.compact
    def __call__(self, x):
      cell = sn.AttentionCell(nn.GRUCell(H), memory=MEMORY, memory_mask=MASK, score='general',
                              placement='luong')
      return nn.RNN(cell)(x)

  variables = Decoder().init(jax.random.key(0), INPUTS)
  y = Decoder().apply(variables, INPUTS)
  assert y.shape == (B, T, H) and np.all(np.isfinite(y))
  grads = jax.grad(lambda v: Decoder().apply(v, INPUTS).sum())(variables)
  assert all(np.any(g != 0) for g in jax.tree_util.tree_leaves(grads))
