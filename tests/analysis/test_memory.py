import jax
import jax.numpy as jnp

import seqnets as sn
from seqnets.analysis import MemoryEstimate, training_memory, training_memory_bytes

X = jax.ShapeDtypeStruct((4, 2), jnp.float32)       # B = 4, F = 2


def test_mlp_estimate_matches_hand_count():
  # Dense(2 → 5) → ReLU → Dense(5 → 3): 2·5 + 5 + 5·3 + 3 = 33 parameters.
  # Kept for the backward pass: x [4, 2] (W₁'s gradient), the ReLU output [4, 5]
  # (W₂'s gradient) and the ReLU's bool mask [4, 5] (1 byte each).
  estimate = training_memory(sn.MLP((5, 3)), X, optimizer_slots=2)
  assert estimate == MemoryEstimate(weights=33 * 4, gradients=33 * 4, optimizer_state=2 * 33 * 4,
                                    activations=8 * 4 + 20 * 4 + 20)
  assert training_memory_bytes(sn.MLP((5, 3)), X, optimizer_slots=2) == estimate.total == 660


def test_dtype_scales_floats_but_not_masks():
  estimate = training_memory(sn.MLP((5, 3)), X, dtype=jnp.bfloat16)
  assert estimate == MemoryEstimate(weights=66, gradients=66, optimizer_state=0,
                                    activations=8 * 2 + 20 * 2 + 20)


def test_identity_mlp_keeps_only_inputs_of_each_layer():
  estimate = training_memory(sn.MLP((5, 3), activation='identity'), X)
  assert estimate.activations == (8 + 20) * 4
