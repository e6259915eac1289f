"""Echo state network: one-step prediction of the Mackey-Glass series (τ = 17).

  python -m experiments.echo_state --config=configs/echo_state.py --workdir=runs/echo_state
  python -m experiments.echo_state --config=configs/echo_state.py:smoke --workdir=/tmp/esn

A fixed random reservoir reads x_t = u_t + input_shift; a linear readout of its
state predicts u_{t+1}, fitted by ridge regression in closed form and, for
comparison, by gradient descent on the same states.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.data = dict(
      tau=17.0,
      dt=0.1,                          # RK4 step (time units); τ must be a multiple
      subsample=10,                    # integration steps per sample: one sample per time unit
      transient=1000,                  # samples integrated and dropped (the series settles)
      input_shift=-1.0,                # the reservoir reads u_t + input_shift (centred near 0)
      washout=100,                     # reservoir steps discarded before the training states
      train_steps=5000,
      test_steps=2000,                 # follow the training steps, same reservoir run
  )
  config.reservoir = dict(
      size=500,
      spectral_radius=0.9,
      input_scale=1.0,
      leak=1.0,
      density=1.0,
      bias_scale=0.2,
      seed=0,
  )
  config.ridge = dict(l2=1e-8)         # Σ_n ‖y_n − ŷ_n‖² + l2 ‖kernel‖², bias not penalised
  config.gradient = dict(              # the same linear readout by full-batch gradient descent
      enabled=True,
      num_steps=2000,
      optim=dict(name='adam', learning_rate=1e-2, schedule='constant'),
      seed=0,
  )
  config.plot_steps = 500              # test steps drawn in prediction.png

  if arg == 'smoke':
    config.data.update(transient=100, washout=20, train_steps=200, test_steps=100)
    config.reservoir.size = 30
    config.gradient.num_steps = 30
    config.plot_steps = 100
  elif arg:
    raise ValueError(f'configs/echo_state.py: unknown mode {arg!r}; valid: smoke')
  return config
