"""`config.model` -> a flax module: a name picks the class, its fields are the keys.

  config.model = dict(name='recurrent_lm', embedding_size=128, num_layers=2,
                      cell=dict(name='lstm', hidden_size=512))
  model = factory.from_config(config.model, data.info)

`name` picks a class in `MODELS`; every other key is one of that class's fields, with the
class's default where the config has none (`config_fields` states the type and range
rules, and `python -m experiments.main --helpfull` is no help here: `describe(name)` lists
a model's keys with their defaults). What the data says (vocabulary sizes, the number of
outputs) is never a config key: `DataInfo` gives it. A recurrent model's cell is one
nested entry, `model.cell` (see `seqnets.models.cells`). A key the model does not take
is an error naming it and listing the valid ones; so is a bad value. Rules across fields
live in the modules (`__post_init__`), which run here too.

Every model also takes `dtype` (the computation dtype: 'float32', 'bfloat16' or
'float16') and `param_dtype` (the stored parameters'), both 'float32' by default: one
policy for the whole model (`seqnets.models.precision`), its cells included.

Init-time keys: a model with a word embedding (`Model.embeddings`) also takes
`pretrained_embeddings` (a vectors file; seq2seq models: `source_pretrained_embeddings`
and `target_pretrained_embeddings`), `pretrained_lowercase` and `pretrained_oov`. They
are checked here like the fields, but no module reads files: `from_config` leaves them
out, and the training loop writes the vectors into a new run's parameters
(`seqnets.training.pretrained`).

Older configs spelt the cell flat (`model.cell='lstm'`, `model.hidden_size=...` beside
the model's keys); that layout is still read (`flat_cell`), strictly.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Literal

from flax import linen as nn

from seqnets.layers import crf as crf_lib
from seqnets.models import cells
from seqnets.models import config_fields
from seqnets.models import flat_cell
from seqnets.models import precision
from seqnets.models.alexnet import AlexNet
from seqnets.models.cnn import ImageCNN
from seqnets.models.image_to_sequence import ImageToSequence
from seqnets.models.language_model import RecurrentLM
from seqnets.models.recurrent_classifier import RecurrentClassifier
from seqnets.models.seq2seq import RecurrentSeq2Seq
from seqnets.models.sequence_readout import SequenceReadout
from seqnets.models import sequence_tagger
from seqnets.models.sequence_tagger import SequenceTagger
from seqnets.models.text_cnn import TextCNN
from seqnets.models.transformer import TransformerSeq2Seq

CELL = 'cell'
SOURCE, TARGET = 'source', 'target'
PretrainedOov = Literal['random', 'zero']


@dataclasses.dataclass(frozen=True)
class WordEmbedding:
  """A word embedding of a model that pretrained vectors can initialise.

  Attributes:
    key: the init-time key that names its vectors file.
    params: '/'-joined paths of its tables in the parameters; every one the built model
      has gets the vectors (TextCNN's static and trained channels).
    vocabulary: SOURCE (`Preprocessing.vocabulary`) or TARGET (`target_vocabulary`, or
      the vocabulary when that is empty).
    size: the model key of the table's width (it must equal the file's dimension).
  """
  key: str
  params: tuple[str, ...]
  vocabulary: str = SOURCE
  size: str = 'embedding_size'


def _one_embedding(*params: str) -> tuple[WordEmbedding, ...]:
  return (WordEmbedding('pretrained_embeddings', params),)


def _two_embeddings(size: str = 'embedding_size') -> tuple[WordEmbedding, ...]:
  return (WordEmbedding('source_pretrained_embeddings', ('source_embed/embedding',), SOURCE, size),
          WordEmbedding('target_pretrained_embeddings', ('target_embed/embedding',), TARGET, size))


# The keys of every model: its precision policy (`seqnets.models.precision`).
_DTYPE = Literal['float32', 'bfloat16', 'float16']
PRECISION = (config_fields.Field('dtype', _DTYPE, 'float32'),
             config_fields.Field('param_dtype', _DTYPE, 'float32'))

# The init-time keys every model with a word embedding takes besides its files' keys.
PRETRAINED_OPTIONS = (config_fields.Field('pretrained_lowercase', bool, False),
                      config_fields.Field('pretrained_oov', PretrainedOov, 'random'))


@dataclasses.dataclass(frozen=True)
class Model:
  """A model class as a config entry.

  Attributes:
    cls: the flax module.
    from_data: `(data_info, settings) -> fields` that the data fixes (sizes, label names).
    cells: `{field: (settings) -> cell settings}` for fields that take a cell function;
      a model with cells has the `cell` key.
    extra: config keys that are not fields of `cls` (e.g. the decoder's size).
    embeddings: its word embeddings that pretrained vectors can initialise; each adds
      its file's key, and any adds `PRETRAINED_OPTIONS` (the init-time keys).
  """
  cls: type
  from_data: Callable[[Any, dict], dict]
  cells: dict[str, Callable[[dict], dict]] = dataclasses.field(default_factory=dict)
  extra: tuple[config_fields.Field, ...] = ()
  embeddings: tuple[WordEmbedding, ...] = ()

  def fields(self) -> dict[str, config_fields.Field]:
    """Config key -> Field (without `name` and `cell`), the init-time keys included."""
    fixed = (*self.cells,
             *self.from_data(_PLACEHOLDER_INFO, _PlaceholderSettings()))
    found = config_fields.settable_fields(self.cls, exclude=fixed)
    found.update({field.name: field for field in (*self.extra, *PRECISION)})
    found.update(self.init_fields())
    return found

  def init_fields(self) -> dict[str, config_fields.Field]:
    """The init-time keys: read when a run's parameters are created, never by the module."""
    if not self.embeddings:
      return {}
    files = [config_fields.Field(e.key, str, '') for e in self.embeddings]
    return {field.name: field for field in (*files, *PRETRAINED_OPTIONS)}


class _PlaceholderSettings(dict):
  """Settings whose every key reads as a neutral value, to list `from_data`'s fields."""

  def __missing__(self, key):
    return None


@dataclasses.dataclass(frozen=True)
class _PlaceholderInfo:
  vocab_size: int = 1
  num_outputs: int = 1
  pad_id: int = 0
  unit: str = ''
  carry_steps: int = 0
  char_vocab_size: int = 0
  label_names: tuple = ()


_PLACEHOLDER_INFO = _PlaceholderInfo()


def _same_cell(settings: dict) -> dict:
  return settings[CELL]


def _decoder_cell(settings: dict) -> dict:
  return {**settings[CELL], 'hidden_size': settings['decoder_hidden_size']
          or settings[CELL]['hidden_size']}


def _crf_constraints(info, settings: dict) -> dict:
  if info is _PLACEHOLDER_INFO:
    return {'crf_constraints': None}
  if settings.get('crf') and settings.get('crf_constraints') == 'bio':
    return {'crf_constraints': crf_lib.freeze_constraints(
        crf_lib.bio_constraints(info.label_names), info.num_outputs)}
  return {'crf_constraints': None}


MODELS: dict[str, Model] = {
    # The per-step tagger: token inputs, a readout at every step.
    'recurrent_tagger': Model(
        SequenceReadout, lambda info, s: dict(num_outputs=info.num_outputs,
                                              vocab_size=info.vocab_size, input_mode='one_hot',
                                              readout='every_step'),
        cells={'cell_fn': _same_cell}, embeddings=_one_embedding('Embed_0/embedding')),
    'recurrent_lm': Model(
        RecurrentLM, lambda info, s: dict(vocab_size=info.vocab_size,
                                          carry_steps=info.carry_steps),
        cells={'cell_fn': _same_cell}, embeddings=_one_embedding('embed/embedding')),
    'recurrent_seq2seq': Model(
        RecurrentSeq2Seq, lambda info, s: dict(source_vocab_size=info.vocab_size,
                                               target_vocab_size=info.num_outputs),
        cells={'encoder_cell_fn': _same_cell, 'decoder_cell_fn': _decoder_cell},
        extra=(config_fields.Field('decoder_hidden_size', int, 0),),
        embeddings=_two_embeddings()),
    'transformer_seq2seq': Model(
        TransformerSeq2Seq, lambda info, s: dict(source_vocab_size=info.vocab_size,
                                                 target_vocab_size=info.num_outputs),
        embeddings=_two_embeddings('model_size')),
    'image_cnn': Model(ImageCNN, lambda info, s: dict(num_classes=info.num_outputs)),
    'text_cnn': Model(TextCNN, lambda info, s: dict(vocab_size=info.vocab_size,
                                                    num_classes=info.num_outputs),
                      embeddings=_one_embedding('embedding/embedding',
                                                'static_embedding/embedding')),
    'alexnet': Model(AlexNet, lambda info, s: dict(num_classes=info.num_outputs)),
    'image_to_sequence': Model(
        ImageToSequence, lambda info, s: dict(target_vocab_size=info.num_outputs),
        cells={'cell_fn': _same_cell},
        embeddings=(WordEmbedding('target_pretrained_embeddings', ('target_embed/embedding',),
                                  TARGET),)),
    'sequence_tagger': Model(
        SequenceTagger, lambda info, s: dict(vocab_size=info.vocab_size,
                                             num_tags=info.num_outputs,
                                             char_vocab_size=info.char_vocab_size,
                                             **_crf_constraints(info, s)),
        cells={'cell_fn': _same_cell},
        extra=(config_fields.Field('crf_constraints', sequence_tagger.CrfConstraintsName, 'none'),),
        embeddings=_one_embedding('embed/embedding')),
    'recurrent_classifier': Model(
        RecurrentClassifier, lambda info, s: dict(vocab_size=info.vocab_size,
                                                  num_classes=info.num_outputs),
        cells={'cell_fn': _same_cell}, embeddings=_one_embedding('embed/embedding')),
    'sequence_readout': Model(
        SequenceReadout, lambda info, s: dict(
            num_outputs=info.num_outputs, vocab_size=info.vocab_size,
            input_mode='one_hot' if info.vocab_size else 'real'),
        cells={'cell_fn': _same_cell}, embeddings=_one_embedding('Embed_0/embedding')),
}


def describe(name: str) -> dict[str, Any]:
  """The keys of model `name` with their defaults ('required' where there is none)."""
  model = MODELS[name]
  found = {field.name: 'required' if field.required else field.default
           for field in model.fields().values()}
  if model.cells:
    found[CELL] = "dict(name=..., hidden_size=..., ...): see seqnets.models.cells"
  return found


def resolve(model_cfg) -> dict:
  """The complete settings of `config.model`: `name`, every key of that model with its
  value (the module's default where the config has none), and the complete `cell` entry.
  Raises ValueError naming the first bad `model.*` key; the module's own rules across
  fields are checked too."""
  given = dict(model_cfg.items())
  name = given.pop('name', None)
  if name not in MODELS:
    raise ValueError(f'model.name={name!r}; valid: {sorted(MODELS)}')
  model = MODELS[name]
  if flat_cell.is_flat(given):
    given = flat_cell.nest({'name': name, **given}, has_cell=bool(model.cells))
    del given['name']
  settings = {'name': name, **config_fields.resolve(
      'model', f'model {name!r}', model.fields(), given, also=[CELL] if model.cells else [])}
  if model.cells:
    if CELL not in given:
      raise ValueError(f"model.cell is required for model {name!r}, e.g. "
                       f"dict(name='lstm', hidden_size=128)")
    settings[CELL] = cells.resolve(given[CELL])
  for embedding in model.embeddings:
    if settings[embedding.key] and not settings[embedding.size]:
      raise ValueError(f'model.{embedding.key} needs a word embedding: model.{embedding.size} '
                       f'is 0')
  _build(model, settings, _PLACEHOLDER_INFO)    # the module's rules across fields
  return settings


def validate(model_cfg) -> None:
  """Raises ValueError naming the first bad `model.*` key."""
  resolve(model_cfg)


def from_config(model_cfg, data_info) -> nn.Module:
  """The module of `config.model` for data described by `data_info` (a `DataInfo`)."""
  settings = resolve(model_cfg)
  return _build(MODELS[settings['name']], settings, data_info)


def _build(model: Model, settings: dict, data_info) -> nn.Module:
  extra = ({field.name for field in (*model.extra, *PRECISION)} | set(model.init_fields()))
  kwargs = {k: v for k, v in settings.items() if k not in ('name', CELL, *extra)}
  policy = precision.Policy(settings.get('dtype', 'float32'),
                            settings.get('param_dtype', 'float32'))
  for field, cell_settings in model.cells.items():
    kwargs[field] = cells.from_config(cell_settings(settings))
    if not policy.is_default:
      kwargs[field] = functools.partial(kwargs[field], dtype=precision.DTYPES[policy.dtype],
                                        param_dtype=precision.DTYPES[policy.param_dtype])
  kwargs.update(model.from_data(data_info, settings))
  try:
    return precision.with_policy(model.cls, policy)(**kwargs)
  except ValueError as e:
    raise ValueError(f'model.{e}') from None
