"""Shape, parameter and memory arithmetic for models built from `seqnets.layers`, and
the gradient flow through recurrent cells.

Modules:
  shapes, params, memory  arithmetic on shapes, parameter counts, training memory
  gradient_flow           ‖∂L/∂s_t‖, step Jacobians and recurrent spectral norms
  gradient_flow_study     the gradient-flow study over recurrent cells: training, probe,
                          summary and plots (imported on its own, not here)
  echo_state_study        an echo state network on Mackey-Glass with trained readouts
                          (imported on its own, not here)
  attention_maps          attention heatmaps of a trained encoder-decoder (imported on its own)
"""

from seqnets.analysis.gradient_flow import (recurrent_gate_spectral_norms, recurrent_matrix,
                                            recurrent_spectral_norm, state_gradient_norms,
                                            step_jacobian_norms)
from seqnets.analysis.memory import (MemoryEstimate, rnn_activation_bytes, training_memory,
                                     training_memory_bytes)
from seqnets.analysis.params import count_params, param_table
from seqnets.analysis.shapes import conv_output_shape, conv_output_size
