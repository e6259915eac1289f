"""The long-memory benchmarks: copy memory, adding and sequential digits. Their sequences'
layout, objectives against NumPy, padding rows, baselines, evaluation files, and a smoke
ablation through the harness and the report."""

import json
import math

import jax
import ml_collections
import numpy as np
import pytest

from configs import long_memory
from seqnets.ablation import report
from seqnets.ablation import sweeps
from seqnets.data import digits
from seqnets.tasks import adding, copy_memory, sequential_digits
from seqnets.training import loop, metrics

T = 7
L = T + 20
# One compile per shape instead of an op-by-op dispatch of every jnp call.
COPY_LOSS, ADDING_LOSS = jax.jit(copy_memory.loss), jax.jit(adding.loss)


def cfg(**values):
  return ml_collections.ConfigDict(values)


def log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def with_padding_rows(batch, rows=3):
  """The batch with `rows` all-zero rows appended, as `parallel.pad_batch` fills devices."""
  return {k: np.concatenate([v, np.zeros((rows,) + v.shape[1:], v.dtype)]) for k, v in batch.items()}


def assert_sums_equal(a, b):
  assert a.keys() == b.keys()
  for key in a:
    np.testing.assert_allclose(a[key], b[key], rtol=1e-6, err_msg=key)


def test_copy_sequences_have_the_stated_layout_and_are_fresh_every_step():
  data = copy_memory.build_data(cfg(delay=T, batch_size=64, eval_size=5, eval_seed=0))
  batch = next(data.train_batches(3, 0))
  assert batch['inputs'].shape == batch['targets'].shape == (64, L)
  assert batch['inputs'].dtype == batch['targets'].dtype == np.int32
  np.testing.assert_array_equal(batch['lengths'], np.full(64, L))
  symbols = batch['inputs'][:, :10]
  assert symbols.min() == 0 and symbols.max() == 7 and len(np.unique(symbols)) == 8
  for row in range(64):
    inputs, targets = batch['inputs'][row].tolist(), batch['targets'][row].tolist()
    data_symbols = inputs[:10]
    assert inputs == data_symbols + [8] * (T - 1) + [9] + [8] * 10
    assert targets == [8] * (T + 10) + data_symbols
  # Deterministic in (seed, step): step 2 alone equals the third batch of a run from step 0.
  from_start = data.train_batches(3, 0)
  third = [next(from_start) for _ in range(3)][2]
  np.testing.assert_array_equal(next(data.train_batches(3, 2))['inputs'], third['inputs'])
  assert not np.array_equal(third['inputs'], batch['inputs'])
  assert not np.array_equal(next(data.train_batches(4, 0))['inputs'], batch['inputs'])
  # The held-out set: fixed by eval_seed, on a stream of its own.
  again = copy_memory.build_data(cfg(delay=T, batch_size=64, eval_size=5, eval_seed=0))
  np.testing.assert_array_equal(again.eval_sets['test']['inputs'], data.eval_sets['test']['inputs'])
  assert not np.array_equal(data.eval_sets['test']['inputs'],
                            next(data.train_batches(0, 0))['inputs'][:5])
  assert data.info.vocab_size == data.info.num_outputs == 10


def test_copy_baseline_is_ten_log_eight_over_the_length():
  summary = copy_memory.build_data(cfg(delay=100, batch_size=8, eval_size=8)).summary
  assert summary['baseline/loss'] == pytest.approx(0.17328679514, rel=1e-9)   # 10 ln 8 / 120
  # The memoryless strategy (blanks, then uniform over 0..7) scores exactly that loss.
  batch = copy_memory.make_batch(np.random.default_rng(0).integers(0, 8, (4, 10)), T)
  logits = np.full((4, L, 10), -1e4, np.float32)
  logits[:, :T + 10, 8] = 0.0
  logits[:, T + 10:, :8] = 0.0
  loss, sums = COPY_LOSS(logits, batch)
  np.testing.assert_allclose(loss, copy_memory.baseline_loss(T), rtol=1e-5)
  np.testing.assert_allclose(loss, 10 * math.log(8) / L, rtol=1e-5)


def test_copy_loss_and_recall_accuracy_match_numpy_and_ignore_padding_rows():
  batch = copy_memory.make_batch(np.random.default_rng(1).integers(0, 8, (5, 10)), T)
  logits = np.random.default_rng(2).normal(size=(5, L, 10)).astype(np.float32) * 3
  logits[0, T + 10:, :] = -5.0
  logits[0, np.arange(T + 10, L), batch['targets'][0, T + 10:]] = 5.0   # row 0 recalls all
  loss, sums = COPY_LOSS(logits, batch)
  picked = np.take_along_axis(log_softmax(logits.astype(np.float64)), batch['targets'][..., None], -1)
  np.testing.assert_allclose(loss, -picked.mean(), rtol=1e-5)
  right = logits.argmax(-1) == batch['targets']
  assert sums['token_count'] == 5 * L and sums['recalled_count'] == 50
  assert sums['recalled_correct'] == right[:, -10:].sum()
  means = metrics.compute(sums)
  np.testing.assert_allclose(means['accuracy'], right[:, -10:].mean(), rtol=1e-6)
  np.testing.assert_allclose(means['loss'], loss, rtol=1e-6)
  correct = np.asarray(jax.jit(copy_memory.example_correct)(logits, batch))
  assert correct[0] and correct.tolist() == right[:, -10:].all(-1).tolist()
  padded = with_padding_rows({**batch, 'logits': logits})
  logits_padded = padded.pop('logits')
  logits_padded[5:] = 7.0                                     # whatever padding rows output
  assert_sums_equal(COPY_LOSS(logits_padded, padded)[1], sums)
  with pytest.raises(ValueError, match="model.readout='every_step'"):
    copy_memory.loss(logits[:, -1], batch)


def test_copy_evaluation_file_rebuilds_the_sequences(tmp_path):
  data_cfg = cfg(delay=T, batch_size=8, eval_size=6, eval_seed=2)
  data = copy_memory.build_data(data_cfg)
  symbols = data.eval_sets['test']['inputs'][:, :10]
  path = tmp_path / 'copy.txt'
  path.write_text(''.join(''.join(map(str, row)) + '\n' for row in symbols.tolist()))
  rebuilt = copy_memory.encode(data_cfg, data.preprocessing, copy_memory.read_file(data_cfg, path))
  for key, value in data.eval_sets['test'].items():
    np.testing.assert_array_equal(rebuilt[key], value)
  path.write_text('0123456701\n012345678\n')
  with pytest.raises(ValueError, match='copy.txt:2:'):
    copy_memory.read_file(data_cfg, path)


def test_adding_sequences_mark_one_number_in_each_half_and_the_target_is_their_sum():
  for length in (9, 10):
    batch = adding.make_batch(np.random.default_rng(length), 4000, length)
    inputs, targets = batch['inputs'], batch['targets']
    assert inputs.shape == (4000, length, 2) and inputs.dtype == np.float32
    values, markers = inputs[..., 0], inputs[..., 1]
    assert values.min() >= 0 and values.max() < 1
    assert set(np.unique(markers).tolist()) == {0.0, 1.0}
    half = length // 2
    np.testing.assert_array_equal(markers[:, :half].sum(1), 1)
    np.testing.assert_array_equal(markers[:, half:].sum(1), 1)
    np.testing.assert_allclose(targets, (values * markers).sum(1), rtol=1e-6)
    assert set(markers[:, :half].argmax(1).tolist()) == set(range(half))     # every position
    assert set((half + markers[:, half:].argmax(1)).tolist()) == set(range(half, length))
    np.testing.assert_array_equal(batch['lengths'], length)
  # Always predicting 1: MSE Var(u + v) = 1/6 (the standard error of this sample is 0.003).
  big = adding.make_batch(np.random.default_rng(0), 20000, 10)
  assert np.mean((big['targets'] - 1.0) ** 2) == pytest.approx(1 / 6, abs=0.01)
  data = adding.build_data(cfg(length=10, batch_size=16, eval_size=8, eval_seed=0))
  assert data.summary['baseline/loss'] == pytest.approx(0.1666666667)
  assert data.info.vocab_size == 0 and data.info.num_outputs == 1
  first = next(data.train_batches(0, 0))
  assert not np.array_equal(next(data.train_batches(0, 1))['inputs'], first['inputs'])
  np.testing.assert_array_equal(next(data.train_batches(0, 0))['inputs'], first['inputs'])
  np.testing.assert_array_equal(
      adding.build_data(cfg(length=10, batch_size=16, eval_size=8)).eval_sets['test']['inputs'],
      data.eval_sets['test']['inputs'])


def test_adding_mse_matches_numpy_and_ignores_padding_rows(tmp_path):
  batch = adding.make_batch(np.random.default_rng(5), 6, 10)
  outputs = (batch['targets'] + np.array([0.0, 0.03, -0.05, 0.5, -0.039, 0.2]))[:, None]
  outputs = outputs.astype(np.float32)
  loss, sums = ADDING_LOSS(outputs, batch)
  expected = np.mean((outputs[:, 0] - batch['targets']) ** 2)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  means = metrics.compute(sums)
  np.testing.assert_allclose(means['mse'], expected, rtol=1e-5)
  np.testing.assert_allclose(means['loss'], expected, rtol=1e-5)
  assert means['accuracy'] == pytest.approx(3 / 6)              # |error| < 0.04: rows 0, 1, 4
  padded = with_padding_rows({**batch, 'outputs': outputs})
  padded_outputs = padded.pop('outputs') + 3.0                  # whatever padding rows output
  padded_outputs[:6] = outputs
  assert_sums_equal(ADDING_LOSS(padded_outputs, padded)[1], sums)
  with pytest.raises(ValueError, match="model.readout='final'"):
    adding.loss(np.zeros((6, 10, 1), np.float32), batch)
  data_cfg = cfg(length=10)
  np.savez(tmp_path / 'adding.npz', inputs=batch['inputs'], targets=batch['targets'])
  rebuilt = adding.encode(data_cfg, None, adding.read_file(data_cfg, tmp_path / 'adding.npz'))
  for key, value in batch.items():
    np.testing.assert_array_equal(rebuilt[key], value)
  with pytest.raises(ValueError, match=r'expected \[N, 12, 2\]'):
    adding.read_file(cfg(length=12), tmp_path / 'adding.npz')


def test_sequential_digits_read_pixels_in_order_under_one_fixed_permutation(tmp_path):
  plain_cfg = cfg(permute=False, permutation_seed=0, test_fraction=0.2, split_seed=0, batch_size=8)
  permuted_cfg = cfg(**{**plain_cfg.to_dict(), 'permute': True, 'permutation_seed': 3})
  plain = sequential_digits.build_data(plain_cfg)
  permuted = sequential_digits.build_data(permuted_cfg)
  _, test = digits.load_split(0.2, 0)
  inputs = plain.eval_sets['test']['inputs']
  assert inputs.shape == (len(test['labels']), 64, 1) and inputs.dtype == np.float32
  np.testing.assert_array_equal(inputs[:, :, 0], test['images'].reshape(-1, 64))
  np.testing.assert_array_equal(inputs[:, 8 * 2 + 5, 0], test['images'][:, 2, 5, 0])   # row-major
  assert 0 <= inputs.min() and inputs.max() == 1.0
  np.testing.assert_array_equal(plain.eval_sets['test']['labels'], test['labels'])
  order = sequential_digits.permutation(permuted_cfg)
  assert sorted(order.tolist()) == list(range(64)) and (order != np.arange(64)).sum() > 50
  np.testing.assert_array_equal(permuted.eval_sets['test']['inputs'], inputs[:, order])
  np.testing.assert_array_equal(order, sequential_digits.permutation(permuted_cfg))
  other = cfg(**{**permuted_cfg.to_dict(), 'permutation_seed': 4})
  assert not np.array_equal(sequential_digits.permutation(other), order)
  batch = next(permuted.train_batches(0, 0))
  assert batch['inputs'].shape == (8, 64, 1) and batch['valid'].tolist() == [1] * 8
  np.testing.assert_array_equal(batch['lengths'], 64)
  assert permuted.info.num_outputs == 10 and permuted.info.vocab_size == 0
  # Class-prior loss of the (near-balanced) training labels: just under log 10.
  assert math.log(10) - 0.01 < plain.summary['baseline/loss'] <= math.log(10)
  np.savez(tmp_path / 'digits.npz', inputs=test['images'], labels=test['labels'])
  rebuilt = sequential_digits.encode(
      permuted_cfg, permuted.preprocessing,
      sequential_digits.read_file(permuted_cfg, tmp_path / 'digits.npz'))
  for key, value in permuted.eval_sets['test'].items():
    np.testing.assert_array_equal(rebuilt[key], value)
  with pytest.raises(ValueError, match="model.readout='final'"):
    sequential_digits.TASK.loss(np.zeros((8, 64, 10), np.float32), batch)


@pytest.mark.parametrize('task,values,message', [
    (copy_memory, dict(delay=0, batch_size=8, eval_size=8), 'data.delay must be a positive integer'),
    (copy_memory, dict(delay=5, batch_size=8, eval_size=8, eval_seed=-1), 'data.eval_seed'),
    (copy_memory, dict(delay=5, batch_size=8), 'data.eval_size'),
    (adding, dict(length=1, batch_size=8, eval_size=8), 'data.length must be at least 2'),
    (adding, dict(length=10, batch_size=True, eval_size=8), 'data.batch_size'),
    (sequential_digits, dict(permute='yes', batch_size=8), 'data.permute must be True or False'),
    (sequential_digits, dict(permute=True, permutation_seed=1.5, batch_size=8),
     'data.permutation_seed'),
    (sequential_digits, dict(test_fraction=1.0, batch_size=8), 'data.test_fraction'),
])
def test_bad_data_fields_name_the_field(task, values, message):
  with pytest.raises(ValueError, match=message):
    task.validate(cfg(**values))


def test_long_memory_modes_split_the_benchmarks_by_family_and_validate():
  from seqnets.training import validation
  every = long_memory.sweep(None)
  cells = list(long_memory.CELLS)
  benchmarks = ['copy_T100', 'copy_T200', 'copy_T500', 'adding_T100', 'adding_T400', 'digits',
                'digits_permuted']
  assert [v['name'] for v in every] == [f'{b}-{c}' for b in benchmarks for c in cells]
  by_family = [v for family in ('copy', 'adding', 'digits') for v in long_memory.sweep(family)]
  assert [v['name'] for v in by_family] == [v['name'] for v in every]
  for family in ('copy', 'adding', 'digits'):
    config = long_memory.get_config(family)
    assert config.train.num_train_steps == long_memory.STEPS[family] and config.num_seeds == 3
    for overrides in long_memory.sweep(family):
      assert 'train.num_train_steps' not in overrides          # so the command line sets it
      run = sweeps.apply_overrides(config, overrides)
      validation.validate(run)
      assert run.model.readout == ('every_step' if family == 'copy' else 'final')
  steps = {v['name']: v['train.num_train_steps'] for v in every}
  assert steps['copy_T500-gru'] == long_memory.STEPS['copy']
  assert steps['digits_permuted-lstm'] == long_memory.STEPS['digits']
  delays = {v['name']: v['data'].get('delay') for v in every}
  assert delays['copy_T200-elman'] == 200
  assert {v['data'].get('permute') for v in every if v['task'] == 'sequential_digits'} == {
      False, True}
  with pytest.raises(ValueError, match='valid: copy, adding, digits, smoke, or a variant'):
    long_memory.get_config('copying')


def test_a_variant_name_is_a_mode_with_that_variants_config_and_recipe():
  config = long_memory.get_config('copy_T500-orthogonal')
  assert (config.task, config.data.delay) == ('copy_memory', 500)
  assert config.model.cell.to_dict() == dict(name='orthogonal', hidden_size=128, activation='modrelu')
  assert config.model.readout == 'every_step'
  assert config.optim.learning_rate == 2e-4
  assert tuple(config.optim.learning_rate_factors) == (('*recurrent_skew', 0.1),)
  assert config.train.num_train_steps == long_memory.STEPS['copy']
  lstm = long_memory.get_config('adding_T400-lstm')
  assert (lstm.task, lstm.data.length, lstm.model.cell.to_dict(), lstm.optim.learning_rate) == (
      'adding', 400, dict(name='lstm', hidden_size=128), 1e-3)
  assert lstm.optim.learning_rate_factors == ()
  [only] = long_memory.sweep('adding_T400-lstm')
  assert only['name'] == 'adding_T400-lstm' and 'train.num_train_steps' not in only
  assert sweeps.apply_overrides(long_memory.get_config('adding'), only) == lstm


def test_smoke_ablation_trains_and_reports_each_baseline(tmp_path):
  """Two variants of the smoke sweep (copy: one-hot inputs, a readout per step; adding: real
  inputs, one real output) through `train_and_evaluate` and the report, as experiments.ablate
  runs them; the digits variant differs from adding only in its data and classification loss,
  tested above (two variants keep the test short)."""
  expected = {'copy_T5-lstm': ('eval/test/accuracy', 10 * math.log(8) / 25, '0.8318'),
              'adding_T6-gru': ('eval/test/mse', 1 / 6, '0.1667')}
  variants = long_memory.sweep('smoke')
  assert [v['name'] for v in variants] == [*expected, 'digits_permuted-elman']
  for overrides in variants[:2]:
    config = sweeps.apply_overrides(long_memory.get_config('smoke'), overrides)
    result = loop.train_and_evaluate(config, tmp_path / overrides['name'])
    key, baseline, _ = expected[overrides['name']]
    assert result.step == 4 and len(result.final) == 2
    for final in result.final:
      assert np.isfinite(final[key]) and np.isfinite(final['eval/test/loss'])
    summary = json.loads((tmp_path / overrides['name'] / 'results.json').read_text())['data']
    assert summary['baseline/loss'] == pytest.approx(baseline)
  table = report.write_report(tmp_path)
  lines = {line.split(' | ')[0].strip('| '): line.split(' | ') for line in table.splitlines()}
  column = lines['run'].index('baseline loss')
  for name, (_, _, shown) in expected.items():
    assert lines[name][column] == shown
  panels = report.loss_panels(report.load_runs(tmp_path))
  assert [(task, round(value, 4)) for task, value, _ in panels] == [('adding', 0.1667),
                                                                    ('copy_memory', 0.8318)]
  assert (tmp_path / 'train_loss.png').stat().st_size > 1000
  assert 'baseline/loss' in (tmp_path / 'report.md').read_text()


def test_report_without_baselines_has_no_baseline_column(tmp_path):
  run = tmp_path / 'a'
  run.mkdir()
  (run / 'config.json').write_text(json.dumps({'task': 'adding', 'seed': 0,
                                               'evals': {'test': {'type': 'metrics'}}}))
  (run / 'metrics.jsonl').write_text(
      json.dumps({'step': 2, 'seed': 0, 'train/loss': 0.3}) + '\n'
      + json.dumps({'step': 2, 'seed': 0, 'final': True, 'eval/test/mse': 0.25}) + '\n')
  assert report.write_report(tmp_path).splitlines()[2] == '| a | 1 | 0 | 0.25 / 0.25 / 0.25 |'
  assert report.loss_panels(report.load_runs(tmp_path))[0][:2] == ('adding', None)
  (run / 'results.json').write_text(json.dumps({'data': {'baseline/loss': 1 / 6}}))
  assert report.write_report(tmp_path).splitlines()[2] == '| a | 1 | 0 | 0.1667 | 0.25 / 0.25 / 0.25 |'
