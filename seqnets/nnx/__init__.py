"""seqnets for Flax NNX: the recurrent cells and layers as `flax.nnx` modules.

The same kernels as the linen layers (`seqnets.RNN`, `seqnets.LSTMCell`, ...): each NNX
cell holds its parameters as `nnx.Param`s with the linen names and shapes and runs its
linen twin's step and scan kernel, so both front ends compute the same numbers.

Synopsis:
  import seqnets.nnx as snx
  from flax import nnx
  cell = snx.LSTMCell(3, 16, use_peepholes=True, rngs=nnx.Rngs(0))    # F = 3, H = 16
  rnn = snx.RNN(cell, return_carry=True)
  (c, h), y = rnn(x, lengths=lengths)                 # x: [B, T, 3] -> y: [B, T, 16]
  snx.Bidirectional(snx.RNN(snx.GRUCell(3, 8, rngs=rngs)),
                    snx.RNN(snx.GRUCell(3, 8, rngs=rngs)))            # [B, T, 16]
  snx.StackedRNN([snx.RNN(...), snx.RNN(...)], dropout_rate=0.1, rngs=rngs)
  snx.LeakyRNNCell(3, 8, leak=0.1, rngs=rngs); snx.OrthogonalRNNCell(3, 8, rngs=rngs)
  snx.UnitaryRNNCell(3, 8, rngs=rngs); snx.SkipRNNCell(3, 8, skip=4, rngs=rngs)
  snx.EchoStateCell(3, 500, spectral_radius=0.9)      # a fixed reservoir: no params
  snx.RNN(snx.ConvLSTMCell(1, 16, rngs=rngs))(frames) # [B, T, h, w, 1] -> [B, T, h, w, 16]
  snx.FusedCell(3, sn.ElmanCell(8), rngs=rngs)        # any linen FusedCell as it is
  snx.RNN(snx.LSTMCell(3, 16, zoneout_rate=0.1, rngs=rngs), variational_input_rate=0.2,
          rngs=rngs)                                  # model.eval() / .train(), rngs= a key
  cell = snx.AttentionCell(snx.GRUCell(3 + D, 16, rngs=rngs), D, score='general',
                           placement='luong', rngs=rngs)
  cell.set_memory(memory, mask); snx.RNN(cell)(x)    # memory [B, S, D], mask [B, S]
  crf = snx.CRF(K, rngs=rngs); crf.log_likelihood(emissions, tags, lengths); crf(emissions)
  flax.nnx.RNN(snx.ElmanCell(3, 8, rngs=rngs))        # the cells are nnx.RNNCellBase
  snx.RNN(nnx.OptimizedLSTMCell(3, 8, rngs=rngs))     # flax's cells: a plain scan
  model = snx.from_linen(lambda: snx.RNN(snx.LSTMCell(3, 16, rngs=nnx.Rngs(0))), variables)
  variables = snx.to_linen(model)                     # {'params': {'cell': {...}}}, bit for bit

See docs/nnx.md.
"""

from seqnets.nnx.attention import Attention, AttentionCell, Memory, MemoryKeys
from seqnets.nnx.cells import (ElmanCell, FusedCell, GRUCell, LeakyRNNCell, LinenCell,
                               LSTMCell, OrthogonalRNNCell, ParamGroup)
from seqnets.nnx.convert import from_linen, linen_path, to_linen
from seqnets.nnx.crf import CRF
from seqnets.nnx.rnn import RNN, Bidirectional, StackedRNN, call_recurrent
from seqnets.nnx.step_cells import ConvLSTMCell, EchoStateCell, SkipRNNCell, UnitaryRNNCell

__all__ = [
    'Attention',
    'AttentionCell',
    'Bidirectional',
    'CRF',
    'ConvLSTMCell',
    'EchoStateCell',
    'ElmanCell',
    'FusedCell',
    'GRUCell',
    'LSTMCell',
    'LeakyRNNCell',
    'LinenCell',
    'Memory',
    'MemoryKeys',
    'OrthogonalRNNCell',
    'ParamGroup',
    'RNN',
    'SkipRNNCell',
    'StackedRNN',
    'UnitaryRNNCell',
    'call_recurrent',
    'from_linen',
    'linen_path',
    'to_linen',
]
