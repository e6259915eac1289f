"""The contenders: their names, which are compared with which, and how each is built.

Frameworks are imported inside the builders, so that only the worker that
measures a contender imports its framework.
"""

from __future__ import annotations

import dataclasses
import importlib.util


@dataclasses.dataclass(frozen=True)
class Contender:
  name: str
  framework: str      # 'seqnets' | 'flax' | 'torch'
  kind: str           # 'lstm' | 'gru' | 'elman': which cells are compared with each other
  label: str          # how the table names it
  in_targets: bool = True   # a seqnets cell the targets apply to


def _contenders() -> dict[str, Contender]:
  entries = [
      Contender('sn_lstm', 'seqnets', 'lstm', 'sn.LSTMCell'),
      Contender('sn_lstm_peep', 'seqnets', 'lstm', 'sn.LSTMCell(use_peepholes=True)'),
      Contender('sn_gru', 'seqnets', 'gru', 'sn.GRUCell(reset_after=False)', in_targets=False),
      Contender('sn_gru_ra', 'seqnets', 'gru', 'sn.GRUCell(reset_after=True)'),
      Contender('sn_elman', 'seqnets', 'elman', 'sn.ElmanCell'),
      Contender('snx_lstm', 'seqnets', 'lstm', 'snx.LSTMCell (NNX)', in_targets=False),
      Contender('flax_lstm', 'flax', 'lstm', 'nn.LSTMCell'),
      Contender('flax_optlstm', 'flax', 'lstm', 'nn.OptimizedLSTMCell'),
      Contender('flax_gru', 'flax', 'gru', 'nn.GRUCell'),
      Contender('flax_simple', 'flax', 'elman', 'nn.SimpleCell'),
      Contender('nnx_optlstm', 'flax', 'lstm', 'nnx.OptimizedLSTMCell (NNX)'),
      Contender('torch_lstm', 'torch', 'lstm', 'torch.nn.LSTM'),
      Contender('torch_gru', 'torch', 'gru', 'torch.nn.GRU'),
      Contender('torch_rnn', 'torch', 'elman', 'torch.nn.RNN(tanh)'),
  ]
  return {c.name: c for c in entries}


CONTENDERS = _contenders()
# The flax reference of each kind is the fastest of these (per shape, allocator, mode).
FLAX_REFERENCES = {'lstm': ('flax_lstm', 'flax_optlstm'), 'gru': ('flax_gru',),
                   'elman': ('flax_simple',)}
TORCH_REFERENCES = {'lstm': 'torch_lstm', 'gru': 'torch_gru', 'elman': 'torch_rnn'}
# Flax NNX modules (`build_nnx_module`), measured through `nnx.split` / `nnx.merge`; the
# others are linen modules.
NNX_CONTENDERS = ('snx_lstm', 'nnx_optlstm')


def build_flax_module(name: str, hidden: int):
  """The `[B, T, E] -> [B, T, H]` flax module of a seqnets or flax contender."""
  from flax import linen as nn
  import seqnets as sn
  builders = {
      'sn_lstm': lambda: sn.RNN(sn.LSTMCell(hidden)),
      'sn_lstm_peep': lambda: sn.RNN(sn.LSTMCell(hidden, use_peepholes=True)),
      'sn_gru': lambda: sn.RNN(sn.GRUCell(hidden, reset_after=False)),
      'sn_gru_ra': lambda: sn.RNN(sn.GRUCell(hidden, reset_after=True)),
      'sn_elman': lambda: sn.RNN(sn.ElmanCell(hidden)),
      'flax_lstm': lambda: nn.RNN(nn.LSTMCell(hidden)),
      'flax_optlstm': lambda: nn.RNN(nn.OptimizedLSTMCell(hidden)),
      'flax_gru': lambda: nn.RNN(nn.GRUCell(hidden)),
      'flax_simple': lambda: nn.RNN(nn.SimpleCell(hidden)),
  }
  return builders[name]()


def build_nnx_module(name: str, features: int, hidden: int):
  """The `[B, T, E] -> [B, T, H]` Flax NNX module of an NNX contender."""
  from flax import nnx
  import seqnets.nnx as snx
  rngs = nnx.Rngs(0)
  builders = {
      'snx_lstm': lambda: snx.RNN(snx.LSTMCell(features, hidden, rngs=rngs)),
      'nnx_optlstm': lambda: nnx.RNN(nnx.OptimizedLSTMCell(features, hidden, rngs=rngs)),
  }
  return builders[name]()


def build_torch_layer(name: str, features: int, hidden: int):
  """The batch-first `torch.nn` recurrent layer of a torch contender."""
  import torch
  layers = {
      'torch_lstm': lambda: torch.nn.LSTM(features, hidden, batch_first=True),
      'torch_gru': lambda: torch.nn.GRU(features, hidden, batch_first=True),
      'torch_rnn': lambda: torch.nn.RNN(features, hidden, nonlinearity='tanh', batch_first=True),
  }
  return layers[name]()


def torch_importable() -> bool:
  try:
    return importlib.util.find_spec('torch') is not None
  except (ImportError, ValueError):
    return False
