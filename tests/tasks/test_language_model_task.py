"""The language-model task end to end: training with a carried state, resuming, evaluating a
file, generating from the command line, TFDS, and the errors a user meets."""

import json
import math
import os
import pathlib
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from configs import char_lm
from seqnets.decoding import generation
from seqnets.models import factory as model_factory
from seqnets.tasks import language_model
from seqnets.training import loop, saved_run

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORDS = ['the', 'cat', 'sat', 'on', 'a', 'mat', 'dog', 'ran', 'to', 'it']


def write_text(path, seed=0, lines=200):
  rng = np.random.default_rng(seed)
  text = ''.join(' '.join(rng.choice(WORDS, rng.integers(3, 8))) + '.\n' for _ in range(lines))
  path.write_text(text, encoding='utf-8')
  return path


def smoke_config(path, **data):
  config = char_lm.get_config('smoke')
  config.data.path = str(path)
  config.data.update(data)
  return config


@pytest.fixture(scope='module')
def char_run(tmp_path_factory):
  root = tmp_path_factory.mktemp('lm')
  text = write_text(root / 'text.txt')
  workdir = root / 'run'
  return workdir, loop.train_and_evaluate(smoke_config(text), workdir), text


def test_training_reports_the_language_model_metrics(char_run):
  workdir, result, _ = char_run
  final = result.final[0]
  nats = final['eval/validation/nats_per_token']
  assert nats == final['eval/validation/loss'] and 0 < nats < math.log(40)
  assert final['eval/validation/perplexity'] == pytest.approx(math.exp(nats))
  assert final['eval/validation/bits_per_char'] == pytest.approx(nats / math.log(2))
  assert (workdir / 'curves.png').stat().st_size > 0
  saved = json.loads((workdir / 'preprocessing.json').read_text())
  assert saved['vocabulary'][:4] == ['<pad>', '<unk>', '<s>', '</s>']
  assert '\n' in saved['vocabulary'] and saved['info']['unit'] == 'char'
  carry = result.state.model_state['carry']['state']
  assert [leaf.shape for leaf in jax.tree_util.tree_leaves(carry)] == [(1, 8, 8)] * 2  # [S, B, H]


def test_resumed_run_equals_uninterrupted_with_the_carried_state(char_run, tmp_path):
  _, straight, text = char_run
  def sigterm_at_step_3(step, state):
    if step == 3:
      os.kill(os.getpid(), signal.SIGTERM)

  stopped = loop.train_and_evaluate(smoke_config(text), tmp_path, hooks=[sigterm_at_step_3])
  assert stopped.interrupted and stopped.step == 3
  resumed = loop.train_and_evaluate(smoke_config(text), tmp_path)
  for a, b in zip(jax.tree_util.tree_leaves((straight.state.params, straight.state.model_state)),
                  jax.tree_util.tree_leaves((resumed.state.params, resumed.state.model_state))):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_full_bptt_windows_and_update_steps_reach_the_model(tmp_path):
  text = write_text(tmp_path / 'text.txt')
  batch = next(language_model.build_data(smoke_config(text, carry_state=False).data)
               .train_batches(0, 0))
  assert 'reset' not in batch and batch['weights'].all()
  config = smoke_config(text, update_steps=4)
  data = language_model.build_data(config.data)
  assert data.info.carry_steps == 4
  assert model_factory.from_config(config.model, data.info).carry_steps == 4


def test_word_level_vocabulary_and_unknown_words(tmp_path):
  text = write_text(tmp_path / 'text.txt')
  config = smoke_config(text, level='word', min_count=1, max_vocab_size=10)
  data = language_model.build_data(config.data)
  vocab = data.preprocessing.vocabulary
  assert vocab[:4] == ('<pad>', '<unk>', '<s>', '</s>') and len(vocab) == 10
  rows = data.eval_sets['validation']
  assert (rows['targets'][rows['weights'] > 0] == 1).any()          # rare words are <unk>


def run_cli(*args):
  env = dict(os.environ, XLA_FLAGS=os.environ['SEQNETS_TEST_XLA_FLAGS'], JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=300)


def test_evaluate_and_generate_from_the_command_line(char_run, tmp_path):
  workdir, _, text = char_run
  other = write_text(tmp_path / 'other.txt', seed=5, lines=20)
  # What experiments.evaluate --eval_file prints, bare names of the 'language_model' evaluator.
  results = saved_run.load_run(workdir).evaluate(other)
  scores = {k.split('/')[-1]: v for k, v in results.items() if k.startswith('eval/language_model/')}
  assert {'nats_per_token', 'perplexity', 'bits_per_char'} <= set(scores)
  assert scores['perplexity'] == pytest.approx(math.exp(scores['nats_per_token']))

  args = ('experiments.generate', f'--workdir={workdir}', '--prime=the cat', '--length=40',
          '--temperature=0.8', '--seed=3')
  first = run_cli(*args, '--num_samples=2')
  assert first.returncode == 0, first.stderr[-2000:]
  lines = first.stdout.split('----- sample ')
  samples = [part.split('-----\n', 1)[1][:-1] for part in lines[1:]]   # the text, then '\n'
  assert len(samples) == 2 and samples[0] != samples[1]
  for sample in samples:
    assert sample.startswith('the cat') and len(sample) == len('the cat') + 40
    assert set(sample) <= set(text.read_text())
  # The same seed gives the same text, here and through the library.
  assert generation.generate_text(saved_run.load_run(workdir), 'the cat', 40, temperature=0.8,
                                  seed=3, num_samples=2) == samples
  bad = run_cli('experiments.generate', f'--workdir={tmp_path}', '--length=5')
  assert bad.returncode == 2 and 'config.json' in bad.stderr


def test_generate_text_library_function(char_run):
  run = saved_run.load_run(char_run[0])
  texts = generation.generate_text(run, '', 25, temperature=0.0, num_samples=2)
  assert texts[0] == texts[1] and len(texts[0]) == 25             # empty prime: <s>


def test_errors_name_the_file_and_field(tmp_path):
  bad = tmp_path / 'bad.txt'
  bad.write_bytes(b'good text\nbad \xff byte\n')
  with pytest.raises(ValueError, match=r'bad.txt:2: invalid UTF-8 at byte 14'):
    language_model.build_data(smoke_config(bad).data)
  small = write_text(tmp_path / 'small.txt', lines=2)
  with pytest.raises(ValueError, match='too few for 8 streams'):
    language_model.build_data(smoke_config(small).data)
  for field, value, message in [('level', 'byte', 'data.level'),
                                ('validation_fraction', 1.5, 'data.validation_fraction'),
                                ('bptt', 0, 'data.bptt'),
                                ('update_steps', 99, 'data.update_steps=99 must be <= data.bptt')]:
    with pytest.raises(ValueError, match=message):
      language_model.validate(smoke_config(small, **{field: value}).data)


def test_tiny_shakespeare_from_tfds_with_mock_data():
  config = smoke_config('', source='tfds', batch_size=2, bptt=4)
  with tfds.testing.mock_data(num_examples=1, policy=tfds.testing.MockPolicy.USE_CODE):
    train, validation = language_model.read_texts(config.data)
  assert isinstance(train, str) and isinstance(validation, str) and train


def test_documents_start_from_bos_and_are_scored_alone(tmp_path):
  rng = np.random.default_rng(0)
  docs = [' '.join(rng.choice(WORDS, rng.integers(5, 40))) + '.' for _ in range(40)]
  text = tmp_path / 'docs.txt'
  text.write_text('\n\n\n'.join(docs), encoding='utf-8')
  config = smoke_config(text, document_separator='\n\n\n')
  data = language_model.build_data(config.data)
  first = next(data.train_batches(0, 0))
  assert first['reset'].all() and (first['inputs'][:, 0] == 2).all()        # <s>, zero state
  rows = data.eval_sets['validation']
  cut = int(len(text.read_text()) * 0.9)
  documents = len([d for d in text.read_text()[cut:].split('\n\n\n') if d.strip()])
  assert (rows['inputs'][:, 0] == 2).sum() == documents and (rows['inputs'] == 2).sum() == documents
  workdir = tmp_path / 'run'
  loop.train_and_evaluate(config, workdir)
  run = saved_run.load_run(workdir)
  scores = []
  for name, part in [('both', docs[0] + '\n\n\n' + docs[1]), ('a', docs[0]), ('b', docs[1])]:
    (tmp_path / name).write_text(part, encoding='utf-8')
    scores.append(run.evaluate(tmp_path / name)['eval/language_model/nats_per_token'])
  both, a, b = scores
  n_a, n_b = len(docs[0]), len(docs[1])            # every character is predicted, the first from <s>
  assert both == pytest.approx((a * n_a + b * n_b) / (n_a + n_b), rel=1e-5)
  with pytest.raises(ValueError, match='data.update_steps=4 must be 0 or data.bptt=8'):
    language_model.validate(smoke_config(text, document_separator='\n\n\n', update_steps=4).data)


def test_the_text_of_tagging_and_classification_files(tmp_path, tagged_files):
  """file_format 'conll' | 'tsv': a task's sentences, one per line, for a language model
  whose vocabulary then matches the task's (word_split as the task splits)."""
  train, _ = tagged_files
  config = smoke_config(train, level='word', file_format='conll', word_split='whitespace',
                        validation_fraction=0.2)
  text = language_model.read_file(config.data, train)
  from seqnets.data import conll
  sentences = conll.read_conll(train)
  assert text.splitlines() == [' '.join(s.tokens) for s in sentences]
  tokens = language_model._tokenize(config.data, 'Éva  met Smith-Jones .\n')
  assert tokens == ['Éva', 'met', 'Smith-Jones', '.', '</s>']
  config.data.word_split = 'punctuation'
  assert language_model._tokenize(config.data, "Don't go!\n") == ['Don\'t', 'go', '!', '</s>']
  tsv = tmp_path / 'train.tsv'
  tsv.write_text('sentence\tlabel\na fine film \t1\nso dull \t0\n', encoding='utf-8')
  config.data.file_format = 'tsv'
  assert language_model.read_file(config.data, tsv) == 'a fine film\nso dull\n'
  with pytest.raises(ValueError, match='data.file_format'):
    language_model.validate(smoke_config(train, file_format='xml').data)
