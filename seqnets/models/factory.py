"""The one place where `config.model` keys become module attributes.

`config.model.name` picks the model; its other keys are the module's attributes:
  recurrent_tagger: cell ('elman' | 'lstm' | 'gru'), hidden_size, num_layers,
    embedding_size (0: one-hot), bidirectional, dropout_rate, unroll
  activation: Elman φ, 'tanh' | 'relu' | ...
  use_peepholes, forget_bias, input_bias, output_bias: LSTM (initial gate biases)
  reset_after: GRU
  update_dropout_rate, zoneout_rate, weight_drop_rate, layer_norm: the cells' regularisers
    (dropout of the update, zoneout, DropConnect on U, layer normalisation; all off by default)
  variational_input_rate, variational_state_rate: variational dropout in every `sn.RNN`
  recurrent_lm: cell, hidden_size, num_layers, embedding_size, tie_embeddings,
    embedding_dropout_rate, dropout_rate (between layers), output_dropout_rate, unroll, and
    the cell keys above (see RecurrentLM)
  recurrent_seq2seq: cell, hidden_size (encoder, per direction), decoder_hidden_size (0: the
    same), encoder_layers, bidirectional, embedding_size, context ('initial' | 'every_step' |
    'attention'), score ('dot' | 'general' | 'additive'), placement ('bahdanau' | 'luong'),
    attention_size (0: the decoder's size), bridge, dropout_rate, unroll, and the cell keys
    above (see RecurrentSeq2Seq)
  transformer_seq2seq: model_size (d, a multiple of num_heads), num_heads, num_layers (of the
    encoder, and of the decoder), ff_size, dropout_rate (default 0.1), positions ('sinusoidal' |
    'learned'), max_positions (the learned tables' length, default 512), tie_target_embeddings
    (see TransformerSeq2Seq)
  image_cnn: features, kernel_size, strides, padding, activation, pool_kind, pool_window,
    pool_strides, pool_padding, batch_norm, spatial_dropout_rate, dense_features, dropout_rate
    (see ImageCNN)
  text_cnn: embedding_size, filter_widths, num_filters, dropout_rate, channels (see TextCNN)
  alexnet: no keys (227×227×3 inputs)
  image_to_sequence: cell, hidden_size (the decoder's), embedding_size, conv_features (filters of
    the 3×3 conv layers; the last is the memory size), score, placement, attention_size (0: the
    decoder's size), dropout_rate, bridge, and the cell keys above (see ImageToSequence)
  sequence_tagger: cell, hidden_size (per direction), num_layers, bidirectional (default
    True), embedding_size, char_encoder ('none' | 'bilstm' | 'cnn'), char_embedding_size,
    char_features, char_kernel_size, embedding_dropout_rate, dropout_rate, crf,
    crf_constraints ('none' | 'bio': the tag names' BIO rules), unroll, and the cell keys
    above (see SequenceTagger)
  recurrent_classifier: cell, hidden_size, num_layers, bidirectional (default True),
    embedding_size, pooling ('final' | 'mean' | 'max' | 'attention'), attention_size,
    embedding_dropout_rate, dropout_rate, unroll, and the cell keys above (see
    RecurrentClassifier)
  sequence_readout: cell, hidden_size, num_layers, readout ('every_step' | 'final'; required),
    dropout_rate (between layers), unroll, and the cell keys above; one-hot token inputs when
    the data has a vocabulary, else real-valued inputs [B, T, F] (see SequenceReadout)
Class counts and vocabulary sizes come from the data (`DataInfo`), never from the config.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Callable

import ml_collections
from flax import linen as nn

from seqnets.layers import initializers
from seqnets.layers.conv import _CONV_MODES
from seqnets.layers.feedforward import ACTIVATIONS
from seqnets.layers import orthogonal as orthogonal_lib
from seqnets.layers.echo_state import EchoStateCell
from seqnets.layers.elman import ElmanCell
from seqnets.layers.gru import GRUCell
from seqnets.layers.leaky import LeakyRNNCell
from seqnets.layers.lstm import LSTMCell
from seqnets.layers.time_skip import SkipRNNCell
from seqnets.layers.unitary import UnitaryRNNCell
from seqnets.layers.padding import normalize_padding
from seqnets.layers.pooling import KINDS
from seqnets.models.alexnet import AlexNet
from seqnets.models.cnn import ImageCNN
from seqnets.models.image_to_sequence import ImageToSequence
from seqnets.layers import attention as attention_lib
from seqnets.layers import crf as crf_lib
from seqnets.models.language_model import RecurrentLM
from seqnets.models.recurrent_classifier import POOLINGS, RecurrentClassifier
from seqnets.models.seq2seq import CONTEXTS, RecurrentSeq2Seq
from seqnets.models.sequence_readout import READOUTS, SequenceReadout
from seqnets.models.sequence_tagger import CHAR_ENCODERS, SequenceTagger
from seqnets.models.tagger import RecurrentTagger
from seqnets.models.text_cnn import CHANNELS, TextCNN
from seqnets.models.transformer import POSITIONS, TransformerSeq2Seq


CELL_REGULARIZERS = {'update_dropout_rate': 0.0, 'zoneout_rate': 0.0, 'weight_drop_rate': 0.0,
                     'layer_norm': False}
RNN_REGULARIZERS = ('variational_input_rate', 'variational_state_rate')


def _regularizers(cfg):
  return {field: cfg.get(field, default) for field, default in CELL_REGULARIZERS.items()}


def _elman(cfg):
  return functools.partial(ElmanCell, cfg.hidden_size,
                           activation_fn=ACTIVATIONS[cfg.get('activation', 'tanh')],
                           **_regularizers(cfg))


def _lstm(cfg):
  biases = (cfg.get('input_bias', 0.0), cfg.get('forget_bias', 1.0), 0.0, cfg.get('output_bias', 0.0))
  return functools.partial(LSTMCell, cfg.hidden_size, use_peepholes=cfg.get('use_peepholes', False),
                           bias_init=initializers.gate_bias_init(biases), **_regularizers(cfg))


def _gru(cfg):
  return functools.partial(GRUCell, cfg.hidden_size, reset_after=cfg.get('reset_after', False),
                           **_regularizers(cfg))


def _orthogonal(cfg):
  return functools.partial(orthogonal_lib.OrthogonalRNNCell, cfg.hidden_size,
                           parametrization=cfg.get('parametrization', 'expm'),
                           activation=cfg.get('activation', 'modrelu'))


def _unitary(cfg):
  # hidden_size complex units: the layer outputs [Re h, Im h], 2 · hidden_size features.
  return functools.partial(UnitaryRNNCell, cfg.hidden_size,
                           permutation_seed=cfg.get('permutation_seed', 0))


def _leaky(cfg):
  return functools.partial(LeakyRNNCell, cfg.hidden_size, leak=cfg.get('leak', 1.0),
                           learn_leak=cfg.get('learn_leak', False))


def _skip(cfg):
  return functools.partial(SkipRNNCell, cfg.hidden_size, skip=cfg.get('skip', 2),
                           activation_fn=ACTIVATIONS[cfg.get('activation', 'tanh')])


def _echo_state(cfg):
  return functools.partial(
      EchoStateCell, cfg.hidden_size, spectral_radius=cfg.get('spectral_radius', 0.9),
      input_scale=cfg.get('input_scale', 1.0), leak=cfg.get('leak', 1.0),
      density=cfg.get('density', 1.0), bias_scale=cfg.get('bias_scale', 0.0),
      reservoir_seed=cfg.get('reservoir_seed', 0))


CELLS: dict[str, Callable[[ml_collections.ConfigDict], Callable[[], nn.RNNCellBase]]] = {
    'elman': _elman, 'lstm': _lstm, 'gru': _gru, 'orthogonal': _orthogonal, 'unitary': _unitary,
    'leaky': _leaky, 'skip': _skip, 'echo_state': _echo_state,
}
# Cells without the in-step regularisers (update dropout, zoneout, weight drop, layer norm).
_PLAIN_CELLS = ('orthogonal', 'unitary', 'leaky', 'skip', 'echo_state')


def _tagger(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  return RecurrentTagger(
      cell_fn=CELLS[cfg.cell](cfg), vocab_size=data_info.vocab_size,
      num_outputs=data_info.num_outputs, num_layers=cfg.get('num_layers', 1),
      embedding_size=cfg.get('embedding_size', 0), bidirectional=cfg.get('bidirectional', False),
      dropout_rate=cfg.get('dropout_rate', 0.0), unroll=cfg.get('unroll', 1),
      **{field: cfg.get(field, 0.0) for field in RNN_REGULARIZERS})


def _validate_tagger(cfg: ml_collections.ConfigDict) -> None:
  _choice(cfg, 'cell', None, sorted(CELLS))
  _int(cfg, 'hidden_size', None)
  _int(cfg, 'num_layers', 1)
  _int(cfg, 'unroll', 1)
  _int(cfg, 'embedding_size', 0, lo=0, note=' (0: one-hot inputs)')
  validate_cell(cfg)


def validate_cell(cfg: ml_collections.ConfigDict) -> None:
  """The keys of `cfg.cell`'s constructor (see CELLS)."""
  cell = cfg.cell
  if cell == 'orthogonal':
    _choice(cfg, 'activation', 'modrelu', orthogonal_lib.ACTIVATIONS)
    _choice(cfg, 'parametrization', 'expm', orthogonal_lib.PARAMETRIZATIONS)
  else:
    _choice(cfg, 'activation', 'tanh', sorted(ACTIVATIONS))
  if cell == 'skip':
    _int(cfg, 'skip', 2, lo=2)
  if cell in ('unitary',):
    _int(cfg, 'permutation_seed', 0, lo=0)
  if cell == 'echo_state':
    _int(cfg, 'reservoir_seed', 0, lo=0)
    for field, default in (('spectral_radius', 0.9), ('input_scale', 1.0), ('bias_scale', 0.0)):
      _finite_number(cfg, field, default, 0.0)
    _finite_number(cfg, 'density', 1.0, 0.0, 1.0 + 1e-9)
  if cell in ('leaky', 'echo_state'):
    _finite_number(cfg, 'leak', 1.0, 0.0, 1.0 + 1e-9)
  if cell == 'leaky':
    _bool(cfg, 'learn_leak')
  if cell in _PLAIN_CELLS:
    active = [f for f, default in CELL_REGULARIZERS.items() if cfg.get(f, default)]
    if active:
      raise ValueError(f'model.{active[0]} is not available for model.cell={cell!r} (only '
                       f'elman, lstm and gru have the in-step regularisers)')
  for field in ('forget_bias', 'input_bias', 'output_bias'):
    _finite_number(cfg, field, 0.0)
  for field in ('use_peepholes', 'reset_after', 'bidirectional', 'layer_norm'):
    _bool(cfg, field)
  for field in (*(f for f in CELL_REGULARIZERS if f.endswith('_rate')), *RNN_REGULARIZERS):
    _finite_number(cfg, field, 0.0, 0.0, 1.0)


def _language_model(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  return RecurrentLM(
      cell_fn=CELLS[cfg.cell](cfg), vocab_size=data_info.vocab_size,
      embedding_size=cfg.embedding_size, num_layers=cfg.get('num_layers', 1),
      tie_embeddings=cfg.get('tie_embeddings', False),
      embedding_dropout_rate=cfg.get('embedding_dropout_rate', 0.0),
      dropout_rate=cfg.get('dropout_rate', 0.0),
      output_dropout_rate=cfg.get('output_dropout_rate', 0.0), unroll=cfg.get('unroll', 1),
      carry_steps=data_info.carry_steps,
      **{field: cfg.get(field, 0.0) for field in RNN_REGULARIZERS})


def _validate_language_model(cfg: ml_collections.ConfigDict) -> None:
  _validate_tagger(cfg)
  if cfg.get('bidirectional', False):
    raise ValueError('model.bidirectional must be False: a language model reads left to right')
  _int(cfg, 'embedding_size', None)
  _bool(cfg, 'tie_embeddings')
  for field in ('embedding_dropout_rate', 'output_dropout_rate'):
    _finite_number(cfg, field, 0.0, 0.0, 1.0)


def _recurrent_keys(cfg: ml_collections.ConfigDict) -> dict:
  """The keys a recurrent stack takes (num_layers, bidirectional, unroll, variational dropout)."""
  return dict(num_layers=cfg.get('num_layers', 1), bidirectional=cfg.get('bidirectional', True),
              unroll=cfg.get('unroll', 1),
              **{field: cfg.get(field, 0.0) for field in RNN_REGULARIZERS})


def _sequence_tagger(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  constraints = None
  if cfg.get('crf', False) and cfg.get('crf_constraints', 'none') == 'bio':
    constraints = crf_lib.freeze_constraints(crf_lib.bio_constraints(data_info.label_names),
                                             data_info.num_outputs)
  return SequenceTagger(
      cell_fn=CELLS[cfg.cell](cfg), vocab_size=data_info.vocab_size,
      num_tags=data_info.num_outputs, embedding_size=cfg.embedding_size,
      char_vocab_size=data_info.char_vocab_size, char_encoder=cfg.get('char_encoder', 'none'),
      char_embedding_size=cfg.get('char_embedding_size', 25),
      char_features=cfg.get('char_features', 25), char_kernel_size=cfg.get('char_kernel_size', 3),
      embedding_dropout_rate=cfg.get('embedding_dropout_rate', 0.0),
      dropout_rate=cfg.get('dropout_rate', 0.0), crf=cfg.get('crf', False),
      crf_constraints=constraints, **_recurrent_keys(cfg))


def _validate_sequence_tagger(cfg: ml_collections.ConfigDict) -> None:
  _validate_tagger(cfg)
  _int(cfg, 'embedding_size', None)
  _choice(cfg, 'char_encoder', 'none', CHAR_ENCODERS)
  for field in ('char_embedding_size', 'char_features', 'char_kernel_size'):
    _int(cfg, field, 25 if field != 'char_kernel_size' else 3)
  _finite_number(cfg, 'embedding_dropout_rate', 0.0, 0.0, 1.0)
  _bool(cfg, 'crf')
  _choice(cfg, 'crf_constraints', 'none', ('none', 'bio'))


def _recurrent_classifier(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  return RecurrentClassifier(
      cell_fn=CELLS[cfg.cell](cfg), vocab_size=data_info.vocab_size,
      num_classes=data_info.num_outputs, embedding_size=cfg.embedding_size,
      pooling=cfg.get('pooling', 'max'), attention_size=cfg.get('attention_size', 100),
      embedding_dropout_rate=cfg.get('embedding_dropout_rate', 0.0),
      dropout_rate=cfg.get('dropout_rate', 0.0), **_recurrent_keys(cfg))


def _validate_recurrent_classifier(cfg: ml_collections.ConfigDict) -> None:
  _validate_tagger(cfg)
  _int(cfg, 'embedding_size', None)
  _choice(cfg, 'pooling', 'max', POOLINGS)
  _int(cfg, 'attention_size', 100)
  _finite_number(cfg, 'embedding_dropout_rate', 0.0, 0.0, 1.0)


def _seq2seq(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  decoder_cfg = ml_collections.ConfigDict(cfg.to_dict())
  decoder_cfg.hidden_size = cfg.get('decoder_hidden_size', 0) or cfg.hidden_size
  return RecurrentSeq2Seq(
      encoder_cell_fn=CELLS[cfg.cell](cfg), decoder_cell_fn=CELLS[cfg.cell](decoder_cfg),
      source_vocab_size=data_info.vocab_size, target_vocab_size=data_info.num_outputs,
      embedding_size=cfg.embedding_size, encoder_layers=cfg.get('encoder_layers', 1),
      bidirectional=cfg.get('bidirectional', False), context=cfg.get('context', 'attention'),
      score=cfg.get('score', 'additive'), placement=cfg.get('placement', 'bahdanau'),
      attention_size=cfg.get('attention_size', 0), bridge=cfg.get('bridge', True),
      dropout_rate=cfg.get('dropout_rate', 0.0), unroll=cfg.get('unroll', 1))


def _validate_seq2seq(cfg: ml_collections.ConfigDict) -> None:
  _validate_tagger(cfg)
  _int(cfg, 'embedding_size', None)
  _int(cfg, 'encoder_layers', 1)
  _int(cfg, 'decoder_hidden_size', 0, lo=0, note=' (0: hidden_size)')
  _int(cfg, 'attention_size', 0, lo=0, note=" (0: the decoder's size)")
  _choice(cfg, 'context', 'attention', CONTEXTS)
  _choice(cfg, 'score', 'additive', attention_lib.SCORES)
  _choice(cfg, 'placement', 'bahdanau', attention_lib.PLACEMENTS)
  _bool(cfg, 'bridge')
  if cfg.get('context', 'attention') == 'attention' and cfg.get('score', 'additive') == 'dot':
    memory = cfg.hidden_size * (2 if cfg.get('bidirectional', False) else 1)
    decoder = cfg.get('decoder_hidden_size', 0) or cfg.hidden_size
    if memory != decoder:
      raise ValueError(f'model.score=\'dot\' needs the encoder states ({memory}) and the decoder '
                       f'state ({decoder}) of one size: set model.decoder_hidden_size={memory}')


def _transformer(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  return TransformerSeq2Seq(
      source_vocab_size=data_info.vocab_size, target_vocab_size=data_info.num_outputs,
      model_size=cfg.model_size, num_heads=cfg.num_heads, num_layers=cfg.num_layers,
      ff_size=cfg.ff_size, dropout_rate=cfg.get('dropout_rate', 0.1),
      positions=cfg.get('positions', 'sinusoidal'), max_positions=cfg.get('max_positions', 512),
      tie_target_embeddings=cfg.get('tie_target_embeddings', False))


def _validate_transformer(cfg: ml_collections.ConfigDict) -> None:
  for field in ('model_size', 'num_heads', 'num_layers', 'ff_size'):
    _int(cfg, field, None)
  _finite_number(cfg, 'dropout_rate', 0.1, 0.0, 1.0)
  _choice(cfg, 'positions', 'sinusoidal', POSITIONS)
  _int(cfg, 'max_positions', 512)
  _bool(cfg, 'tie_target_embeddings')
  if cfg.model_size % cfg.num_heads:
    raise ValueError(f'model.model_size={cfg.model_size} must be divisible by '
                     f'model.num_heads={cfg.num_heads}')


def _image_cnn(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  fields = ('kernel_size', 'strides', 'padding', 'activation', 'pool_kind', 'pool_window',
            'pool_strides', 'pool_padding', 'batch_norm', 'spatial_dropout_rate', 'dense_features',
            'dropout_rate')
  return ImageCNN(features=tuple(cfg.features), num_classes=data_info.num_outputs,
                  **{f: _plain(cfg[f]) for f in fields if f in cfg})


def _validate_image_cnn(cfg: ml_collections.ConfigDict) -> None:
  _int_list(cfg, 'features', None, non_empty=True)
  _window(cfg, 'kernel_size', (3, 3), rank=None)
  kernel_size = cfg.get('kernel_size', (3, 3))
  rank = 1 if isinstance(kernel_size, int) else len(kernel_size)   # spatial axes, as Conv reads it
  _window(cfg, 'strides', 1, rank, allow_one=True)
  conv_modes = [m for m in _CONV_MODES if m != 'CAUSAL' or rank == 1]   # flax: CAUSAL is 1D only
  _padding(cfg, 'padding', 'SAME', rank, conv_modes)
  _choice(cfg, 'activation', 'relu', sorted(ACTIVATIONS))
  _choice(cfg, 'pool_kind', 'max', [*KINDS, None])
  _window(cfg, 'pool_window', 2, rank)
  _window(cfg, 'pool_strides', None, rank, allow_none=True)
  _padding(cfg, 'pool_padding', 'VALID', rank, ('VALID', 'SAME'))
  _bool(cfg, 'batch_norm')
  _finite_number(cfg, 'spatial_dropout_rate', 0.0, 0.0, 1.0)
  _int_list(cfg, 'dense_features', ())


def _text_cnn(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  return TextCNN(vocab_size=data_info.vocab_size, num_classes=data_info.num_outputs,
                 embedding_size=cfg.embedding_size, filter_widths=tuple(cfg.filter_widths),
                 num_filters=cfg.num_filters, dropout_rate=cfg.get('dropout_rate', 0.5),
                 channels=cfg.get('channels', 'rand'))


def _validate_text_cnn(cfg: ml_collections.ConfigDict) -> None:
  _int(cfg, 'embedding_size', None)
  _int(cfg, 'num_filters', None)
  _int_list(cfg, 'filter_widths', None, non_empty=True)
  _choice(cfg, 'channels', 'rand', CHANNELS)


def _image_to_sequence(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  return ImageToSequence(
      cell_fn=CELLS[cfg.cell](cfg), target_vocab_size=data_info.num_outputs,
      embedding_size=cfg.embedding_size, conv_features=tuple(cfg.conv_features),
      score=cfg.get('score', 'additive'), placement=cfg.get('placement', 'bahdanau'),
      attention_size=cfg.get('attention_size', 0), dropout_rate=cfg.get('dropout_rate', 0.0),
      bridge=cfg.get('bridge', True))


def _validate_image_to_sequence(cfg: ml_collections.ConfigDict) -> None:
  _choice(cfg, 'cell', None, sorted(CELLS))
  _int(cfg, 'hidden_size', None)
  _int(cfg, 'embedding_size', None)
  _int_list(cfg, 'conv_features', None, non_empty=True)
  _int(cfg, 'attention_size', 0, lo=0, note=" (0: the decoder's size)")
  _choice(cfg, 'score', 'additive', attention_lib.SCORES)
  _choice(cfg, 'placement', 'bahdanau', attention_lib.PLACEMENTS)
  _choice(cfg, 'activation', 'tanh', sorted(ACTIVATIONS))
  for field in ('forget_bias', 'input_bias', 'output_bias'):
    _finite_number(cfg, field, 0.0)
  for field in ('bridge', 'use_peepholes', 'reset_after', 'layer_norm'):
    _bool(cfg, field)
  for field in (f for f in CELL_REGULARIZERS if f.endswith('_rate')):
    _finite_number(cfg, field, 0.0, 0.0, 1.0)
  memory = cfg.conv_features[-1]
  if cfg.get('score', 'additive') == 'dot' and memory != cfg.hidden_size:
    raise ValueError(f"model.score='dot' needs the memory ({memory}, the last of "
                     f'model.conv_features) and the decoder state ({cfg.hidden_size}) of one size')


def _sequence_readout(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  return SequenceReadout(
      cell_fn=CELLS[cfg.cell](cfg), num_outputs=data_info.num_outputs,
      num_layers=cfg.get('num_layers', 1),
      input_mode='one_hot' if data_info.vocab_size else 'real', vocab_size=data_info.vocab_size,
      readout=cfg.readout, dropout_rate=cfg.get('dropout_rate', 0.0), unroll=cfg.get('unroll', 1),
      **{field: cfg.get(field, 0.0) for field in RNN_REGULARIZERS})


def _validate_sequence_readout(cfg: ml_collections.ConfigDict) -> None:
  _validate_tagger(cfg)
  _choice(cfg, 'readout', None, READOUTS)
  if cfg.get('bidirectional', False):
    raise ValueError('model.bidirectional must be False: sequence_readout reads left to right')
  if cfg.get('embedding_size', 0):
    raise ValueError(f'model.embedding_size must be 0 (tokens are read one-hot), '
                     f'got {cfg.embedding_size!r}')


def _alexnet(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  return AlexNet(num_classes=data_info.num_outputs)


def _plain(value):
  """ConfigDict values to what flax attributes expect (lists -> tuples)."""
  return tuple(_plain(v) for v in value) if isinstance(value, (list, tuple)) else value


def _is_int(value) -> bool:
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _int(cfg: ml_collections.ConfigDict, field: str, default, lo: int = 1, note: str = '') -> None:
  """`cfg.field` (`default` when absent; None: required) is an int >= lo, not a bool."""
  value = cfg.get(field, default)
  if not _is_int(value) or value < lo:
    kind = {0: 'a non-negative integer', 1: 'a positive integer'}.get(lo, f'an integer >= {lo}')
    raise ValueError(f'model.{field} must be {kind}{note}, got {value!r}')


def _finite_number(cfg: ml_collections.ConfigDict, field: str, default, lo: float | None = None,
                   hi: float | None = None) -> None:
  """`cfg.field` is a finite real number (ints too, not bools), in [lo, hi) when given."""
  value = cfg.get(field, default)
  ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
  if not ok or (lo is not None and value < lo) or (hi is not None and value >= hi):
    bounds = f' in [{lo:g}, {hi:g})' if lo is not None else ''
    raise ValueError(f'model.{field} must be a finite number{bounds}, got {value!r}')


def _bool(cfg: ml_collections.ConfigDict, field: str) -> None:
  value = cfg.get(field, False)
  if not isinstance(value, bool):
    raise ValueError(f'model.{field} must be True or False, got {value!r}')


def _choice(cfg: ml_collections.ConfigDict, field: str, default, valid) -> None:
  value = cfg.get(field, default)
  if not (value is None or isinstance(value, str)) or value not in valid:
    raise ValueError(f'model.{field}={value!r}; valid: {list(valid)}')


def _int_list(cfg: ml_collections.ConfigDict, field: str, default, non_empty: bool = False) -> None:
  """`cfg.field` is a list or tuple of positive ints."""
  value = cfg.get(field, default)
  if (not isinstance(value, (list, tuple)) or (non_empty and not value)
      or not all(_is_int(v) and v > 0 for v in value)):
    kind = 'a non-empty list' if non_empty else 'a list'
    raise ValueError(f'model.{field} must be {kind} of positive integers, got {value!r}')


def _window(cfg: ml_collections.ConfigDict, field: str, default, rank: int | None,
            allow_one: bool = False, allow_none: bool = False) -> None:
  """`cfg.field` is a positive int (every axis) or a list/tuple of positive ints, one per
  spatial axis (`rank` of them when given; a single one too when `allow_one`)."""
  value = cfg.get(field, default)
  if (value is None and allow_none) or (_is_int(value) and value > 0):
    return
  lengths = (rank, 1) if allow_one else (rank,)
  positive = isinstance(value, (list, tuple)) and value and all(_is_int(v) and v > 0 for v in value)
  if not positive or (rank is not None and len(value) not in lengths):
    axes = 'a non-empty list of them' if rank is None else f'{rank} of them'
    none = ' or None' if allow_none else ''
    raise ValueError(f'model.{field} must be a positive integer or {axes} (one per spatial axis)'
                     f'{none}, got {value!r}')


def _padding(cfg: ml_collections.ConfigDict, field: str, default, rank: int, modes) -> None:
  """`cfg.field` is a padding `normalize_padding` accepts for `rank` axes, with no bools."""
  value = cfg.get(field, default)
  ok = not _has_bool(value)
  if ok:
    try:
      normalize_padding(value, rank, modes=modes)
    except (ValueError, TypeError):
      ok = False
  if not ok:
    raise ValueError(f'model.{field} must be one of {list(modes)}, a non-negative integer, or '
                     f'{rank} entries each an integer or a (low, high) pair, got {value!r}')


def _has_bool(value) -> bool:
  if isinstance(value, (list, tuple)):
    return any(_has_bool(v) for v in value)
  return isinstance(value, bool)


# name -> (validate(model_cfg), build(model_cfg, data_info))
MODELS: dict[str, tuple[Callable, Callable]] = {
    'recurrent_tagger': (_validate_tagger, _tagger),
    'recurrent_lm': (_validate_language_model, _language_model),
    'recurrent_seq2seq': (_validate_seq2seq, _seq2seq),
    'transformer_seq2seq': (_validate_transformer, _transformer),
    'image_cnn': (_validate_image_cnn, _image_cnn),
    'text_cnn': (_validate_text_cnn, _text_cnn),
    'alexnet': (lambda cfg: None, _alexnet),
    'image_to_sequence': (_validate_image_to_sequence, _image_to_sequence),
    'sequence_tagger': (_validate_sequence_tagger, _sequence_tagger),
    'recurrent_classifier': (_validate_recurrent_classifier, _recurrent_classifier),
    'sequence_readout': (_validate_sequence_readout, _sequence_readout),
}


def validate(cfg: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first bad `model.*` field."""
  _choice(cfg, 'name', None, sorted(MODELS))
  _finite_number(cfg, 'dropout_rate', 0.0, 0.0, 1.0)
  MODELS[cfg.name][0](cfg)


def from_config(cfg: ml_collections.ConfigDict, data_info) -> nn.Module:
  validate(cfg)
  return MODELS[cfg.name][1](cfg, data_info)
