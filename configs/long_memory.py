"""Ablation: which recurrent cells remember over long delays? Copy memory, adding, sequential digits.

  python -m experiments.ablate --config=configs/long_memory.py --workdir=runs/long_memory
  python -m experiments.ablate --config=configs/long_memory.py:copy --workdir=runs/long_memory_copy
  python -m experiments.ablate --config=configs/long_memory.py:adding --workdir=runs/long_memory_adding
  python -m experiments.ablate --config=configs/long_memory.py:digits --workdir=runs/long_memory_digits
  python -m experiments.ablate --config=configs/long_memory.py:smoke --workdir=/tmp/long_memory  # seconds
  python -m experiments.main --config=configs/long_memory.py:copy_T500-orthogonal \
      --config.num_seeds=1 --workdir=runs/copy_T500-orthogonal   # one variant of the sweep

Cells (`CELLS`; one line adds a cell by its `model.cell` entry) × benchmarks:
  copy_T{100,200,500}     copy memory, delay T (seqnets/tasks/copy_memory.py), a readout per step
  adding_T{100,400}       the adding problem, T steps (seqnets/tasks/adding.py), a final readout
  digits, digits_permuted 8×8 digits one pixel per step, plain and with a fixed permutation
                          (seqnets/tasks/sequential_digits.py), a final readout
Variants are named `<benchmark>-<cell>`, e.g. `copy_T200-gru`; `num_seeds` (3) seeds of each
train side by side. Modes: none (every benchmark), `copy`, `adding`, `digits` (one family),
`smoke` (three tiny variants, for the tests), or a variant's name (that one variant: its
config for `experiments.main`, a sweep of one for `experiments.ablate`).

The shared recipe is Arjovsky et al.'s (2016): one recurrent layer of 128, RMSProp lr 1e-3
(decay 0.9), batches of 128, gradient clipping at global norm 1, LSTM forget-gate bias 1;
fresh random copy / adding sequences every step, evaluated on 1,000 held-out ones. A cell
whose authors train it otherwise says so in `CELLS`: the orthogonal RNN takes expRNN's
(Lezcano-Casado & Martínez-Rubio 2019): RMSProp lr 2e-4 (decay 0.99), its skew-symmetric
generator at a tenth of that; with the shared lr 1e-3 it stays at the copy baseline.
The budget is `STEPS` per family: in a family or variant mode it is the base config's
`train.num_train_steps`, so `--config.train.num_train_steps=N` changes it; with every
benchmark at once, edit `STEPS`. The report draws each task's baseline (the data summary's
`baseline/loss`: `10 log 8 / (T + 20)` for copy, 1/6 for adding, the class-prior loss for
digits) in train_loss.png and tabulates it.
"""

import ml_collections

from seqnets.ablation import sweeps

# name -> overrides: `model.cell` (less its hidden_size, HIDDEN_SIZE) and the cell's recipe.
CELLS = {
    'elman': {'model.cell': dict(name='elman', activation='tanh')},
    'lstm': {'model.cell': dict(name='lstm')},
    # Tallec & Ollivier (2018): forgetting times drawn up to the benchmark's horizon.
    'lstm_chrono': {'model.cell': dict(name='lstm', forget_bias='chrono')},
    'gru': {'model.cell': dict(name='gru')},
    'gru_chrono': {'model.cell': dict(name='gru', update_bias='chrono')},
    'orthogonal': {'model.cell': dict(name='orthogonal', activation='modrelu'),    # expRNN
                   'optim.learning_rate': 2e-4, 'optim.decay': 0.99,
                   'optim.learning_rate_factors': (('*recurrent_skew', 0.1),)},
    'unitary': {'model.cell': dict(name='unitary')},      # 128 complex units, 256 outputs
    'leaky': {'model.cell': dict(name='leaky', leak=0.5, learn_leak=True)},
    'skip': {'model.cell': dict(name='skip', skip=10)},
    'echo_state': {'model.cell': dict(name='echo_state', spectral_radius=0.95)},  # readout only
}
HIDDEN_SIZE = 128
SMOKE_HIDDEN_SIZE = 4
COPY_DELAYS = (100, 200, 500)
ADDING_LENGTHS = (100, 400)
STEPS = {'copy': 5_000, 'adding': 10_000, 'digits': 3_000}
BATCH_SIZE = 128
EVAL_SIZE = 1000
FAMILIES = tuple(STEPS)


def copy_data(delay: int, batch_size: int = BATCH_SIZE, eval_size: int = EVAL_SIZE) -> dict:
  return dict(delay=delay, batch_size=batch_size, eval_size=eval_size, eval_seed=0)


def adding_data(length: int, batch_size: int = BATCH_SIZE, eval_size: int = EVAL_SIZE) -> dict:
  return dict(length=length, batch_size=batch_size, eval_size=eval_size, eval_seed=0)


def digits_data(permute: bool, batch_size: int = BATCH_SIZE) -> dict:
  return dict(permute=permute, permutation_seed=0, test_fraction=0.2, split_seed=0,
              batch_size=batch_size)


def benchmarks(family: str | None = None) -> dict[str, tuple[str, dict]]:
  """Benchmark name -> (family, overrides of task, data and readout); one family or all."""
  found = {}
  for delay in COPY_DELAYS:
    found[f'copy_T{delay}'] = ('copy', {'task': 'copy_memory', 'data': copy_data(delay),
                                        'model.readout': 'every_step'})
  for length in ADDING_LENGTHS:
    found[f'adding_T{length}'] = ('adding', {'task': 'adding', 'data': adding_data(length),
                                             'model.readout': 'final'})
  for name, permute in (('digits', False), ('digits_permuted', True)):
    found[name] = ('digits', {'task': 'sequential_digits', 'data': digits_data(permute),
                              'model.readout': 'final'})
  return {name: v for name, v in found.items() if family in (None, v[0])}


def horizon(benchmark: str) -> int:
  """The longest dependency of a benchmark, in steps: a chrono cell's `chrono_max_length`."""
  family = benchmark.split('_T')[0]
  if family in ('copy', 'adding'):
    length = int(benchmark.split('_T')[1])
    return length + 20 if family == 'copy' else length    # copy: 10 symbols, T blanks, 10 out
  return 64                                               # the 8×8 digits, a pixel per step


def sized(cell_overrides: dict, hidden_size: int = HIDDEN_SIZE,
          max_length: int | None = None) -> dict:
  """A cell's overrides with its `model.cell` entry given `hidden_size`, and a chrono
  cell's `chrono_max_length` (the benchmark's horizon, `max_length`)."""
  cell = dict(cell_overrides['model.cell'], hidden_size=hidden_size)
  if 'chrono' in (cell.get('forget_bias'), cell.get('update_bias')):
    cell['chrono_max_length'] = max_length
  return {**cell_overrides, 'model.cell': cell}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  variants = {v['name']: v for v in sweep()}
  if arg in variants:
    family = benchmarks()[arg.split('-')[0]][0]
    return sweeps.apply_overrides(get_config(family), {
        k: v for k, v in variants[arg].items() if k != 'train.num_train_steps'})
  if arg not in (None, *FAMILIES, 'smoke'):
    raise ValueError(f'configs/long_memory.py: unknown mode {arg!r}; valid: '
                     f'{", ".join(FAMILIES)}, smoke, or a variant such as copy_T500-lstm')
  family = 'copy' if arg in (None, 'smoke') else arg
  first = next(iter(benchmarks(family).values()))[1]
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.num_seeds = 3                 # seeds seed, seed+1, ... train side by side (vmap)
  config.task = first['task']
  config.data = first['data']
  config.model = dict(
      name='sequence_readout',
      # Any cell of seqnets/models/cells.py with its own keys, e.g. dict(name='leaky',
      # hidden_size=128, leak=0.5, learn_leak=True); the sweep sets it from CELLS.
      cell=dict(name='lstm', hidden_size=HIDDEN_SIZE),
      num_layers=1,
      readout=first['model.readout'],  # every_step (copy) | final (adding, digits)
      dropout_rate=0.0,
      unroll=1,
  )
  config.model.dtype = 'float32'   # 'bfloat16' on a GPU or TPU: parameters stay float32
  config.optim = dict(name='rmsprop', learning_rate=1e-3, decay=0.9, eps=1e-8, momentum=0.0,
                      schedule='constant', warmup_steps=0, end_learning_rate_factor=0.0,
                      clip_norm=1.0, clip_value=0.0,
                      learning_rate_factors=())  # ((glob of parameter paths, factor), ...)
  config.train = dict(num_train_steps=STEPS[family], log_every_steps=50,
                      checkpoint_every_steps=1000, max_checkpoints_to_keep=1)
  config.evals = dict(test=dict(type='metrics', split='test', every_steps=500, batch_size=500))
  config.launch = dict(             # --executor=local | slurm: one submitit job per variant
      timeout_min=24 * 60, cpus_per_task=2, mem_gb=4,
      slurm_partition=None,            # e.g. 'cpu'; None: the cluster's default
      max_parallel_jobs=1,             # at a time (local: this machine's cores are few)
  )
  if arg == 'smoke':
    config.num_seeds = 2
    config.data = copy_data(5, batch_size=8, eval_size=16)
    config.model.cell.hidden_size = SMOKE_HIDDEN_SIZE
    config.train.update(num_train_steps=4, log_every_steps=2, checkpoint_every_steps=4)
    config.evals.test.update(every_steps=0, batch_size=512)
  return config


def sweep(arg: str | None = None) -> list[dict]:
  """One override dict per run; `name` names its sub-directory of the workdir."""
  if arg == 'smoke':
    return [
        {'name': 'copy_T5-lstm', 'task': 'copy_memory', 'data': copy_data(5, 8, 16),
         'model.readout': 'every_step', **sized(CELLS['lstm'], SMOKE_HIDDEN_SIZE)},
        {'name': 'adding_T6-gru', 'task': 'adding', 'data': adding_data(6, 8, 16),
         'model.readout': 'final', **sized(CELLS['gru'], SMOKE_HIDDEN_SIZE)},
        {'name': 'digits_permuted-elman', 'task': 'sequential_digits',
         'data': digits_data(True, 8), 'model.readout': 'final',
         **sized(CELLS['elman'], SMOKE_HIDDEN_SIZE)},
    ]
  every = [{'name': f'{name}-{cell}', **overrides,
            **sized(cell_overrides, HIDDEN_SIZE, horizon(name)),
            'train.num_train_steps': STEPS[family]}
           for name, (family, overrides) in benchmarks().items()
           for cell, cell_overrides in CELLS.items()]
  if arg is None:
    return every
  get_config(arg)                      # checks the mode
  # One family or one variant: the base config's step count, so the command line sets it.
  return [{k: v for k, v in variant.items() if k != 'train.num_train_steps'}
          for variant in every
          if arg in (variant['name'], benchmarks()[variant['name'].split('-')[0]][0])]
