import jax
import jax.numpy as jnp

import seqnets as sn
from seqnets.analysis import count_params, param_table


def test_counts_and_table_of_an_mlp():
  shapes = jax.eval_shape(sn.MLP((5, 3)).init, jax.random.key(0), jax.ShapeDtypeStruct((1, 2), jnp.float32))
  assert count_params(shapes) == 2 * 5 + 5 + 5 * 3 + 3
  assert param_table(shapes['params']) == [
      ('Dense_0/bias', (5,), 5), ('Dense_0/kernel', (2, 5), 10),
      ('Dense_1/bias', (3,), 3), ('Dense_1/kernel', (5, 3), 15)]


def test_counts_real_arrays_too():
  assert count_params({'a': jnp.zeros((2, 3)), 'b': [jnp.zeros(4)]}) == 10
