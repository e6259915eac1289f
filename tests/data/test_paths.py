"""Data names relative to the data root ($SEQNETS_DATA_DIR, else ~/seqnets_data): which names
are taken as written, the error for a missing file, the configs' names, and a task reading
its files through the root while its config keeps the relative names."""

import os
import pathlib
import re

import pytest

from configs import char_lm, multi30k, sst2_rnn, task_lm, text_cnn, udpos, wnut17
from seqnets.data import paths, text_file
from seqnets.tasks import tagging


@pytest.fixture
def root(tmp_path, monkeypatch):
  """A data root holding sst2/dev.tsv, and a working directory outside it."""
  data = tmp_path / 'data'
  (data / 'sst2').mkdir(parents=True)
  (data / 'sst2' / 'dev.tsv').write_text('sentence\tlabel\ngood .\t1\n', encoding='utf-8')
  monkeypatch.setenv(paths.ENV_VAR, str(data))
  work = tmp_path / 'work'
  work.mkdir()
  monkeypatch.chdir(work)
  return data


def test_the_root_is_the_variable_else_home_seqnets_data(tmp_path, monkeypatch):
  monkeypatch.setenv('HOME', str(tmp_path))
  monkeypatch.delenv(paths.ENV_VAR, raising=False)
  assert paths.data_root() == tmp_path / 'seqnets_data'
  monkeypatch.setenv(paths.ENV_VAR, '')                     # empty: unset
  assert paths.data_root() == tmp_path / 'seqnets_data'
  monkeypatch.setenv(paths.ENV_VAR, '~/corpora')
  assert paths.data_root() == tmp_path / 'corpora'
  assert paths.data_path('sst2/dev.tsv') == tmp_path / 'corpora' / 'sst2' / 'dev.tsv'


def test_a_relative_name_is_a_file_under_the_root(root):
  assert paths.resolve('sst2/dev.tsv') == root / 'sst2' / 'dev.tsv'
  assert text_file.read_text('sst2/dev.tsv') == 'sentence\tlabel\ngood .\t1\n'


@pytest.mark.parametrize('written', ['./sst2/dev.tsv', '../data/sst2/dev.tsv', 'sst2/dev.tsv'])
def test_names_that_exist_or_start_with_dots_are_taken_as_written(root, written):
  local = pathlib.Path('sst2')
  local.mkdir()
  (local / 'dev.tsv').write_text('sentence\tlabel\nbad .\t0\n', encoding='utf-8')
  assert paths.is_as_written(written)
  assert paths.resolve(written) == pathlib.Path(written)
  expected = 'good' if written.startswith('../') else 'bad'
  assert expected in text_file.read_text(written)


def test_absolute_and_home_paths_are_taken_as_written(root, tmp_path, monkeypatch):
  absolute = root / 'sst2' / 'dev.tsv'
  assert paths.resolve(str(absolute)) == absolute
  monkeypatch.setenv('HOME', str(root))
  assert paths.resolve('~/sst2/dev.tsv') == absolute
  missing = tmp_path / 'nowhere' / 'x.tsv'                 # as written even when missing
  assert paths.resolve(str(missing)) == missing


def test_an_older_runs_dotted_path_still_reads(root):
  # A config.json written before the data root named '../shared/data/...' from the repo.
  old = os.path.relpath(root / 'sst2' / 'dev.tsv')
  assert old.startswith('../')
  assert 'good' in text_file.read_text(old)


def test_a_missing_file_under_the_root_says_file_root_variable_and_source(root):
  with pytest.raises(FileNotFoundError) as info:
    text_file.read_text('sst2/train.tsv')
  message = str(info.value)
  assert '\n' not in message
  assert message.startswith(f'data file sst2/train.tsv is missing under the data root {root} ')
  assert str(root / 'sst2' / 'train.tsv') in message
  assert f'$SEQNETS_DATA_DIR (here {root})' in message
  assert 'eyalbd2/Reproducing-AutoPrompt' in message and 'glue/sst2' in message
  assert 'docs/data.md' in message


def test_a_missing_file_under_the_default_root(tmp_path, monkeypatch):
  monkeypatch.setenv('HOME', str(tmp_path))
  monkeypatch.delenv(paths.ENV_VAR, raising=False)
  monkeypatch.chdir(tmp_path)
  with pytest.raises(FileNotFoundError, match=re.escape(
      f'data file wnut17/emerging.dev.conll is missing under the data root '
      f'{tmp_path / "seqnets_data"} ')) as info:
    text_file.read_text('wnut17/emerging.dev.conll')
  assert '$SEQNETS_DATA_DIR (unset here, so ~/seqnets_data)' in str(info.value)
  assert 'leondz/emerging_entities_17' in str(info.value)


def test_a_missing_file_of_an_unknown_dataset(root):
  with pytest.raises(FileNotFoundError, match=r"'mine' is none of the datasets .*tinyshakespeare"):
    text_file.read_text('mine/train.txt')


def test_a_missing_file_taken_as_written_says_how_root_names_are_written(root):
  with pytest.raises(FileNotFoundError, match=r'^\.\./shared/data/sst2/dev\.tsv: no such file '
                                              r'\(taken as written; .*SEQNETS_DATA_DIR'):
    text_file.read_text('../shared/data/sst2/dev.tsv')


CONFIGS = {'char_lm': char_lm.get_config(), 'text_cnn': text_cnn.get_config(),
           'sst2_rnn': sst2_rnn.get_config(), 'udpos': udpos.get_config(),
           'wnut17': wnut17.get_config(), 'multi30k': multi30k.get_config(),
           'task_lm:wnut17': task_lm.get_config('wnut17'), 'task_lm:sst2': task_lm.get_config('sst2')}
DATA_FIELDS = ('path', 'eval_path', 'train_path', 'train_source', 'train_target', 'eval_source',
               'eval_target')
NAMES = sorted({(config, cfg.data[field]) for config, cfg in CONFIGS.items()
                for field in DATA_FIELDS if cfg.data.get(field)})


@pytest.mark.parametrize('config,name', NAMES)
def test_the_configs_name_their_data_relative_to_the_root(config, name):
  del config
  assert not pathlib.PurePath(name).is_absolute() and not name.startswith('.')
  assert pathlib.PurePath(name).parts[0] in paths.DATASETS


@pytest.mark.parametrize('config,name', NAMES)
def test_the_data_root_holds_the_configs_files(config, name):
  del config
  dataset = pathlib.PurePath(name).parts[0]
  if not (paths.data_root() / dataset).is_dir():
    pytest.skip(f'{paths.data_root()} has no {dataset}/ ($SEQNETS_DATA_DIR)')
  assert paths.data_path(name).is_file()


def test_a_task_reads_through_the_root_and_its_config_keeps_the_names(root, tagged_files):
  for path in tagged_files:
    (root / 'mine').mkdir(exist_ok=True)
    path.rename(root / 'mine' / path.name)
  cfg = wnut17.get_config('smoke')
  cfg.data.update(train_path='mine/train.conll', eval_path='mine/dev.conll')
  data = tagging.build_data(cfg.data)
  assert data.eval_sets['dev']['lengths'].shape[0] == 12
  assert (cfg.data.train_path, cfg.data.eval_path) == ('mine/train.conll', 'mine/dev.conll')
