"""Image to sequence on strings of handwritten digits: the data, the model's decoding protocol
and masking, a smoke training run, and the attention figure."""

import functools

import jax
import ml_collections
import numpy as np
import pytest

import seqnets as sn
from configs import digit_strings as digit_strings_config
from seqnets.analysis import attention_maps
from seqnets.data import digit_strings
from seqnets.data import digits
from seqnets.models import factory
from seqnets.models.image_to_sequence import ImageToSequence
from seqnets.tasks import seq2seq
from seqnets.training import loop
from seqnets.training import saved_run

B, T, V = 3, 5, 14


@pytest.fixture(scope='module')
def data():
  return digits.load()


def test_strings_are_digits_side_by_side_with_zeros_after(data):
  train, held_out = digit_strings.split(data['labels'])
  assert not set(train.tolist()) & set(held_out.tolist())
  assert len(train) + len(held_out) == len(data['labels'])
  images, labels = data['images'][train], data['labels'][train]
  out, widths, targets = digit_strings.make_strings(images, labels, np.random.default_rng(3), 50)
  assert out.shape == (50, 8, 40, 1) and out.dtype == np.float32
  assert set(widths.tolist()) <= set(range(1, 6)) and len(set(widths.tolist())) > 1
  for row in range(50):
    n = widths[row]
    assert len(targets[row]) == n
    assert np.all(out[row, :, 8 * n:] == 0)
    for position, char in enumerate(targets[row]):
      cell = out[row, :, 8 * position:8 * (position + 1)]
      matches = np.flatnonzero(np.all(images == cell, axis=(1, 2, 3)))
      assert any(labels[m] == int(char) for m in matches)
  again = digit_strings.make_strings(images, labels, np.random.default_rng(3), 50)
  np.testing.assert_array_equal(again[0], out)
  assert again[2] == targets


def test_task_batches_and_unseen_handwriting():
  cfg = digit_strings_config.get_config('smoke')
  seq2seq.validate(cfg.data)
  task_data = seq2seq.build_data(cfg.data)
  vocab = task_data.preprocessing.vocabulary
  assert vocab == ('<pad>', '<unk>', '<s>', '</s>', *'0123456789')
  batch = next(task_data.train_batches(0, 0))
  assert batch['source'].shape == (8, 8, 24, 1)
  np.testing.assert_array_equal(batch['n'], batch['source_lengths'])
  for row in range(8):
    n = batch['source_lengths'][row]
    assert [vocab[i] for i in batch['targets'][row, :n + 1]][-1] == '</s>'
    assert batch['target_inputs'][row, 0] == 2 and batch['weights'][row].sum() == n + 1
  validation = task_data.eval_sets['validation']
  texts = task_data.texts['validation']
  assert len(texts) == 16
  train_pool, held_out = digit_strings.split()
  for (description, target), row in zip(texts, range(16)):
    indices = [int(i) for i in description.split()[1:]]
    assert set(indices) <= set(held_out.tolist())
    assert seq2seq.decode_targets(cfg.data, task_data.preprocessing,
                                  validation['targets'][row]) == target
  rebuilt = seq2seq.encode(cfg.data, task_data.preprocessing, texts)
  for key in validation:
    np.testing.assert_array_equal(rebuilt[key], validation[key])
  with pytest.raises(ValueError, match='no text input'):
    seq2seq.encode_sources(cfg.data, task_data.preprocessing, ['3 1 4'])
  with pytest.raises(ValueError, match='data.digits_per_image'):
    seq2seq.validate(ml_collections.ConfigDict({**cfg.data.to_dict(), 'digits_per_image': (3, 2)}))


def make(**kwargs):
  return ImageToSequence(functools.partial(sn.GRUCell, 8), target_vocab_size=V, embedding_size=4,
                         conv_features=(4, 6), **kwargs)


RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(size=(B, 8, 40, 1)).astype(np.float32)
WIDTHS = np.array([5, 2, 1], np.int32)
IMAGES[1, :, 16:] = 0
IMAGES[2, :, 8:] = 0
TARGET_LENGTHS = WIDTHS + 1
TARGET_INPUTS = np.where(np.arange(T + 1)[None] < TARGET_LENGTHS[:, None],
                         RNG.integers(4, V, (B, T + 1)), 0).astype(np.int32)
TARGET_INPUTS[:, 0] = 2


@pytest.mark.parametrize('kwargs', [dict(), dict(placement='luong', score='general', bridge=False)])
def test_teacher_forcing_equals_step_by_step_decoding(kwargs):
  model = make(**kwargs)
  variables = model.init(jax.random.key(0), IMAGES, WIDTHS, TARGET_INPUTS, TARGET_LENGTHS,
                         deterministic=True)
  logits = model.apply(variables, IMAGES, WIDTHS, TARGET_INPUTS, TARGET_LENGTHS,
                       deterministic=True)
  assert logits.shape == (B, T + 1, V)
  encoded = model.apply(variables, IMAGES, WIDTHS, method='encode')
  assert model.feature_shape(8, 40) == (2, 10) and encoded['memory'].shape == (B, 20, 6)
  np.testing.assert_array_equal(encoded['mask'].reshape(B, 2, 10)[:, 0].sum(-1), 2 * WIDTHS)
  carry = model.apply(variables, encoded, method='initial_carry')
  step = jax.jit(lambda carry, tokens: model.apply(variables, encoded, carry, tokens,
                                                   method='step'))
  for t in range(T + 1):
    carry, log_probs, weights = step(carry, TARGET_INPUTS[:, t])
    real = t < TARGET_LENGTHS
    np.testing.assert_allclose(np.asarray(log_probs)[real],
                               np.asarray(jax.nn.log_softmax(logits[:, t]))[real],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1, rtol=1e-5)
    assert np.all(np.asarray(weights)[~np.asarray(encoded['mask'])] == 0)


def test_pixels_beyond_the_digits_change_nothing():
  model = make(dropout_rate=0.5)
  variables = model.init(jax.random.key(1), IMAGES, WIDTHS, TARGET_INPUTS, TARGET_LENGTHS,
                         deterministic=True)
  noisy = IMAGES.copy()
  for row, n in enumerate(WIDTHS):
    noisy[row, :, 8 * n:] = RNG.uniform(size=noisy[row, :, 8 * n:].shape)
  run = lambda images: model.apply(variables, images, WIDTHS, TARGET_INPUTS, TARGET_LENGTHS,
                                   deterministic=True)
  np.testing.assert_allclose(run(noisy), run(IMAGES), rtol=1e-5, atol=1e-6)
  assert not np.allclose(run(IMAGES + 0.5), run(IMAGES))


def test_factory_builds_and_names_bad_fields():
  cfg = ml_collections.ConfigDict(digit_strings_config.get_config('smoke').model.to_dict())
  info = seq2seq.build_data(digit_strings_config.get_config('smoke').data).info
  model = factory.from_config(cfg, info)
  assert isinstance(model, ImageToSequence) and model.conv_features == (4, 8)
  for field, value, message in [('conv_features', (), 'model.conv_features'),
                                ('score', 'cosine', 'model.score'),
                                ('bridge', 1, 'model.bridge'),
                                ('embedding_size', 0, 'model.embedding_size')]:
    bad = ml_collections.ConfigDict({**cfg.to_dict(), field: value})
    with pytest.raises(ValueError, match=message):
      factory.validate(bad)
  with pytest.raises(ValueError, match=r"model\.score='dot' needs the memory \(8, the last of "
                                       r'conv_features\) and the decoder state \(16\)'):
    factory.validate(ml_collections.ConfigDict({**cfg.to_dict(), 'score': 'dot',
                                                'cell': {**cfg.cell.to_dict(), 'hidden_size': 16}}))


def test_smoke_training_reports_exact_match(tmp_path):
  config = digit_strings_config.get_config('smoke')
  config.evals.bleu = dict(type='bleu', split='validation', every_steps=0, batch_size=8,
                           beam_size=2)                  # decoding images, not token ids
  result = loop.train_and_evaluate(config, tmp_path / 'run')
  final = result.final[0]
  assert 0 <= final['eval/validation/accuracy'] <= 1
  assert 0 <= final['eval/bleu/bleu'] <= 100 and 0 <= final['eval/bleu/bleu_lowercase'] <= 100
  assert set(final['eval/lengths/accuracy_by_n']) <= {'1', '2', '3'}
  paths = attention_maps.save_digit_attention_maps(saved_run.load_run(tmp_path / 'run'),
                                                   tmp_path / 'maps', count=2)
  assert [p.name for p in paths] == ['digits_0.png', 'digits_1.png']
  assert all(p.stat().st_size > 0 for p in paths)


def test_save_image_attention_writes_a_png(tmp_path):
  weights = np.random.default_rng(0).dirichlet(np.ones(20), size=3)
  path = tmp_path / 'map.png'
  attention_maps.save_image_attention(IMAGES[0], weights, (2, 10), ['3', '1', '</s>'], path)
  assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
