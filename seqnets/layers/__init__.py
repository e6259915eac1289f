"""Flax linen layers: recurrent cells, the scan layer and their wrappers (attention too); feed-forward,
convolution, pooling, dropout and normalisation layers."""

from seqnets.layers.attention import Attention, AttentionCell, MemoryKeys
from seqnets.layers.bidirectional import Bidirectional
from seqnets.layers.echo_state import EchoStateCell, collect_states, ridge_readout
from seqnets.layers.elman import ElmanCell
from seqnets.layers.fused_cell import FusedCell
from seqnets.layers.leaky import LeakyRNNCell
from seqnets.layers.orthogonal import OrthogonalRNNCell
from seqnets.layers.time_skip import SkipRNNCell
from seqnets.layers.unitary import UnitaryRNNCell
from seqnets.layers.gru import GRUCell
from seqnets.layers.lstm import LSTMCell
from seqnets.layers.masking import flip_sequences, masked_mean, sequence_mask
from seqnets.layers.multi_head_attention import MultiHeadAttention
from seqnets.layers.crf import CRF, bio_constraints
from seqnets.layers.char_encoder import CharWordEncoder
from seqnets.layers.conv_lstm import ConvLSTMCell
from seqnets.layers.rnn import RNN
from seqnets.layers.stacked import StackedRNN
from seqnets.layers.conv import Conv, convolve2d, cross_correlate2d
from seqnets.layers.dropout import SpatialDropout
from seqnets.layers.feedforward import ACTIVATIONS, MLP, OUTPUT_ACTIVATIONS
from seqnets.layers.filters import FILTERS
from seqnets.layers.normalization import LocalResponseNorm
from seqnets.layers.pooling import global_pool, max_over_time, mean_over_time, pool
