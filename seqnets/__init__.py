"""seqnets: classic deep architectures for sequences and signals in JAX/Flax.

Shape letters used in every docstring:
  B batch, T time, F input features, H hidden, V vocabulary / outputs,
  S / T' source / target length, C channels.

Synopsis:
  import seqnets as sn
  rnn = sn.RNN(sn.LSTMCell(128))                      # works in any flax model
  params = rnn.init(key, x)                           # x: [B, T, F]
  y = rnn.apply(params, x, lengths=lengths)           # [B, T, 128], 0 past each end
  bi = sn.Bidirectional(sn.RNN(sn.GRUCell(64)), sn.RNN(sn.GRUCell(64)))
  flax.linen.RNN(sn.ElmanCell(32))                    # cells are RNNCellBase
"""

from seqnets.layers import (
    RNN,
    Bidirectional,
    ElmanCell,
    GRUCell,
    LSTMCell,
    StackedRNN,
    flip_sequences,
    masked_mean,
    sequence_mask,
)

__version__ = '0.1.0'
