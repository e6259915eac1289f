"""Tests for seqnets.data.formal_languages: worked examples with known answers."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqnets.data import formal_languages as fl


def multi_hot(symbols, sets):
  """[len(sets), len(symbols)] float32 with a 1 for each symbol in each set."""
  return np.array([[s in legal for s in symbols] for legal in sets], np.float32)


# Written out by hand from the rules of Gers & Schmidhuber (2001).
HAND_EXAMPLES = {
    ('anbn', 1): ('SabT', ['S', 'a', 'b'], [{'a'}, {'a', 'b'}, {'T'}]),
    ('anbn', 2): (
        'SaabbT',
        ['S', 'a', 'a', 'b', 'b'],
        [{'a'}, {'a', 'b'}, {'a', 'b'}, {'b'}, {'T'}],
    ),
    ('anbncn', 1): ('SabcT', ['S', 'a', 'b', 'c'], [{'a'}, {'a', 'b'}, {'c'}, {'T'}]),
    ('anbncn', 2): (
        'SaabbccT',
        ['S', 'a', 'a', 'b', 'b', 'c', 'c'],
        [{'a'}, {'a', 'b'}, {'a', 'b'}, {'b'}, {'c'}, {'c'}, {'T'}],
    ),
}


@pytest.mark.parametrize('name, n', sorted(HAND_EXAMPLES))
def test_example_matches_hand_written(name, n):
  lang = fl.get_language(name)
  string, input_symbols, legal = HAND_EXAMPLES[(name, n)]
  assert lang.string_fn(n) == string
  inputs, targets = lang.example(n)
  expected_ids = [lang.symbols.index(s) + 1 for s in input_symbols]
  np.testing.assert_array_equal(inputs, expected_ids)
  np.testing.assert_array_equal(targets, multi_hot(lang.symbols, legal))
  assert inputs.dtype == np.int32 and targets.dtype == np.float32
  assert lang.input_length(n) == len(input_symbols)


def test_symbols_ids_and_sizes():
  anbn, anbncn = fl.get_language('anbn'), fl.get_language('anbncn')
  assert anbn.name == 'a^n b^n' and anbncn.name == 'a^n b^n c^n'
  assert anbn.symbols == ('S', 'a', 'b', 'T')
  assert anbncn.symbols == ('S', 'a', 'b', 'c', 'T')
  assert (anbn.vocab_size, anbn.num_outputs) == (5, 4)
  assert (anbncn.vocab_size, anbncn.num_outputs) == (6, 5)
  assert fl.PAD_ID == 0
  assert anbncn.input_length(1000) == 3001


def test_counter_language_generalises_to_k_letters():
  lang = fl.counter_language(4)
  assert lang.string_fn(2) == 'SaabbccddT'
  assert lang.legal_next_fn('Saabbcc', 2) == {'d'}
  assert lang.legal_next_fn('Saabbccd', 2) == {'d'}
  assert lang.legal_next_fn('Saabbccdd', 2) == {'T'}
  # After a's only, n is unknown: a block may continue or end.
  assert lang.legal_next_fn('Saaa', 5) == {'a', 'b'}


def test_late_positions_are_deterministic():
  lang = fl.get_language('anbncn')
  _, targets = lang.example(5)
  first_b = 1 + 5  # S then 5 a's: the first b is input step 6.
  assert (targets[first_b:].sum(-1) == 1).all()


@pytest.mark.parametrize('bad', [0, 27, 2.0, True])
def test_counter_language_rejects_bad_num_letters(bad):
  with pytest.raises(ValueError, match='num_letters'):
    fl.counter_language(bad)


def test_legal_next_rejects_a_prefix_of_another_string():
  with pytest.raises(ValueError, match="prefix='Sab'"):
    fl.get_language('anbn').legal_next_fn('Sab', 2)


def test_example_returns_fresh_arrays():
  lang = fl.get_language('anbn')
  inputs, targets = lang.example(2)
  inputs[:] = 0
  targets[:] = 0
  again_inputs, again_targets = lang.example(2)
  assert again_inputs[0] == 1 and again_targets[0, 1] == 1


def test_unknown_language_lists_valid_names():
  with pytest.raises(ValueError, match=r"'abc'.*\['anbn', 'anbncn'\]"):
    fl.get_language('abc')


def test_make_batch_shapes_and_padding():
  lang = fl.get_language('anbn')
  batch = fl.make_batch(lang, [2, 1], pad_to=6)
  np.testing.assert_array_equal(
      batch['inputs'], [[1, 2, 2, 3, 3, 0], [1, 2, 3, 0, 0, 0]])
  np.testing.assert_array_equal(batch['lengths'], [5, 3])
  np.testing.assert_array_equal(batch['n'], [2, 1])
  assert batch['targets'].shape == (2, 6, 4)
  np.testing.assert_array_equal(batch['targets'][0, :5], lang.example(2)[1])
  np.testing.assert_array_equal(batch['targets'][1, :3], lang.example(1)[1])
  assert not batch['targets'][0, 5:].any() and not batch['targets'][1, 3:].any()
  assert {k: v.dtype for k, v in batch.items()} == {
      'inputs': np.int32, 'targets': np.float32, 'lengths': np.int32, 'n': np.int32}


def test_make_batch_defaults_to_longest():
  batch = fl.make_batch(fl.get_language('anbncn'), [1, 3])
  assert batch['inputs'].shape == (2, 10)
  assert batch['targets'].shape == (2, 10, 5)


def test_make_batch_pad_to_too_small_names_it():
  with pytest.raises(ValueError, match=r'pad_to=4 .*5 steps, n=2'):
    fl.make_batch(fl.get_language('anbn'), [1, 2], pad_to=4)


def test_make_batch_n_below_min_names_it():
  with pytest.raises(ValueError, match='n=0 is below min_n=1'):
    fl.make_batch(fl.get_language('anbn'), [1, 0])
  with pytest.raises(ValueError, match='n=-3'):
    fl.get_language('anbn').example(-3)


def test_make_batch_rejects_empty():
  with pytest.raises(ValueError, match='ns is empty'):
    fl.make_batch(fl.get_language('anbn'), [])


def test_sample_ns_is_inclusive():
  ns = fl.sample_ns(np.random.default_rng(0), (2, 4), 200)
  assert ns.shape == (200,) and set(ns.tolist()) == {2, 3, 4}
  with pytest.raises(ValueError, match='lo=5 is above hi=4'):
    fl.sample_ns(np.random.default_rng(0), (5, 4), 2)


def take(iterator, k):
  return list(itertools.islice(iterator, k))


def assert_batches_equal(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key])


def test_train_batches_same_seed_same_batches():
  lang = fl.get_language('anbn')
  assert_batches_equal(
      take(fl.train_batches(lang, (1, 10), 3, seed=7), 4),
      take(fl.train_batches(lang, (1, 10), 3, seed=7), 4))


def test_train_batches_resume_equals_skipping():
  lang = fl.get_language('anbn')
  uninterrupted = take(fl.train_batches(lang, (1, 10), 3, seed=7), 5)
  resumed = take(fl.train_batches(lang, (1, 10), 3, seed=7, start_step=3), 2)
  assert_batches_equal(uninterrupted[3:], resumed)


def test_train_batches_seeds_differ():
  lang = fl.get_language('anbn')
  ns = [next(fl.train_batches(lang, (1, 50), 3, seed=s))['n'] for s in (0, 1)]
  assert not np.array_equal(*ns)


def test_train_batches_static_shape():
  lang = fl.get_language('anbncn')
  for batch in take(fl.train_batches(lang, (1, 4), 2, seed=0), 3):
    assert batch['inputs'].shape == (2, 13)  # input_length(4) = 3 * 4 + 1
    assert batch['targets'].shape == (2, 13, 5)


def test_train_batches_full_batch_covers_every_n():
  lang = fl.get_language('anbn')
  batches = take(fl.train_batches(lang, (2, 5), 99, seed=0, full_batch=True), 2)
  for batch in batches:
    np.testing.assert_array_equal(batch['n'], [2, 3, 4, 5])
    assert batch['inputs'].shape == (4, 11)


def test_train_batches_checks_arguments_at_call():
  lang = fl.get_language('anbn')
  with pytest.raises(ValueError, match='below min_n=1'):
    fl.train_batches(lang, (0, 3), 2, seed=0)
  with pytest.raises(ValueError, match='batch_size'):
    fl.train_batches(lang, (1, 3), 0, seed=0)
  with pytest.raises(ValueError, match='seed=-1'):
    fl.train_batches(lang, (1, 3), 2, seed=-1)


@pytest.mark.parametrize('ns, correct, expected', [
    ([1, 2, 3, 5, 8], [True, True, True, True, False], 5),
    ([1, 2, 3, 4], [True, True, False, True], 2),
    ([1, 2], [False, True], 0),
    ([3, 1, 2], [True, True, True], 3),         # order does not matter
    ([1, 2, 2, 3], [True, True, False, True], 1),  # a repeated n wrong once
    ([], [], 0),
])
def test_max_correct_n(ns, correct, expected):
  assert fl.max_correct_n(ns, correct) == expected


def test_max_correct_n_rejects_mismatched_lengths():
  with pytest.raises(ValueError, match='ns has 2 entries but correct has 1'):
    fl.max_correct_n([1, 2], [True])


def _padded_mistake_case():
  # String 0 (length 1) is wrong only at its padded step 1; string 1 is wrong
  # at its real step 0; string 2 is right everywhere.
  predictions = np.array([[[1], [1]], [[0], [1]], [[1], [0]]], bool)
  targets = np.array([[[1], [0]], [[1], [1]], [[1], [0]]], np.float32)
  lengths = np.array([1, 2, 2], np.int32)
  return predictions, targets, lengths


def test_sequence_correct_ignores_padding():
  np.testing.assert_array_equal(
      fl.sequence_correct(*_padded_mistake_case()), [True, False, True])


def test_sequence_correct_works_on_jax_arrays_under_jit():
  args = [jnp.asarray(x) for x in _padded_mistake_case()]
  result = jax.jit(fl.sequence_correct)(*args)
  np.testing.assert_array_equal(result, [True, False, True])


def test_sequence_correct_on_a_real_batch():
  batch = fl.make_batch(fl.get_language('anbn'), [1, 3], pad_to=8)
  perfect = batch['targets'] > 0.5
  wrong = perfect.copy()
  wrong[0, 5, 0] = True  # padding of string 0
  wrong[1, 6, 3] = False  # the T of string 1
  np.testing.assert_array_equal(
      fl.sequence_correct(perfect, batch['targets'], batch['lengths']), [True, True])
  np.testing.assert_array_equal(
      fl.sequence_correct(wrong, batch['targets'], batch['lengths']), [True, False])


def test_sequence_correct_rejects_shape_mismatch():
  with pytest.raises(ValueError, match='same shape'):
    fl.sequence_correct(np.zeros((1, 2, 3), bool), np.zeros((1, 2, 4)), np.ones(1))
