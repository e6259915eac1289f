"""Flax linen layers: recurrent cells, the scan layer and their wrappers."""

from seqnets.layers.bidirectional import Bidirectional
from seqnets.layers.elman import ElmanCell
from seqnets.layers.gru import GRUCell
from seqnets.layers.lstm import LSTMCell
from seqnets.layers.masking import flip_sequences, masked_mean, sequence_mask
from seqnets.layers.rnn import RNN
from seqnets.layers.stacked import StackedRNN
