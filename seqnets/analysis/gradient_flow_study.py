"""Gradient flow study: ‖∂L/∂s_t‖ against the distance to the loss, per recurrent cell.

  results = run_study(config)              # config: configs/gradient_flow.py
  summary = write_outputs(results, workdir)

Task: the first symbol of a sequence of random symbols, read out at the last
step by one-hot → sn.RNN(cell) → Dense. For every cell of `config.cells` the
network is probed at initialisation and after training without and with
gradient clipping: both copies start from the same parameters and train side
by side (one vmapped step) on the same batches. Then the `exploding` Elman
ReLU network, again without and with clipping. A copy whose loss turns
non-finite is recorded (NaN from that step on) and the study goes on. Every
cell is built by `make_cell`.

Probe: `config.probe.batch_size` sequences of `config.probe.length` symbols,
L = Σ_b cross-entropy at the last step, ‖∂L/∂s_t‖ per example averaged over
the batch (`seqnets.analysis.gradient_flow`), distance d = T − 1 − t. The step
Jacobians' SVDs run in OpenBLAS, whose threads and XLA's slow each other down:
a program running the study sets OPENBLAS_NUM_THREADS=1 before importing NumPy
(`experiments/gradient_flow.py` does).

`write_outputs` writes to the workdir: gradient_norms.png, clipping.png,
summary.md and gradient_flow.json: every number (NaN where a value is not
finite), per cell and state `gradient_norms[d]` at distance d, per trained copy
`train_loss` and `train_gradient_norm` (before clipping) of every step.
"""

import functools
import json
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn

import seqnets as sn
from seqnets import plotting
from seqnets.analysis import gradient_flow
from seqnets.models import cells
from seqnets.training import optimizers
from seqnets.training import validation


CELL_KINDS = ('elman', 'lstm', 'gru', *(name for name in cells.CELLS
                                        if name not in ('elman', 'lstm', 'gru')))
STATES = ('init', 'trained', 'trained_clipped')
# Keys of `config.exploding` that are the study's, not its cell's.
EXPLODING_KEYS = ('train_lengths', 'num_steps', 'optim')


def exploding_cell_spec(config) -> dict:
  """The cell keys of `config.exploding` (the rest set up its training)."""
  return {k: v for k, v in dict(config.exploding).items() if k not in EXPLODING_KEYS}


def make_cell(spec, hidden_size: int):
  """`spec.cell` names a cell of `seqnets.models.cells.CELLS`; the spec's other keys are that
  cell's keys (e.g. `activation` for 'elman', `forget_bias` for 'lstm', `leak` for 'leaky'),
  checked as `model.cell` entries are. Elman, LSTM and GRU cells also take
  `recurrent_scale` (default 1): the recurrent kernel starts as that × an orthogonal matrix."""
  kind = spec.get('cell')
  if kind not in CELL_KINDS:
    raise ValueError(f'cell={kind!r}; valid: {list(CELL_KINDS)}')
  keys = {k: v for k, v in dict(spec).items() if k not in ('cell', 'recurrent_scale')}
  cell_fn = cells.from_config(dict(keys, name=kind, hidden_size=hidden_size), path='cell')
  if kind not in ('elman', 'lstm', 'gru'):
    if 'recurrent_scale' in spec:
      raise ValueError(f'recurrent_scale applies to elman, lstm and gru, not {kind!r}')
    return cell_fn()
  return cell_fn(recurrent_kernel_init=nn.initializers.orthogonal(
      scale=spec.get('recurrent_scale', 1.0)))


# Every key of each section of the study's config (`cells` and `exploding` hold cell keys).
KEYS = {
    'config': ('seed', 'hidden_size', 'clip_norm', 'cells', 'data', 'train', 'optim', 'probe',
               'exploding'),
    'config.data': ('num_symbols', 'train_lengths', 'eval_batch_size'),
    'config.train': ('batch_size', 'num_steps', 'chunk_steps'),
    'config.probe': ('length', 'distances', 'batch_size', 'jacobian_batch_size'),
    'config.optim': optimizers.TRANSFORM_KEYS,
    'config.exploding.optim': optimizers.TRANSFORM_KEYS,
}


def check_config(config) -> None:
  """Raises ValueError naming the first bad field (a key the study does not read included)."""
  validation.check_sections(config, KEYS)
  lo, hi = config.data.train_lengths
  if not 1 <= lo <= hi:
    raise ValueError(f'config.data.train_lengths must be 1 <= lo <= hi, got {(lo, hi)}')
  if not all(0 <= d < config.probe.length for d in config.probe.distances):
    raise ValueError(f'config.probe.distances must lie in [0, probe.length = '
                     f'{config.probe.length}), got {tuple(config.probe.distances)}')
  if not 1 <= config.probe.jacobian_batch_size <= config.probe.batch_size:
    raise ValueError('config.probe.jacobian_batch_size must be in [1, probe.batch_size]')
  if not config.clip_norm > 0:
    raise ValueError(f'config.clip_norm must be positive, got {config.clip_norm!r}')
  if not config.cells:
    raise ValueError('config.cells is empty')
  specs = {f'config.cells.{name}': spec for name, spec in config.cells.items()}
  for field, spec in {**specs, 'config.exploding': exploding_cell_spec(config)}.items():
    try:
      make_cell(spec, 1)
    except ValueError as e:
      raise ValueError(f'{field}: {e}') from None
  lo, hi = config.exploding.train_lengths
  if not 1 <= lo <= hi:
    raise ValueError(f'config.exploding.train_lengths must be 1 <= lo <= hi, got {(lo, hi)}')
  for optim_cfg in (config.optim, config.exploding.optim):
    optimizers.validate(optim_cfg)


def first_symbol_batch(key, batch_size: int, lengths: tuple[int, int], num_symbols: int):
  """`(tokens [B, max length], lengths [B], labels [B])`: random symbols, lengths uniform in
  `lengths` (inclusive), each label the sequence's first symbol."""
  lo, hi = lengths
  token_key, length_key = jax.random.split(key)
  tokens = jax.random.randint(token_key, (batch_size, hi), 0, num_symbols)
  return tokens, jax.random.randint(length_key, (batch_size,), lo, hi + 1), tokens[:, 0]


class FirstSymbolClassifier(nn.Module):
  """Symbols `[B, T]` one-hot → sn.RNN(cell) → Dense(V) at each sequence's last step (`lengths
  [B]`): logits `[B, V]`. Parameters: `cell` (the cell's own) and `head`."""

  cell: nn.RNNCellBase
  num_symbols: int

  @nn.compact
  def __call__(self, tokens, lengths):
    outputs = sn.RNN(self.cell)(jax.nn.one_hot(tokens, self.num_symbols), lengths=lengths)
    last = outputs[jnp.arange(tokens.shape[0]), lengths - 1]
    return nn.Dense(self.num_symbols, name='head')(last)


def cross_entropy(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def train_pair(model, params, optim_cfg, clip_norm: float, num_steps: int, batch_size: int,
               lengths: tuple[int, int], num_symbols: int, chunk_steps: int, key):
  """Trains two copies of `params` on the same batches: without clipping, and with the
  gradient clipped to global norm `clip_norm` (g ← g · min(1, c / ‖g‖), as
  `optax.clip_by_global_norm`) before the optimizer of `optim_cfg`.

  Returns `(params [2, ...], losses [2, N], gradient norms before clipping [2, N],
  first non-finite step of each copy or None)`; steps count from 1, and a copy's
  losses and gradient norms are NaN from its first non-finite loss on. Training
  stops early once both copies are non-finite.
  """

  tx = optimizers.from_config(optim_cfg, num_steps)
  thresholds = jnp.array([jnp.inf, clip_norm], jnp.float32)

  def step(params, opt_state, threshold, batch):
    tokens, lengths, labels = batch
    loss_of = lambda p: jnp.mean(cross_entropy(model.apply({'params': p}, tokens, lengths), labels))
    loss, grads = jax.value_and_grad(loss_of)(params)
    norm = optax.global_norm(grads)
    grads = jax.tree_util.tree_map(lambda g: g * jnp.minimum(1.0, threshold / norm), grads)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, norm

  @functools.partial(jax.jit, static_argnums=3)
  def run_steps(pair, opt_state, first_step, count):
    def body(state, step_index):
      batch = first_symbol_batch(jax.random.fold_in(key, step_index), batch_size, lengths,
                                 num_symbols)
      pair, opt_state, loss, norm = jax.vmap(step, in_axes=(0, 0, 0, None))(*state, thresholds,
                                                                             batch)
      return (pair, opt_state), (loss, norm)
    (pair, opt_state), (losses, norms) = jax.lax.scan(body, (pair, opt_state),
                                                      first_step + jnp.arange(count))
    return pair, opt_state, losses.T, norms.T

  pair = jax.tree_util.tree_map(lambda p: jnp.stack([p, p]), params)
  opt_state = jax.vmap(tx.init)(pair)
  losses, norms = np.full((2, num_steps), np.nan), np.full((2, num_steps), np.nan)
  done = 0
  while done < num_steps:
    count = min(chunk_steps, num_steps - done)
    pair, opt_state, chunk_losses, chunk_norms = run_steps(pair, opt_state, done, count)
    losses[:, done:done + count], norms[:, done:done + count] = chunk_losses, chunk_norms
    done += count
    if not np.isfinite(losses[:, :done]).all(axis=1).any():
      break
  diverged = []
  for copy in range(2):
    bad = np.flatnonzero(~np.isfinite(losses[copy]))
    first = int(bad[0]) if bad.size else None
    if first is not None:
      losses[copy, first:] = norms[copy, first:] = np.nan
    diverged.append(None if first is None else first + 1)
  return pair, losses, norms, diverged


def probe(cell, model_params, tokens, labels, jacobian_batch_size: int, num_symbols: int):
  """Gradient-flow numbers of each parameter set of `model_params` `[S, ...]` on the probe
  sequences `tokens [B, T]` (all of length T): a dict of `[S, ...]` arrays."""
  inputs = jax.nn.one_hot(tokens, num_symbols)
  head = nn.Dense(num_symbols)

  def one(params):
    cell_params = params.get('cell', {})     # an echo state cell has none: only the head trains

    def loss_fn(outputs):                  # a sum over the batch: per-example gradients
      logits = head.apply({'params': params['head']}, outputs[:, -1])
      return jnp.sum(cross_entropy(logits, labels))

    norms = gradient_flow.state_gradient_norms(cell, cell_params, inputs, loss_fn)
    jacobians = gradient_flow.step_jacobian_norms(cell, cell_params, inputs[:jacobian_batch_size])
    return dict(
        gradient_norms=norms[::-1],                    # index = distance T − 1 − t
        mean_step_jacobian_norm=jnp.mean(jacobians),
        **spectral_norms(gradient_flow.recurrent_matrix(cell, cell_params, num_symbols)))

  return jax.jit(jax.vmap(one))(model_params)


def spectral_norms(matrix) -> dict:
  """σ_max of the recurrent matrix `[S, G·S]` and of each gate's block (NaN without one)."""
  if matrix is None:
    return dict(recurrent_spectral_norm=jnp.nan, recurrent_gate_spectral_norms=jnp.full(1, jnp.nan))
  kernel = {'recurrent_kernel': matrix}
  return dict(recurrent_spectral_norm=gradient_flow.recurrent_spectral_norm(kernel),
              recurrent_gate_spectral_norms=gradient_flow.recurrent_gate_spectral_norms(kernel))


def evaluate(model, model_params, batch):
  """Mean cross-entropy and accuracy `[S]` of each parameter set `[S, ...]` on `batch`."""
  tokens, lengths, labels = batch

  def one(params):
    logits = model.apply({'params': params}, tokens, lengths)
    return jnp.mean(cross_entropy(logits, labels)), jnp.mean(jnp.argmax(logits, -1) == labels)

  return jax.jit(jax.vmap(one))(model_params)


def number(x) -> float:
  """A float; NaN for anything not finite."""
  x = float(x)
  return x if math.isfinite(x) else math.nan


def numbers(xs) -> list[float]:
  return [number(x) for x in xs]


def final_loss(losses) -> float:
  """Mean of the last 5 % of the training losses (NaN if any is)."""
  return number(np.mean(losses[-max(1, len(losses) // 20):]))


def eval_record(loss, accuracy) -> dict:
  finite = math.isfinite(float(loss))
  return dict(eval_loss=number(loss), eval_accuracy=number(accuracy) if finite else math.nan)


def study_cell(spec, config, probe_batch, eval_batch, key) -> dict:
  """The three states (init, trained, trained_clipped) of one cell; every cell starts from
  `key` and trains on the same batches."""
  num_symbols = config.data.num_symbols
  cell = make_cell(spec, config.hidden_size)
  model = FirstSymbolClassifier(cell, num_symbols)
  init_key, train_key = jax.random.split(key)
  tokens, lengths, _ = first_symbol_batch(init_key, 2, config.data.train_lengths, num_symbols)
  params = model.init(init_key, tokens, lengths)['params']
  pair, losses, grad_norms, diverged = train_pair(
      model, params, config.optim, config.clip_norm, config.train.num_steps,
      config.train.batch_size, config.data.train_lengths, num_symbols,
      config.train.chunk_steps, train_key)
  stack = jax.tree_util.tree_map(lambda p, q: jnp.concatenate([p[None], q]), params, pair)
  probed = probe(cell, stack, *probe_batch, config.probe.jacobian_batch_size, num_symbols)
  eval_losses, eval_accuracies = evaluate(model, stack, eval_batch)
  records = {}
  for index, state in enumerate(STATES):
    norms = np.asarray(probed['gradient_norms'][index])
    record = dict(
        gradient_norms=numbers(norms),
        ratios={str(d): number(norms[d] / norms[0]) for d in config.probe.distances},
        recurrent_spectral_norm=number(probed['recurrent_spectral_norm'][index]),
        recurrent_gate_spectral_norms=numbers(probed['recurrent_gate_spectral_norms'][index]),
        mean_step_jacobian_norm=number(probed['mean_step_jacobian_norm'][index]),
        **eval_record(eval_losses[index], eval_accuracies[index]))
    if index:
      copy = index - 1
      record.update(train_loss=numbers(losses[copy]),
                    train_gradient_norm=numbers(grad_norms[copy]),
                    final_train_loss=final_loss(losses[copy]), diverged_at_step=diverged[copy])
    records[state] = record
  return records


def study_exploding(config, key) -> dict:
  """The `exploding` network trained without and with clipping, evaluated on
  `config.data.eval_batch_size` sequences of its own training lengths."""
  spec, num_symbols = config.exploding, config.data.num_symbols
  model = FirstSymbolClassifier(make_cell(exploding_cell_spec(config), config.hidden_size),
                                num_symbols)
  init_key, train_key, eval_key = jax.random.split(key, 3)
  tokens, lengths, _ = first_symbol_batch(init_key, 2, spec.train_lengths, num_symbols)
  params = model.init(init_key, tokens, lengths)['params']
  pair, losses, grad_norms, diverged = train_pair(
      model, params, spec.optim, config.clip_norm, spec.num_steps, config.train.batch_size,
      spec.train_lengths, num_symbols, config.train.chunk_steps, train_key)
  eval_batch = first_symbol_batch(eval_key, config.data.eval_batch_size, spec.train_lengths,
                                  num_symbols)
  eval_losses, eval_accuracies = evaluate(model, pair, eval_batch)
  runs = {}
  for copy, name in enumerate(('unclipped', 'clipped')):
    runs[name] = dict(train_loss=numbers(losses[copy]),
                      train_gradient_norm=numbers(grad_norms[copy]),
                      final_train_loss=final_loss(losses[copy]), diverged_at_step=diverged[copy],
                      **eval_record(eval_losses[copy], eval_accuracies[copy]))
  return dict(initial_recurrent_spectral_norm=number(
      gradient_flow.recurrent_spectral_norm(params['cell'])), **runs)


def run_study(config, log=lambda message: None) -> dict:
  """Every number of the study (see the module docstring); `log` gets a line per cell."""
  check_config(config)
  num_symbols = config.data.num_symbols
  key = jax.random.key(config.seed)
  cell_key, probe_key, eval_key, exploding_key = jax.random.split(key, 4)
  probe_tokens = jax.random.randint(probe_key, (config.probe.batch_size, config.probe.length), 0,
                                    num_symbols)
  probe_batch = (probe_tokens, probe_tokens[:, 0])
  eval_batch = first_symbol_batch(eval_key, config.data.eval_batch_size, config.data.train_lengths,
                                  num_symbols)
  results = dict(config=config.to_dict(), cells={}, seconds={})
  for name, spec in config.cells.items():
    start = time.time()
    results['cells'][name] = study_cell(spec, config, probe_batch, eval_batch, cell_key)
    results['seconds'][name] = round(time.time() - start, 1)
    log(f'{name}: {results["seconds"][name]:.0f} s')
  start = time.time()
  results['exploding'] = study_exploding(config, exploding_key)
  results['seconds']['exploding'] = round(time.time() - start, 1)
  log(f'exploding: {results["seconds"]["exploding"]:.0f} s')
  return results


def _cell_name(spec: dict) -> str:
  if spec['cell'] == 'elman':
    return f'Elman {spec.get("activation", "tanh")}'
  return spec['cell'].upper()


def _diverged_note(record: dict) -> str:
  step = record.get('diverged_at_step')
  return '' if step is None else f' (non-finite at step {step})'


def plot_gradient_norms(results: dict, path: pathlib.Path) -> None:
  """‖∂L/∂s_t‖ against distance, log y: a panel per state, a line per cell."""
  plt = plotting.pyplot()
  titles = dict(init='at initialisation', trained='trained, no clipping',
                trained_clipped=f'trained, clipping at {results["config"]["clip_norm"]:g}')
  fig, axes = plt.subplots(1, len(STATES), figsize=(5 * len(STATES), 4), sharey=True)
  for ax, state in zip(axes, STATES):
    for name, records in results['cells'].items():
      norms = records[state]['gradient_norms']
      ax.plot(range(len(norms)), norms, label=name + _diverged_note(records[state]))
    ax.set_yscale('log', nonpositive='mask')
    ax.set(title=titles[state], xlabel='distance to the loss, T − 1 − t')
    ax.legend(fontsize=8)
  axes[0].set_ylabel('‖∂L/∂s_t‖ (per example, batch mean)')
  plotting.save_figure(fig, path)


def plot_clipping(results: dict, path: pathlib.Path) -> None:
  """Training loss and gradient norm of the exploding network, without and with clipping.
  Losses above the loss panel's top (1.5 × chance) are drawn at the top as ▲."""
  plt = plotting.pyplot()
  exploding, config = results['exploding'], results['config']
  chance = math.log(config['data']['num_symbols'])
  top = 1.5 * chance
  fig, (loss_ax, norm_ax) = plt.subplots(1, 2, figsize=(11, 4))
  labels = dict(unclipped='no clipping', clipped=f'clipping at {config["clip_norm"]:g}')
  for name, label in labels.items():
    run = exploding[name]
    steps = np.arange(1, len(run['train_loss']) + 1)
    losses = np.array(run['train_loss'])
    line, = loss_ax.plot(steps, np.minimum(losses, top), label=label + _diverged_note(run))
    norm_ax.plot(steps, run['train_gradient_norm'], label=label, color=line.get_color())
    above = losses > top
    loss_ax.plot(steps[above], np.full(above.sum(), top), '^', color=line.get_color(),
                 clip_on=False)
    if run['diverged_at_step'] is not None:       # marks too: the line may be a few steps long
      norm_ax.plot(steps, run['train_gradient_norm'], 'x', color=line.get_color())
      for ax in (loss_ax, norm_ax):
        ax.axvline(run['diverged_at_step'], color=line.get_color(), linestyle=':')
  loss_ax.axhline(chance, color='grey', linestyle='--', linewidth=0.8,
                  label=f'chance, ln {config["data"]["num_symbols"]}')
  spec = config['exploding']
  loss_ax.set(xlabel='step', ylabel='training loss (cross-entropy)', ylim=(0, top),
              title=f'{_cell_name(spec)}, U = {spec.get("recurrent_scale", 1.0):g} × orthogonal, '
                    f'{spec["optim"]["name"]} {spec["optim"]["learning_rate"]:g}')
  norm_ax.set(xlabel='step', ylabel='gradient global norm before clipping', yscale='log')
  loss_ax.legend(fontsize=8)
  norm_ax.legend(fontsize=8)
  plotting.save_figure(fig, path)


def _format(x) -> str:
  if x is None:
    return '–'
  return 'nan' if math.isnan(x) else f'{x:.3g}'


def summary_markdown(results: dict) -> str:
  config = results['config']
  distances = [str(d) for d in config['probe']['distances']]
  train, optim, data = config['train'], config['optim'], config['data']
  lines = [
      '# Gradient flow: recalling the first symbol',
      '',
      f'Task: output the first of {data["train_lengths"][0]}–{data["train_lengths"][1]} random '
      f'symbols ({data["num_symbols"]} kinds), hidden size {config["hidden_size"]}; '
      f'{train["num_steps"]} steps of {optim["name"]} {optim["learning_rate"]:g}, batch '
      f'{train["batch_size"]}; "clipped": gradient clipped to global norm {config["clip_norm"]:g}.',
      f'Probe: {config["probe"]["batch_size"]} sequences of length {config["probe"]["length"]}; '
      'ratio d = ‖∂L/∂s at distance d‖ / ‖∂L/∂s at distance 0‖ (per-example norms, batch mean); '
      'σ_max(U): largest singular value of the recurrent kernel; ‖J‖: mean largest singular '
      f'value of ∂s_t/∂s_{{t−1}} over {config["probe"]["jacobian_batch_size"]} probe sequences. '
      f'Accuracy on {data["eval_batch_size"]} held-out sequences (chance '
      f'{1 / data["num_symbols"]:.3g}); train loss: mean of the last 5 % of steps; '
      'a ratio of 0: the gradient fell below float32\'s range.',
      '',
      '| cell | state | ' + ' | '.join(f'ratio d={d}' for d in distances)
      + ' | σ_max(U) | ‖J‖ | train loss | eval loss | eval accuracy | non-finite at step |',
      '|---|---|' + '---|' * (len(distances) + 6),
  ]
  for name, records in results['cells'].items():
    for state in STATES:
      r = records[state]
      cells = [name, state.replace('_', ', '), *(_format(r['ratios'][d]) for d in distances),
               _format(r['recurrent_spectral_norm']), _format(r['mean_step_jacobian_norm']),
               _format(r.get('final_train_loss')), _format(r['eval_loss']),
               _format(r['eval_accuracy']), str(r.get('diverged_at_step') or '–')]
      lines.append('| ' + ' | '.join(cells) + ' |')
  exploding = results['exploding']
  spec = config['exploding']
  lines += [
      '',
      f'## Exploding {_cell_name(spec)}',
      '',
      f'U = {spec.get("recurrent_scale", 1.0):g} × orthogonal (σ_max(U) = '
      f'{_format(exploding["initial_recurrent_spectral_norm"])}), {spec["optim"]["name"]} '
      f'{spec["optim"]["learning_rate"]:g}, {spec["num_steps"]} steps, lengths '
      f'{spec["train_lengths"][0]}–{spec["train_lengths"][1]}.',
      '',
      '| run | train loss | eval loss | eval accuracy | largest gradient norm '
      '| non-finite at step |',
      '|---|---|---|---|---|---|',
  ]
  for name in ('unclipped', 'clipped'):
    run = exploding[name]
    finite_norms = [x for x in run['train_gradient_norm'] if not math.isnan(x)]
    cells = [name, _format(run['final_train_loss']), _format(run['eval_loss']),
             _format(run['eval_accuracy']), _format(max(finite_norms, default=math.nan)),
             str(run['diverged_at_step'] or '–')]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def write_outputs(results: dict, workdir: pathlib.Path) -> str:
  """Writes the plots, summary.md and gradient_flow.json; returns the summary."""
  workdir.mkdir(parents=True, exist_ok=True)
  plot_gradient_norms(results, workdir / 'gradient_norms.png')
  plot_clipping(results, workdir / 'clipping.png')
  summary = summary_markdown(results)
  (workdir / 'summary.md').write_text(summary)
  (workdir / 'gradient_flow.json').write_text(json.dumps(results, indent=1) + '\n')
  return summary
