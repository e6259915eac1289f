"""Shape, parameter and memory arithmetic for models built from `seqnets.layers`, and
the gradient flow through recurrent cells."""

from seqnets.analysis.gradient_flow import (recurrent_gate_spectral_norms, recurrent_matrix,
                                            recurrent_spectral_norm, state_gradient_norms,
                                            step_jacobian_norms)
from seqnets.analysis.memory import MemoryEstimate, training_memory, training_memory_bytes
from seqnets.analysis.params import count_params, param_table
from seqnets.analysis.shapes import conv_output_shape, conv_output_size
