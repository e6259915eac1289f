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
  sn.RNN(sn.AttentionCell(sn.LSTMCell(64), memory=h_enc, memory_mask=mask))  # any cell, attending
  flax.linen.RNN(sn.ElmanCell(32))                    # cells are RNNCellBase
  sn.RNN(sn.OrthogonalRNNCell(128))                   # also Unitary, Leaky, Skip, EchoState
  sn.RNN(sn.ConvLSTMCell(16, (3, 3)))                 # x: [B, T, H, W, C]
  sn.Conv(16, (3, 3), padding=1); sn.pool(x, 'max', 2)  # x: [B, H, W, C]
  sn.max_over_time(h, lengths)                        # [B, T, F] -> [B, F], padding never wins
  sn.analysis.conv_output_size(227, 11, stride=4)     # 55
"""

from seqnets.layers import (
    RNN,
    Attention,
    AttentionCell,
    Bidirectional,
    ConvLSTMCell,
    EchoStateCell,
    ElmanCell,
    GRUCell,
    LeakyRNNCell,
    LSTMCell,
    MemoryKeys,
    MultiHeadAttention,
    OrthogonalRNNCell,
    SkipRNNCell,
    StackedRNN,
    UnitaryRNNCell,
    flip_sequences,
    masked_mean,
    sequence_mask,
)
from seqnets.layers import (
    ACTIVATIONS,
    FILTERS,
    MLP,
    OUTPUT_ACTIVATIONS,
    Conv,
    LocalResponseNorm,
    SpatialDropout,
    convolve2d,
    cross_correlate2d,
    global_pool,
    max_over_time,
    mean_over_time,
    pool,
)
from seqnets import analysis
from seqnets import interop

__version__ = '0.1.0'
