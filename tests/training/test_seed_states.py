"""`state.create_seeds`: one state per seed, each equal to that seed's own initialisation,
also for the orthogonal recurrent kernels of a bidirectional LSTM (whose batched QR under
`vmap` deadlocked XLA:CPU's thread pool with 3 seeds on 2 cores)."""

import types

import jax
import numpy as np
import optax
from flax import linen as nn

from seqnets.layers import lstm
from seqnets.tasks import classification
from seqnets.training import state as state_lib

TASK = types.SimpleNamespace(model_inputs=lambda batch: ((batch['x'],), {}),
                             loss=classification.loss)
EXAMPLE = {'x': np.zeros((2, 5, 7), np.float32), 'labels': np.zeros((2,), np.int32),
           'valid': np.ones((2,), np.float32)}


class BiLstm(nn.Module):

  @nn.compact
  def __call__(self, x, *, deterministic):
    del deterministic
    forward = nn.RNN(lstm.LSTMCell(150), name='forward')(x)
    backward = nn.RNN(lstm.LSTMCell(150), reverse=True, keep_order=True, name='backward')(x)
    return nn.Dense(2)(jax.numpy.concatenate([forward, backward], -1).max(1))


def test_each_seed_is_its_own_initialisation_stacked():
  tx = optax.adam(1e-3)
  seeds = [3, 5, 7]
  stacked = jax.device_get(state_lib.create_seeds(BiLstm(), tx, TASK, seeds, EXAMPLE, ema=True))
  for index, seed in enumerate(seeds):
    alone = jax.device_get(state_lib.create(BiLstm(), tx, TASK, jax.random.key(seed), EXAMPLE,
                                            ema=True))
    jax.tree_util.tree_map(np.testing.assert_array_equal,
                           state_lib.seed_slice(stacked, index), alone)
  recurrent = stacked.params['LSTMCell_0']['recurrent_kernel']     # [S, H, 4H]
  assert not np.array_equal(recurrent[0], recurrent[1])       # the seeds differ
