"""Data files named relative to one data root.

A config names its data relative to the data root (`train_path='sst2/train.tsv'`). The
root is the directory in the environment variable `SEQNETS_DATA_DIR`, or `~/seqnets_data`
when it is unset or empty. A name is resolved when its file is read, not when the config is
loaded: every data file of the tasks is read through `seqnets.data.text_file.read_text`,
which calls `resolve`. So a run's config.json keeps the name as written, and the file it
gives depends on the root of the machine that reads it, not on where the config was loaded.

Synopsis:
  data_root()                         # $SEQNETS_DATA_DIR, or ~/seqnets_data
  data_path('sst2/train.tsv')         # data_root() / 'sst2/train.tsv' (not checked)
  resolve('sst2/train.tsv')           # the same, or FileNotFoundError saying what is missing
  resolve('my_train.tsv')             # ./my_train.tsv when it exists
  resolve('../corpora/x.tsv')         # as written (relative to the working directory)

`resolve` uses a name as written when it is absolute (after `~` is expanded), starts with
`./` or `../`, or names something that exists relative to the working directory; any other
name is a file under the data root. docs/data.md says where each dataset comes from and
how to lay it out under the root.
"""

from __future__ import annotations

import os
import pathlib

from absl import logging

ENV_VAR = 'SEQNETS_DATA_DIR'
DEFAULT_ROOT = '~/seqnets_data'

# The datasets the configs name (the first folder of a data name): what each is, its licence
# and where it comes from. docs/data.md has the same, with the steps to put each in place.
DATASETS = {
    'tinyshakespeare': 'Tiny Shakespeare (public domain): input.txt of GitHub '
                       'karpathy/char-rnn, data/tinyshakespeare/ (or TFDS tiny_shakespeare: '
                       '--config.data.source=tfds)',
    'sst2': 'SST-2 sentiment (research use, no explicit licence): GLUE SST-2 train_full.tsv '
            '(saved as train.tsv) and dev.tsv of GitHub eyalbd2/Reproducing-AutoPrompt, '
            'glue_data/SST-2/ (or TFDS glue/sst2: --config.data.source=tfds)',
    'wnut17': 'WNUT-17 emerging entities (CC BY 4.0): wnut17train.conll and emerging.dev.conll '
              'of GitHub leondz/emerging_entities_17',
    'ud_english_ewt': 'Universal Dependencies English EWT r2.16 (CC BY-SA 4.0): '
                      'en_ewt-ud-train.conllu (gzipped: en_ewt-ud-train.conllu.gz) and '
                      'en_ewt-ud-dev.conllu of GitHub UniversalDependencies/UD_English-EWT',
    'multi30k': 'Multi30k task 1 (non-commercial research and education): train.de.gz, '
                'train.en.gz, val.de.gz, val.en.gz of GitHub multi30k/dataset, data/task1/raw/',
    'glove': 'GloVe word vectors (Public Domain Dedication and License v1.0): glove.6B.zip '
             '(glove.6B.{50,100,200,300}d.txt, lowercased) or glove.840B.300d.zip (cased) of '
             'nlp.stanford.edu/projects/glove/, unzipped',
    'word2vec': 'the word2vec vectors of Google News (300-d, 3 million words and phrases; no '
                'licence stated with the file): GoogleNews-vectors-negative300.bin.gz of the '
                'word2vec project, code.google.com/archive/p/word2vec/ (or name any word2vec, '
                'GloVe or fastText file of that dimension: '
                '--config.model.pretrained_embeddings=PATH)',
}


def data_root() -> pathlib.Path:
  """`$SEQNETS_DATA_DIR` (`~` expanded), or `~/seqnets_data` when it is unset or empty."""
  return pathlib.Path(os.environ.get(ENV_VAR) or DEFAULT_ROOT).expanduser()


def data_path(name: str | os.PathLike) -> pathlib.Path:
  """`name` under the data root; whether it exists is not checked."""
  return data_root() / name


def is_as_written(name: str | os.PathLike) -> bool:
  """Whether `resolve` takes `name` as written: absolute (after `~` is expanded), starting
  with `./` or `../` (or `.`, `..`), or existing relative to the working directory."""
  text = os.fspath(name)
  first = text.replace(os.sep, '/').split('/', 1)[0]
  path = pathlib.Path(text).expanduser()
  return path.is_absolute() or first in ('.', '..') or path.exists()


def resolve(name: str | os.PathLike) -> pathlib.Path:
  """The file `name` names: as written (`is_as_written`), or under the data root.

  Raises FileNotFoundError, for a name that is not taken as written and is not under the
  data root, saying which file is missing under which root, that `SEQNETS_DATA_DIR` sets
  the root, and where the dataset comes from. (A name taken as written is returned even
  when nothing is there: the reader says it is missing.)
  """
  if is_as_written(name):
    return pathlib.Path(name).expanduser()
  path = data_path(name)
  if not path.exists():
    raise FileNotFoundError(missing_message(name))
  logging.info('data file %s: %s', os.fspath(name), path)
  return path


def missing_message(name: str | os.PathLike) -> str:
  """One line: `name` is missing under the root, what sets the root, where the data comes from."""
  root = _absolute(data_root())
  setting = os.environ.get(ENV_VAR)
  where = f'here {setting}' if setting else f'unset here, so {DEFAULT_ROOT}'
  dataset = pathlib.PurePath(name).parts[0]
  origin = (f'{dataset}/ is {DATASETS[dataset]}' if dataset in DATASETS else
            f'{dataset!r} is none of the datasets the configs use ({", ".join(DATASETS)})')
  return (f'data file {os.fspath(name)} is missing under the data root {root} (no '
          f'{_absolute(data_root() / name)}). The root is ${ENV_VAR} ({where}): set it to the '
          f'folder that holds the datasets. {origin}. docs/data.md says where each dataset comes '
          f'from and how to lay it out under the root.')


def written_path_missing_message(path: str | os.PathLike) -> str:
  """One line: `path`, taken as written, is missing (and how a name under the root is written)."""
  return (f'{os.fspath(path)}: no such file (taken as written; a name that is not absolute and '
          f'does not start with ./ or ../, e.g. sst2/train.tsv, is a file under the data root, '
          f'${ENV_VAR})')


def _absolute(path: pathlib.Path) -> str:
  return str(path.absolute())
