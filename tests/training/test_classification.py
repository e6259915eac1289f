"""Image and text classification through train_and_evaluate; freezing and fine-tuning."""

import json

import jax
import numpy as np
import pytest

from configs import digits_cnn, finetune_digits, sst2_rnn, text_cnn
from seqnets.tasks import text_classification
from seqnets.training import loop, validation


def params_of(result):
  return jax.tree_util.tree_map(lambda a: np.asarray(a[0]), result.state.params)


def test_digits_cnn_smoke_writes_accuracy_and_confusion_png(tmp_path):
  result = loop.train_and_evaluate(digits_cnn.get_config('smoke'), tmp_path)
  final = result.final[0]
  assert 0.0 <= final['eval/test/accuracy'] <= 1.0
  confusion = np.asarray(final['eval/test/confusion'])
  assert confusion.shape == (10, 10) and confusion.sum() == 359
  assert np.trace(confusion) / confusion.sum() == pytest.approx(final['eval/test/accuracy'])
  assert (tmp_path / 'confusion_test.png').stat().st_size > 1000


def test_finetuning_freezes_convolutions_bit_identically(tmp_path):
  base = loop.train_and_evaluate(digits_cnn.get_config('smoke'), tmp_path / 'base')
  config = finetune_digits.get_config('smoke')
  config.init_from = str(tmp_path / 'base')
  tuned = loop.train_and_evaluate(config, tmp_path / 'tuned')
  before, after = params_of(base), params_of(tuned)
  for name in before:
    same = jax.tree_util.tree_map(np.array_equal, before[name], after[name])
    if name.startswith('conv'):
      assert all(jax.tree_util.tree_leaves(same)), name      # frozen: bit-identical
    else:
      assert not any(jax.tree_util.tree_leaves(same)), name  # trained: every array moved


def test_freeze_pattern_that_matches_nothing_is_named(tmp_path):
  config = digits_cnn.get_config('smoke')
  config.optim.freeze = ('convolution*',)
  with pytest.raises(validation.ConfigError, match=r"optim.freeze patterns \['convolution\*'\]"):
    loop.train_and_evaluate(config, tmp_path)


def test_init_from_a_missing_run_fails_clearly(tmp_path):
  config = finetune_digits.get_config('smoke')
  config.init_from = str(tmp_path / 'nowhere')
  with pytest.raises(FileNotFoundError, match='no checkpoint'):
    loop.train_and_evaluate(config, tmp_path / 'run')


def write_tsv(tmp_path):
  rng = np.random.default_rng(0)
  words = ['good', 'bad', 'film', 'plot', 'great', 'dull']
  for split, rows in (('train', 40), ('dev', 10)):
    lines = ['sentence\tlabel']
    for _ in range(rows):
      label = int(rng.integers(2))
      lines.append(' '.join(rng.choice(words, size=rng.integers(1, 9))) + f' \t{label}')
    (tmp_path / f'{split}.tsv').write_text('\n'.join(lines) + '\n')
  return dict(train_path=str(tmp_path / 'train.tsv'), eval_path=str(tmp_path / 'dev.tsv'))


def test_text_cnn_smoke_on_a_local_tsv(tmp_path):
  config = text_cnn.get_config('smoke')
  config.data.update(write_tsv(tmp_path))
  result = loop.train_and_evaluate(config, tmp_path / 'run')
  assert set(result.final[0]) >= {'eval/dev/accuracy', 'eval/dev/loss', 'eval/dev/confusion'}
  assert json.loads((tmp_path / 'run' / 'config.json').read_text())['model']['name'] == 'text_cnn'


def test_bucketed_batches_for_the_recurrent_classifier(tmp_path):
  config = sst2_rnn.get_config('smoke')
  config.data.update(write_tsv(tmp_path), bucket_width=4)
  data = text_classification.build_data(config.data)
  widths = set()
  for step in range(30):
    batch = next(data.train_batches(0, step))
    real = batch['valid'] > 0
    width = batch['inputs'].shape[1]
    widths.add(width)
    assert len(real) == 4 and width % 4 == 0 and batch['lengths'][real].max() < width
    assert np.all(batch['lengths'][~real] == 0) and np.all(batch['inputs'][~real] == 0)
  assert len(widths) > 1 and 0 < data.summary['train/padding_fraction'] < 0.5


def test_recurrent_classifier_trains_through_the_harness(tmp_path):
  config = sst2_rnn.get_config('smoke')
  config.data.update(write_tsv(tmp_path), bucket_width=16)       # one batch width
  result = loop.train_and_evaluate(config, tmp_path / 'run')
  final = result.final[0]
  assert 0 <= final['eval/dev/accuracy'] <= 1 and np.asarray(final['eval/dev/confusion']).sum() == 10
