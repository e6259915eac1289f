"""Shape, parameter and memory arithmetic for models built from `seqnets.layers`."""

from seqnets.analysis.memory import MemoryEstimate, training_memory, training_memory_bytes
from seqnets.analysis.params import count_params, param_table
from seqnets.analysis.shapes import conv_output_shape, conv_output_size
