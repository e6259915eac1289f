"""The Mackey-Glass delay differential equation (Mackey & Glass 1977, "Oscillation and chaos
in physiological control systems", Science 197), a standard chaotic series for
one-step and free-running prediction:

  dx/dt = β x(t − τ) / (1 + x(t − τ)ⁿ) − γ x(t)

chaotic for τ ≥ 17 with β = 0.2, γ = 0.1, n = 10 (values then stay in about 0.2–1.4).

Synopsis:
  series = mackey_glass(10_000)                     # [10000] float64, one sample per time unit
  series = mackey_glass(2000, tau=30, transient=500)
"""

from __future__ import annotations

import numpy as np


def mackey_glass(length: int, tau: float = 17.0, beta: float = 0.2, gamma: float = 0.1,
                 n: float = 10.0, dt: float = 0.1, subsample: int = 10, x0: float = 1.2,
                 transient: int = 0, seed: int | None = None) -> np.ndarray:
  """`length` samples `[length]` float64 of the Mackey-Glass series, `x(t_0 + k Δ)` for
  k = 0 … length − 1, Δ = `subsample · dt` time units (1 by default) and
  t_0 = `transient · Δ` (the first `transient` samples are integrated and dropped).

  Integration: classical fourth-order Runge-Kutta with step `dt` (τ must be
  a multiple of dt), the delayed term x(t − τ) read from the stored
  solution, at half steps as the mean of its two neighbours (linear
  interpolation, so the scheme is second-order in dt overall). History:
  x(t) = x0 on [−τ, 0]; with `seed`, each stored history point is x0 plus
  uniform noise in [−0.05, 0.05] (different seeds, different trajectories).
  Deterministic given its arguments.
  """
  delay = round(tau / dt)
  if not (delay >= 1 and abs(delay * dt - tau) < 1e-9 * max(1.0, tau)):
    raise ValueError(f'mackey_glass: tau={tau} must be a positive multiple of dt={dt}')
  if length < 0 or transient < 0 or subsample < 1:
    raise ValueError(f'mackey_glass: length={length} and transient={transient} must be >= 0, '
                     f'subsample={subsample} >= 1')
  steps = (length + transient - 1) * subsample if length else 0
  x = np.empty(delay + 1 + steps)
  x[:delay + 1] = x0                                          # t = −τ … 0
  if seed is not None:
    x[:delay + 1] += np.random.default_rng(seed).uniform(-0.05, 0.05, delay + 1)

  def f(x_now, x_delayed):
    return beta * x_delayed / (1.0 + x_delayed ** n) - gamma * x_now

  values = x.tolist()                                         # Python floats: a faster loop
  for i in range(delay, delay + steps):
    lag, lag_next = values[i - delay], values[i - delay + 1]
    lag_half = 0.5 * (lag + lag_next)
    now = values[i]
    k1 = f(now, lag)
    k2 = f(now + 0.5 * dt * k1, lag_half)
    k3 = f(now + 0.5 * dt * k2, lag_half)
    k4 = f(now + dt * k3, lag_next)
    values[i + 1] = now + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
  x = np.asarray(values)[delay:]                              # t = 0, dt, 2 dt, …
  return x[transient * subsample::subsample][:length].copy()
