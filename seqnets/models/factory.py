"""The one place where `config.model` keys become module attributes.

Config (`config.model`):
  name: 'recurrent_tagger'
  cell: 'elman' | 'lstm' | 'gru'
  hidden_size, num_layers, embedding_size (0: one-hot), bidirectional, dropout_rate, unroll
  activation: Elman φ, 'tanh' | 'relu' | ...
  use_peepholes, forget_bias, input_bias, output_bias: LSTM (initial gate biases)
  reset_after: GRU
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
from flax import linen as nn

from seqnets.layers import initializers
from seqnets.layers.elman import ElmanCell
from seqnets.layers.gru import GRUCell
from seqnets.layers.lstm import LSTMCell
from seqnets.models.tagger import RecurrentTagger

ACTIVATIONS: dict[str, Callable] = {
    'tanh': jnp.tanh, 'relu': jax.nn.relu, 'sigmoid': jax.nn.sigmoid, 'identity': lambda x: x,
}


def _elman(cfg):
  return functools.partial(ElmanCell, cfg.hidden_size, activation_fn=ACTIVATIONS[cfg.get('activation', 'tanh')])


def _lstm(cfg):
  biases = (cfg.get('input_bias', 0.0), cfg.get('forget_bias', 1.0), 0.0, cfg.get('output_bias', 0.0))
  return functools.partial(LSTMCell, cfg.hidden_size, use_peepholes=cfg.get('use_peepholes', False),
                           bias_init=initializers.gate_bias_init(biases))


def _gru(cfg):
  return functools.partial(GRUCell, cfg.hidden_size, reset_after=cfg.get('reset_after', False))


CELLS: dict[str, Callable[[ml_collections.ConfigDict], Callable[[], nn.RNNCellBase]]] = {
    'elman': _elman, 'lstm': _lstm, 'gru': _gru,
}


@dataclasses.dataclass(frozen=True)
class _Builder:
  build: Callable
  positive_fields: tuple[str, ...]


def _tagger(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  return RecurrentTagger(
      cell_fn=CELLS[cfg.cell](cfg), vocab_size=data_info.vocab_size,
      num_outputs=data_info.num_outputs, num_layers=cfg.get('num_layers', 1),
      embedding_size=cfg.get('embedding_size', 0), bidirectional=cfg.get('bidirectional', False),
      dropout_rate=cfg.get('dropout_rate', 0.0), unroll=cfg.get('unroll', 1))


MODELS: dict[str, _Builder] = {
    'recurrent_tagger': _Builder(_tagger, ('hidden_size', 'num_layers', 'unroll')),
}


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad `model.*` field."""
  if cfg.get('name') not in MODELS:
    raise ValueError(f'model.name={cfg.get("name")!r}; valid: {sorted(MODELS)}')
  if cfg.get('cell') not in CELLS:
    raise ValueError(f'model.cell={cfg.get("cell")!r}; valid: {sorted(CELLS)}')
  for field in MODELS[cfg.name].positive_fields:
    value = cfg.get(field, 1)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
      raise ValueError(f'model.{field} must be a positive integer, got {value!r}')
  if not 0.0 <= cfg.get('dropout_rate', 0.0) < 1.0:
    raise ValueError(f'model.dropout_rate must be in [0, 1), got {cfg.dropout_rate!r}')
  if cfg.get('activation', 'tanh') not in ACTIVATIONS:
    raise ValueError(f"model.activation={cfg.activation!r}; valid: {sorted(ACTIVATIONS)}")


def from_config(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  validate(cfg)
  return MODELS[cfg.name].build(cfg, data_info)
