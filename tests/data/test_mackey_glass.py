"""The Mackey-Glass series: exact on the first delay, second order in dt, chaotic."""

import numpy as np
import pytest

from seqnets.data.mackey_glass import mackey_glass


def test_mackey_glass_first_delay_is_the_exact_linear_solution():
  """On [0, τ] the delayed term sees the constant history x0, so dx/dt = c − γx with
  c = β x0 / (1 + x0ⁿ): x(t) = c/γ + (x0 − c/γ) e^{−γt}."""
  x = mackey_glass(18)
  c = 0.2 * 1.2 / (1 + 1.2 ** 10)
  t = np.arange(18.0)
  np.testing.assert_allclose(x, c / 0.1 + (1.2 - c / 0.1) * np.exp(-0.1 * t), rtol=0, atol=1e-9)
  np.testing.assert_array_equal(mackey_glass(18), x)


def test_mackey_glass_converges_at_second_order_in_dt():
  reference = mackey_glass(100, dt=0.0125, subsample=80)
  errors = [np.abs(mackey_glass(100, dt=dt, subsample=round(1 / dt)) - reference).max()
            for dt in (0.1, 0.05)]
  assert 1e-7 < errors[1] < errors[0] < 1e-3
  assert 3 < errors[0] / errors[1] < 5.5


def test_mackey_glass_is_chaotic_in_the_known_range():
  x = mackey_glass(3000, transient=500)
  assert 0.2 < x.min() < 0.5 and 1.2 < x.max() < 1.4
  # Not periodic: no shift up to 1000 samples repeats the series within 0.01.
  mismatch = [np.abs(x[:1000] - x[p:p + 1000]).max() for p in range(1, 1001)]
  assert min(mismatch) > 0.01
  # Sampling and transient select samples of the same trajectory.
  np.testing.assert_array_equal(mackey_glass(50, transient=7), mackey_glass(57)[7:])
  np.testing.assert_allclose(mackey_glass(30, subsample=20), mackey_glass(59, subsample=10)[::2],
                             rtol=0, atol=1e-12)
  seeded = mackey_glass(600, seed=1)
  np.testing.assert_array_equal(seeded, mackey_glass(600, seed=1))
  assert np.abs(seeded - mackey_glass(600, seed=2)).max() > 0.01
  with pytest.raises(ValueError, match='multiple of dt'):
    mackey_glass(10, tau=17.05)
