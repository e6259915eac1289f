"""Echo state network on Mackey-Glass: one-step prediction with a trained linear readout.

  results, summary = run_and_write(config, workdir)    # config: configs/echo_state.py

Data: the Mackey-Glass series u (τ = 17, one sample per time unit,
`seqnets.data.mackey_glass`). The reservoir (`EchoStateCell`) reads
x_t = u_t + input_shift for `washout + train_steps + test_steps` steps in one
run; its states after the washout are split into the training part and the
test part that follows it. Target at step t: u_{t+1}.

Readouts (ŷ_{t+1} = h_t kernel + bias):
  ridge     closed form (`ridge_readout`, l2 = `config.ridge.l2`, in float32)
  gradient  `nn.Dense(1)` trained by full-batch gradient descent on the
            training states, mean squared error (`config.gradient`)
  persistence  ŷ_{t+1} = u_t, the naive baseline

NRMSE = sqrt(mean_t (ŷ_t − y_t)²) / std_t(y_t), over the steps of the part
(train or test), std the population standard deviation of those targets
(1: no better than predicting their mean).

`write_outputs` writes to the workdir: results.json (every number; per
readout train and test NRMSE, seconds per stage, the gradient readout's
training loss per step) and prediction.png (truth, predictions and |error|
over the first `config.plot_steps` test steps); it returns a summary.
"""

import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

from seqnets import plotting
from seqnets.data.mackey_glass import mackey_glass
from seqnets.layers.echo_state import EchoStateCell, collect_states, ridge_readout
from seqnets.training import optimizers
from seqnets.training import validation


# Every key of each section of the study's config.
KEYS = {
    'config': ('data', 'reservoir', 'ridge', 'gradient', 'plot_steps'),
    'config.data': ('dt', 'tau', 'subsample', 'input_shift', 'transient', 'washout',
                    'train_steps', 'test_steps'),
    'config.reservoir': ('size', 'spectral_radius', 'input_scale', 'leak', 'density',
                         'bias_scale', 'seed'),
    'config.ridge': ('l2',),
    'config.gradient': ('enabled', 'num_steps', 'seed', 'optim'),
    'config.gradient.optim': optimizers.TRANSFORM_KEYS,
}


def check_config(config) -> None:
  """Raises ValueError naming the first bad field (a key the study does not read included)."""
  validation.check_sections(config, KEYS)
  data, reservoir = config.data, config.reservoir
  for field in ('train_steps', 'test_steps'):
    if not (isinstance(data[field], int) and data[field] >= 1):
      raise ValueError(f'config.data.{field} must be a positive integer, got {data[field]!r}')
  for field in ('washout', 'transient'):
    if not (isinstance(data[field], int) and data[field] >= 0):
      raise ValueError(f'config.data.{field} must be an integer >= 0, got {data[field]!r}')
  if not (isinstance(reservoir.size, int) and reservoir.size >= 1):
    raise ValueError(f'config.reservoir.size must be a positive integer, got {reservoir.size!r}')
  if not config.ridge.l2 >= 0:
    raise ValueError(f'config.ridge.l2 must be >= 0, got {config.ridge.l2!r}')
  if config.gradient.enabled:
    if not (isinstance(config.gradient.num_steps, int) and config.gradient.num_steps >= 1):
      raise ValueError('config.gradient.num_steps must be a positive integer, got '
                       f'{config.gradient.num_steps!r}')
    optimizers.validate(config.gradient.optim)
  if not (isinstance(config.plot_steps, int) and config.plot_steps >= 1):
    raise ValueError(f'config.plot_steps must be a positive integer, got {config.plot_steps!r}')
  make_cell(config).reservoir(1)                       # the reservoir's own range checks


def make_cell(config) -> EchoStateCell:
  r = config.reservoir
  return EchoStateCell(r.size, spectral_radius=r.spectral_radius, input_scale=r.input_scale,
                       leak=r.leak, density=r.density, bias_scale=r.bias_scale,
                       reservoir_seed=r.seed)


def nrmse(predictions, targets) -> float:
  """sqrt(mean (ŷ − y)²) / std(y), in float64."""
  predictions, targets = np.asarray(predictions, np.float64), np.asarray(targets, np.float64)
  return float(np.sqrt(np.mean((predictions - targets) ** 2)) / np.std(targets))


def train_gradient_readout(states, targets, gradient_cfg):
  """`nn.Dense(1)` on `states [N, H]` fitted to `targets [N, 1]` by full-batch gradient
  descent on the mean squared error; returns `(predict, losses [num_steps])`."""
  head = nn.Dense(1)
  num_steps = gradient_cfg.num_steps
  tx = optimizers.from_config(gradient_cfg.optim, num_steps)
  params = head.init(jax.random.key(gradient_cfg.seed), states[:1])

  @jax.jit
  def train(params):
    def step(state, _):
      params, opt_state = state
      loss_of = lambda p: jnp.mean((head.apply(p, states) - targets) ** 2)
      loss, grads = jax.value_and_grad(loss_of)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss
    (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), None, num_steps)
    return params, losses

  params, losses = train(params)
  return jax.jit(lambda s: head.apply(params, s)), np.asarray(losses)


def run_experiment(config, log=lambda message: None) -> dict:
  """Every number of the experiment (see the module docstring)."""
  check_config(config)
  data = config.data
  seconds = {}
  start = time.time()
  steps = data.washout + data.train_steps + data.test_steps
  series = mackey_glass(steps + 1, tau=data.tau, dt=data.dt, subsample=data.subsample,
                        transient=data.transient)
  seconds['data'] = time.time() - start

  start = time.time()
  inputs = (series[:-1] + data.input_shift).astype(np.float32)[None, :, None]    # [1, T, 1]
  states = np.asarray(collect_states(make_cell(config), inputs, data.washout)[0])  # [T', H]
  targets = series[data.washout + 1:, None]                                       # [T', 1]
  seconds['states'] = time.time() - start
  log(f'reservoir states: {seconds["states"]:.1f} s')
  train = slice(0, data.train_steps)
  test = slice(data.train_steps, None)
  targets32 = targets.astype(np.float32)

  def scores(predictions):
    return dict(train_nrmse=nrmse(predictions[train], targets[train]),
                test_nrmse=nrmse(predictions[test], targets[test]))

  start = time.time()
  kernel, bias = ridge_readout(states[train], targets32[train], config.ridge.l2)
  ridge_predictions = np.asarray(states @ kernel + bias)
  seconds['ridge'] = time.time() - start
  readouts = dict(ridge=scores(ridge_predictions))
  readouts['ridge']['kernel_norm'] = float(jnp.linalg.norm(kernel))
  log(f'ridge: test NRMSE {readouts["ridge"]["test_nrmse"]:.3g} ({seconds["ridge"]:.1f} s)')
  predictions = dict(ridge=ridge_predictions[test, 0])

  if config.gradient.enabled:
    start = time.time()
    predict, losses = train_gradient_readout(states[train], targets32[train], config.gradient)
    gradient_predictions = np.asarray(predict(states))
    seconds['gradient'] = time.time() - start
    readouts['gradient'] = dict(**scores(gradient_predictions),
                                final_train_loss=float(losses[-1]),
                                train_loss=[float(l) for l in losses])
    predictions['gradient'] = gradient_predictions[test, 0]
    log(f'gradient: test NRMSE {readouts["gradient"]["test_nrmse"]:.3g} '
        f'({seconds["gradient"]:.1f} s)')

  persistence = series[data.washout:-1, None]                                   # ŷ_{t+1} = u_t
  readouts['persistence'] = scores(persistence)
  return dict(
      config=config.to_dict(),
      readouts=readouts,
      test_targets=[float(v) for v in targets[test, 0]],
      test_predictions={name: [float(v) for v in p] for name, p in predictions.items()},
      series_range=[float(series.min()), float(series.max())],
      seconds={name: round(s, 2) for name, s in seconds.items()},
  )


def plot_predictions(results: dict, path: pathlib.Path) -> None:
  """Truth and each readout's prediction over the first test steps; |error| on a log scale."""
  plt = plotting.pyplot()
  count = results['config']['plot_steps']
  truth = np.array(results['test_targets'][:count])
  steps = np.arange(len(truth))
  fig, (value_ax, error_ax) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
  value_ax.plot(steps, truth, color='black', linewidth=2, label='truth u_{t+1}')
  for name, predicted in results['test_predictions'].items():
    predicted = np.array(predicted[:count])
    score = results['readouts'][name]['test_nrmse']
    label = f'{name} readout (test NRMSE {score:.2g})'
    line, = value_ax.plot(steps, predicted, linewidth=1, linestyle='--', label=label)
    error_ax.plot(steps, np.abs(predicted - truth), color=line.get_color(), linewidth=0.8,
                  label=name)
  value_ax.set(ylabel='Mackey-Glass u', title='One-step prediction on the test steps')
  error_ax.set(xlabel='test step', ylabel='|prediction − truth|', yscale='log')
  value_ax.legend(fontsize=8)
  error_ax.legend(fontsize=8)
  plotting.save_figure(fig, path, dpi=110)


def summary(results: dict) -> str:
  config = results['config']
  data, reservoir = config['data'], config['reservoir']
  lines = [
      '# Echo state network: Mackey-Glass one-step prediction',
      '',
      f'τ = {data["tau"]:g}, {data["train_steps"]} training and {data["test_steps"]} test steps '
      f'after a washout of {data["washout"]}; reservoir of {reservoir["size"]} units, spectral '
      f'radius {reservoir["spectral_radius"]:g}, leak {reservoir["leak"]:g}, input scale '
      f'{reservoir["input_scale"]:g}, bias scale {reservoir["bias_scale"]:g}, density '
      f'{reservoir["density"]:g}. NRMSE = RMSE / std of the targets.',
      '',
      '| readout | train NRMSE | test NRMSE | seconds |',
      '|---|---|---|---|',
  ]
  for name, scores in results['readouts'].items():
    seconds = results['seconds'].get(name)
    lines.append(f'| {name} | {scores["train_nrmse"]:.3g} | {scores["test_nrmse"]:.3g} | '
                 f'{"–" if seconds is None else f"{seconds:.1f}"} |')
  return '\n'.join(lines) + '\n'


def write_outputs(results: dict, workdir: pathlib.Path) -> str:
  """Writes results.json and prediction.png; returns the summary."""
  workdir.mkdir(parents=True, exist_ok=True)
  (workdir / 'results.json').write_text(json.dumps(results, indent=1) + '\n')
  plot_predictions(results, workdir / 'prediction.png')
  return summary(results)


def run_and_write(config, workdir: pathlib.Path, log=lambda message: None) -> tuple[dict, str]:
  """`run_experiment`, then `write_outputs`; returns the results, with `seconds['total']`,
  and the summary."""
  start = time.time()
  results = run_experiment(config, log)
  results['seconds']['total'] = round(time.time() - start, 2)
  return results, write_outputs(results, workdir)
