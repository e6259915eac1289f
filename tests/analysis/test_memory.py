"""The estimate's arithmetic, checked against byte counts worked out by hand.

Nothing here measures process or device memory: `training_memory` traces the
model and counts bytes, so the numbers do not depend on the allocator.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

import seqnets as sn
from seqnets.analysis import MemoryEstimate, training_memory, training_memory_bytes

X = jax.ShapeDtypeStruct((4, 2), jnp.float32)       # B = 4, F = 2
MLP_PARAMS = 2 * 5 + 5 + 5 * 3 + 3                  # Dense(2 → 5), Dense(5 → 3): 33


def test_total_is_the_sum_of_the_parts():
  assert MemoryEstimate(weights=1, gradients=20, optimizer_state=300, activations=4000).total == 4321


def test_mlp_estimate_matches_hand_count():
  # Kept for the backward pass: x [4, 2] (W₁'s gradient), the ReLU output [4, 5]
  # (W₂'s gradient) and the ReLU's bool mask [4, 5] (1 byte each).
  estimate = training_memory(sn.MLP((5, 3)), X, optimizer_slots=2)
  assert estimate == MemoryEstimate(weights=33 * 4, gradients=33 * 4, optimizer_state=2 * 33 * 4,
                                    activations=8 * 4 + 20 * 4 + 20)
  assert training_memory_bytes(sn.MLP((5, 3)), X, optimizer_slots=2) == estimate.total == 660


def test_arrays_and_shape_structs_give_the_same_estimate():
  assert (training_memory(sn.MLP((5, 3)), np.zeros((4, 2), np.float32), optimizer_slots=2)
          == training_memory(sn.MLP((5, 3)), X, optimizer_slots=2))


@pytest.mark.parametrize('slots', [0, 1, 2, 3])
def test_optimizer_state_is_slots_times_params(slots):
  estimate = training_memory(sn.MLP((5, 3)), X, optimizer_slots=slots)
  assert (estimate.weights, estimate.gradients) == (MLP_PARAMS * 4, MLP_PARAMS * 4)
  assert estimate.optimizer_state == slots * MLP_PARAMS * 4


@pytest.mark.parametrize('dtype,width', [(jnp.bfloat16, 2), (jnp.float16, 2), (jnp.float32, 4)])
def test_dtype_scales_floats_but_not_masks(dtype, width):
  estimate = training_memory(sn.MLP((5, 3)), X, dtype=dtype, optimizer_slots=1)
  assert estimate == MemoryEstimate(weights=33 * width, gradients=33 * width,
                                    optimizer_state=33 * width, activations=(8 + 20) * width + 20)


def test_identity_mlp_keeps_only_inputs_of_each_layer():
  estimate = training_memory(sn.MLP((5, 3), activation='identity'), X)
  assert estimate.activations == (8 + 20) * 4


def test_conv_estimate_matches_hand_count():
  # Conv 3×3, 3 → 4 channels: 3·3·3·4 + 4 = 112 parameters. Its kernel gradient
  # needs the input, [2, 6, 5, 3] = 180 floats; the bias gradient needs nothing.
  estimate = training_memory(sn.Conv(4, (3, 3)), jax.ShapeDtypeStruct((2, 6, 5, 3), jnp.float32),
                             optimizer_slots=1)
  assert estimate == MemoryEstimate(weights=448, gradients=448, optimizer_state=448, activations=720)


class _DenseWithConstant(nn.Module):
  """Dense(2 → 3) plus a non-trainable offset in its own collection."""

  @nn.compact
  def __call__(self, x):
    offset = self.variable('constants', 'offset', lambda: jnp.full((3,), 2.0))
    return nn.Dense(3)(x) + offset.value


class _DenseBatchNorm(nn.Module):
  @nn.compact
  def __call__(self, x, train: bool = False):
    return nn.BatchNorm(use_running_average=not train)(nn.Dense(3)(x))


def test_non_parameter_variables_count_as_weights_only():
  # 2·3 + 3 = 9 parameters and 3 constants; the sum needs nothing kept, W's gradient needs x.
  estimate = training_memory(_DenseWithConstant(), X, optimizer_slots=2)
  assert estimate == MemoryEstimate(weights=(9 + 3) * 4, gradients=9 * 4, optimizer_state=2 * 9 * 4,
                                    activations=8 * 4)


@pytest.mark.parametrize('kwargs', [{}, {'train': True, 'mutable': ['batch_stats']}])
def test_batch_statistics_count_as_weights_in_both_modes(kwargs):
  # Dense 2·3 + 3, BatchNorm scale 3 + bias 3: 15 parameters; mean 3 + var 3 statistics.
  estimate = training_memory(_DenseBatchNorm(), X, optimizer_slots=2, **kwargs)
  assert (estimate.weights, estimate.gradients, estimate.optimizer_state) == (21 * 4, 15 * 4, 30 * 4)
  assert estimate.activations >= 8 * 4          # at least x, for the Dense kernel's gradient
