"""The one place where `config.model` keys become module attributes.

`config.model.name` picks the model; its other keys are the module's attributes:
  recurrent_tagger: cell ('elman' | 'lstm' | 'gru'), hidden_size, num_layers,
    embedding_size (0: one-hot), bidirectional, dropout_rate, unroll
  activation: Elman φ, 'tanh' | 'relu' | ...
  use_peepholes, forget_bias, input_bias, output_bias: LSTM (initial gate biases)
  reset_after: GRU
  image_cnn: features, kernel_size, strides, padding, activation, pool_kind, pool_window,
    pool_strides, pool_padding, spatial_dropout_rate, dense_features, dropout_rate (see ImageCNN)
  text_cnn: embedding_size, filter_widths, num_filters, dropout_rate, channels (see TextCNN)
  alexnet: no keys (227×227×3 inputs)
Class counts and vocabulary sizes come from the data (`DataInfo`), never from the config.
"""

from __future__ import annotations

import functools
from typing import Callable

import ml_collections
from flax import linen as nn

from seqnets.layers import initializers
from seqnets.layers.feedforward import ACTIVATIONS
from seqnets.layers.elman import ElmanCell
from seqnets.layers.gru import GRUCell
from seqnets.layers.lstm import LSTMCell
from seqnets.models.alexnet import AlexNet
from seqnets.models.cnn import ImageCNN
from seqnets.models.tagger import RecurrentTagger
from seqnets.models.text_cnn import CHANNELS, TextCNN


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


def _tagger(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  return RecurrentTagger(
      cell_fn=CELLS[cfg.cell](cfg), vocab_size=data_info.vocab_size,
      num_outputs=data_info.num_outputs, num_layers=cfg.get('num_layers', 1),
      embedding_size=cfg.get('embedding_size', 0), bidirectional=cfg.get('bidirectional', False),
      dropout_rate=cfg.get('dropout_rate', 0.0), unroll=cfg.get('unroll', 1))


def _validate_tagger(cfg: ml_collections.ConfigDict) -> None:
  if cfg.get('cell') not in CELLS:
    raise ValueError(f'model.cell={cfg.get("cell")!r}; valid: {sorted(CELLS)}')
  _positive_ints(cfg, ('hidden_size', 'num_layers', 'unroll'))
  if cfg.get('activation', 'tanh') not in ACTIVATIONS:
    raise ValueError(f"model.activation={cfg.activation!r}; valid: {sorted(ACTIVATIONS)}")


def _image_cnn(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  fields = ('kernel_size', 'strides', 'padding', 'activation', 'pool_kind', 'pool_window',
            'pool_strides', 'pool_padding', 'spatial_dropout_rate', 'dense_features', 'dropout_rate')
  return ImageCNN(features=tuple(cfg.features), num_classes=data_info.num_outputs,
                  **{f: _plain(cfg[f]) for f in fields if f in cfg})


def _validate_image_cnn(cfg: ml_collections.ConfigDict) -> None:
  features = cfg.get('features')
  if not features or any(not isinstance(f, int) or f <= 0 for f in features):
    raise ValueError(f'model.features must be a non-empty list of positive integers, got {features!r}')


def _text_cnn(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  return TextCNN(vocab_size=data_info.vocab_size, num_classes=data_info.num_outputs,
                 embedding_size=cfg.embedding_size, filter_widths=tuple(cfg.filter_widths),
                 num_filters=cfg.num_filters, dropout_rate=cfg.get('dropout_rate', 0.5),
                 channels=cfg.get('channels', 'rand'))


def _validate_text_cnn(cfg: ml_collections.ConfigDict) -> None:
  _positive_ints(cfg, ('embedding_size', 'num_filters'))
  widths = cfg.get('filter_widths')
  if not widths or any(not isinstance(w, int) or w <= 0 for w in widths):
    raise ValueError(f'model.filter_widths must be a non-empty list of positive integers, got {widths!r}')
  if cfg.get('channels', 'rand') not in CHANNELS:
    raise ValueError(f'model.channels={cfg.channels!r}; valid: {list(CHANNELS)}')


def _alexnet(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  return AlexNet(num_classes=data_info.num_outputs)


def _plain(value):
  """ConfigDict values to what flax attributes expect (lists -> tuples)."""
  return tuple(_plain(v) for v in value) if isinstance(value, (list, tuple)) else value


def _positive_ints(cfg: ml_collections.ConfigDict, fields: tuple[str, ...]) -> None:
  for field in fields:
    value = cfg.get(field, 1)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
      raise ValueError(f'model.{field} must be a positive integer, got {value!r}')


# name -> (validate(model_cfg), build(model_cfg, data_info))
MODELS: dict[str, tuple[Callable, Callable]] = {
    'recurrent_tagger': (_validate_tagger, _tagger),
    'image_cnn': (_validate_image_cnn, _image_cnn),
    'text_cnn': (_validate_text_cnn, _text_cnn),
    'alexnet': (lambda cfg: None, _alexnet),
}


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad `model.*` field."""
  if cfg.get('name') not in MODELS:
    raise ValueError(f'model.name={cfg.get("name")!r}; valid: {sorted(MODELS)}')
  if not 0.0 <= cfg.get('dropout_rate', 0.0) < 1.0:
    raise ValueError(f'model.dropout_rate must be in [0, 1), got {cfg.dropout_rate!r}')
  MODELS[cfg.name][0](cfg)


def from_config(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  validate(cfg)
  return MODELS[cfg.name][1](cfg, data_info)
