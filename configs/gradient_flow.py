"""Gradient flow through every recurrent cell on a long-range dependency.

  python -m experiments.gradient_flow --config=configs/gradient_flow.py --workdir=runs/gradient_flow
  python -m experiments.gradient_flow --config=configs/gradient_flow.py:smoke --workdir=/tmp/gf

Task: read a sequence of random symbols (one-hot), output its first symbol at
the last step. For every cell, ‖∂L/∂s_t‖ against the distance T − 1 − t to the
loss at initialisation and after training with and without gradient clipping;
and an Elman ReLU network that explodes without clipping (`exploding`).
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.data = dict(
      num_symbols=8,                   # one-hot inputs and classes
      train_lengths=(50, 200),         # each training sequence's length, uniform, inclusive
      eval_batch_size=512,             # held-out sequences (train_lengths) for loss and accuracy
  )
  config.probe = dict(                 # where the gradient norms are measured
      length=200,                      # every probe sequence has this length
      batch_size=32,
      jacobian_batch_size=8,           # sequences whose step Jacobians are taken
      distances=(50, 100),             # summary ratios ‖∂L/∂s at d‖ / ‖∂L/∂s at 0‖
  )
  config.hidden_size = 64
  config.cells = dict(                 # name -> a cell of seqnets.models.cells.CELLS + its keys
      elman_tanh=dict(cell='elman', activation='tanh'),
      elman_relu=dict(cell='elman', activation='relu'),
      lstm=dict(cell='lstm', forget_bias=3.0),
      gru=dict(cell='gru'),
      # Cayley: with 'expm', this study's training loop (a jitted scan over steps, vmapped over
      # the clipped and unclipped copies) hangs in XLA:CPU at 64 units, every thread idle.
      orthogonal=dict(cell='orthogonal', activation='modrelu', parametrization='cayley'),
      unitary=dict(cell='unitary'),    # hidden_size complex units: a state of 2 × hidden_size
      leaky=dict(cell='leaky', leak=0.5, learn_leak=True),
      skip=dict(cell='skip', skip=10),
      echo_state=dict(cell='echo_state', spectral_radius=0.95),   # only the readout trains
  )
  config.optim = dict(name='adam', learning_rate=1e-3, schedule='constant')
  config.clip_norm = 1.0               # global-norm threshold of the "with clipping" runs
  config.train = dict(
      num_steps=3000,
      batch_size=32,
      chunk_steps=100,                 # steps per jitted call; a diverged pair stops between calls
  )
  config.exploding = dict(             # Elman ReLU with U = recurrent_scale × orthogonal, plain SGD
      cell='elman', activation='relu', recurrent_scale=2.0,
      train_lengths=(5, 20),
      num_steps=1000,
      optim=dict(name='sgd', learning_rate=0.1, schedule='constant'),
  )

  if arg == 'smoke':
    config.data.update(train_lengths=(5, 20), eval_batch_size=64)
    config.probe.update(length=25, batch_size=8, jacobian_batch_size=2, distances=(5, 20))
    config.hidden_size = 8
    config.cells = dict(elman_tanh=config.cells.elman_tanh, lstm=config.cells.lstm)
    config.train.update(num_steps=20, batch_size=8, chunk_steps=20)
    config.exploding.update(recurrent_scale=3.0, train_lengths=(5, 20), num_steps=20)  # diverges
  elif arg:
    raise ValueError(f'configs/gradient_flow.py: unknown mode {arg!r}; valid: smoke')
  return config
