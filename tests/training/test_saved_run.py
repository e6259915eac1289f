"""saved_run.load_run: a finished run of each task, reloaded from its workdir alone."""

import json
import shutil

import jax
import numpy as np
import pytest

from configs import anbn, digits_cnn, text_cnn
from seqnets.data import digits
from seqnets.data import formal_languages
from seqnets.models import ImageCNN, SequenceReadout
from seqnets.models.text_cnn import TextCNN
from seqnets.tasks import base
from seqnets.training import loop, saved_run

WORDS = ['good', 'bad', 'film', 'plot', 'great', 'dull']


def write_tsv(path, rows, seed, labels=(0, 1)):
  rng = np.random.default_rng(seed)
  lines = ['sentence\tlabel']
  for _ in range(rows):
    lines.append(' '.join(rng.choice(WORDS, size=rng.integers(1, 9))) + f'\t{rng.choice(labels)}')
  path.write_text('\n'.join(lines) + '\n')


def text_config(tmp_path):
  write_tsv(tmp_path / 'train.tsv', 40, seed=0)
  write_tsv(tmp_path / 'dev.tsv', 10, seed=1)
  config = text_cnn.get_config('smoke')
  config.data.update(train_path=str(tmp_path / 'train.tsv'), eval_path=str(tmp_path / 'dev.tsv'))
  return config


def anbn_config(tmp_path):
  return anbn.get_config('smoke')


def digits_config(tmp_path):
  return digits_cnn.get_config('smoke')


CONFIGS = {'anbn': anbn_config, 'digits': digits_config, 'text': text_config}
MODEL_CLASSES = {'anbn': SequenceReadout, 'digits': ImageCNN, 'text': TextCNN}


@pytest.fixture(scope='module', params=sorted(CONFIGS))
def finished(request, tmp_path_factory):
  """`(name, workdir, config, result)` of a finished smoke run (the data files beside it)."""
  tmp_path = tmp_path_factory.mktemp(request.param)
  config = CONFIGS[request.param](tmp_path)
  result = loop.train_and_evaluate(config, tmp_path / 'run')
  return request.param, tmp_path / 'run', config, result


def some_batch(name, run, workdir):
  """Evaluation examples of the run's task, encoded by the saved run."""
  if name == 'anbn':
    return run.encode([1, 2, 3, 7, 15])
  if name == 'digits':
    _, test = digits.load_split(0.2, 0)
    return run.encode({'inputs': test['images'][:20], 'labels': test['labels'][:20]})
  return run.read_file(workdir.parent / 'dev.tsv')


def numbers_close(got, want, where=''):
  """Equal structure, numbers to 1e-6."""
  if isinstance(want, dict):
    assert isinstance(got, dict) and set(got) == set(want), where
    for key in want:
      numbers_close(got[key], want[key], f'{where}/{key}')
  elif isinstance(want, (list, tuple)):
    assert isinstance(got, (list, tuple)) and len(got) == len(want), where
    for index, (g, w) in enumerate(zip(got, want)):
      numbers_close(g, w, f'{where}[{index}]')
  else:
    assert got == pytest.approx(want, rel=1e-6, abs=1e-6), where


def test_load_run_gives_config_model_preprocessing_and_params(finished):
  name, workdir, config, result = finished
  run = saved_run.load_run(workdir)
  assert run.config.to_dict() == json.loads(config.to_json())
  assert isinstance(run.model, MODEL_CLASSES[name]) and run.task.name == config.task
  assert run.step == config.train.num_train_steps and run.num_seeds == 1
  saved = json.loads((workdir / base.PREPROCESSING_FILE).read_text())
  assert run.preprocessing == base.Preprocessing.load(workdir)
  assert run.preprocessing == run.task.build_data(config.data).preprocessing
  if name == 'anbn':
    assert saved['vocabulary'] == [] and saved['labels'] == []
  elif name == 'digits':
    assert saved['vocabulary'] == [] and saved['labels'] == list(range(10))
  else:
    assert saved['vocabulary'][:2] == ['<pad>', '<unk>'] and set(saved['vocabulary'][2:]) == set(WORDS)
    assert saved['labels'] == [0, 1] and saved['info']['vocab_size'] == len(WORDS) + 2
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(a, b), run.params,
                         jax.device_get(result.state.params))
  assert run.model_state == {}


def test_apply_reproduces_the_final_state_logits(finished):
  name, workdir, config, result = finished
  run = saved_run.load_run(workdir)
  batch = some_batch(name, run, workdir)
  params = jax.tree_util.tree_map(lambda a: np.asarray(a[0]), result.state.params)
  args, kwargs = run.task.model_inputs(batch)
  want = run.model.apply({'params': params}, *args, **kwargs, deterministic=True)
  got = run.apply(batch)
  assert got.shape == want.shape and len(got) == len(batch['inputs'])
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_evaluate_equals_the_final_evaluation(finished):
  _, workdir, _, result = finished
  want = {k: v for k, v in result.final[0].items() if k.startswith('eval/')}
  numbers_close(saved_run.load_run(workdir).evaluate(), want)


def write_eval_file(name, tmp_path):
  """`(file equal to an evaluation split, that split's evaluator name)`."""
  if name == 'anbn':
    path = tmp_path / 'train_range.txt'
    language = formal_languages.get_language('anbn')
    path.write_text(''.join(language.string_fn(n)[1:-1] + '\n' for n in range(1, 11)))
    return path, 'train_range'
  if name == 'digits':
    _, test = digits.load_split(0.2, 0)
    path = tmp_path / 'test.npz'
    np.savez(path, inputs=test['images'], labels=test['labels'])
    return path, 'test'
  path = tmp_path / 'dev_copy.csv'     # a TSV, whatever its suffix: the config names the format
  shutil.copy(tmp_path / 'dev.tsv', path)
  return path, 'dev'


def test_evaluate_on_a_file_equal_to_an_eval_split(finished):
  name, workdir, _, result = finished
  path, split = write_eval_file(name, workdir.parent)
  got = saved_run.load_run(workdir).evaluate(eval_file=path)
  kind = {'anbn': 'accuracy_by_n'}.get(name, 'classification')       # evaluators named by type
  extra = 'max_correct_n' if kind == 'accuracy_by_n' else 'confusion'
  for metric in ('accuracy', 'loss', extra):
    numbers_close(got[f'eval/{kind}/{metric}'], result.final[0][f'eval/{split}/{metric}'], metric)


def test_a_directory_without_config_json(tmp_path):
  with pytest.raises(FileNotFoundError, match=r'config\.json is missing'):
    saved_run.load_run(tmp_path)


@pytest.mark.parametrize('finished', ['digits'], indirect=True)
def test_a_run_without_a_checkpoint(finished, tmp_path):
  _, workdir, _, _ = finished
  for name in ('config.json', base.PREPROCESSING_FILE):
    shutil.copy(workdir / name, tmp_path / name)
  with pytest.raises(FileNotFoundError, match='no checkpoint'):
    saved_run.load_run(tmp_path)
  assert sorted(p.name for p in tmp_path.iterdir()) == sorted(['config.json', base.PREPROCESSING_FILE])
  (tmp_path / 'checkpoints').mkdir()
  with pytest.raises(FileNotFoundError, match='no checkpoint'):
    saved_run.load_run(tmp_path)


@pytest.mark.parametrize('finished', ['digits', 'text'], indirect=True)   # anbn has no labels
def test_a_label_never_seen_in_training_is_named(finished):
  name, workdir, _, _ = finished
  run = saved_run.load_run(workdir)
  if name == 'digits':
    _, test = digits.load_split(0.2, 0)
    labels = test['labels'][:5].copy()
    labels[3] = 11
    path = workdir.parent / 'unseen.npz'
    np.savez(path, inputs=test['images'][:5], labels=labels)
    message = r'unseen\.npz.*label 11, never seen in training'
  else:
    path = workdir.parent / 'unseen.tsv'
    path.write_text('sentence\tlabel\ngood film\t1\ndull plot\t7\n')
    message = r'unseen\.tsv: line 3: label 7 never appears in the training data'
  with pytest.raises(ValueError, match=message):
    run.evaluate(eval_file=path)


def test_a_file_in_the_wrong_format_names_the_file_and_line(finished):
  name, workdir, _, _ = finished
  run = saved_run.load_run(workdir)
  path = workdir.parent / 'wrong.csv'
  if name == 'text':
    path.write_text('sentence,label\ngood film,1\n')
    message = r"wrong\.csv:1: header \['sentence,label'\] has no column 'sentence'"
  elif name == 'anbn':
    path.write_text('aabb\naab\n')
    message = r"wrong\.csv:2: 'aab' is not a string of"
  else:
    path.write_text('inputs,labels\n0,1\n')
    message = r'wrong\.csv: not a readable \.npz file'
  with pytest.raises(ValueError, match=message):
    run.evaluate(eval_file=path)


def test_flat_numbers_keeps_numbers_and_names_them_bare_or_by_evaluator():
  results = {'eval/test/accuracy': 0.5, 'eval/test/loss': 1, 'eval/test/learned': True,
             'eval/test/accuracy_by_n': {'1': 1.0}, 'eval/dev/loss': 2.0}
  assert saved_run.flat_numbers(results, bare=False) == {
      'test/accuracy': 0.5, 'test/loss': 1, 'dev/loss': 2.0}
  assert saved_run.flat_numbers({'eval/file/accuracy': 0.25}, bare=True) == {'accuracy': 0.25}
