"""Generation: the scan equals re-reading the whole prefix each step; stops, bans, no recompiles."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqnets as sn
from seqnets.decoding import generation
from seqnets.models import RecurrentLM

V = 9
MODEL = RecurrentLM(cell_fn=functools.partial(sn.GRUCell, 6), vocab_size=V, embedding_size=5,
                    num_layers=2)


@pytest.fixture(scope='module')
def params():
  p = MODEL.init(jax.random.key(0), np.zeros((1, 4), np.int32), np.array([4]),
                 deterministic=True)['params']
  rng = np.random.default_rng(0)
  return jax.tree_util.tree_map(lambda a: jnp.asarray(rng.normal(0, 1.0, a.shape), jnp.float32), p)


@jax.jit
def last_logits(params, tokens, length):
  """The logits after the first `length` tokens of `tokens [1, 16]`, read from scratch."""
  logits = MODEL.apply({'params': params}, tokens, length[None], deterministic=True)
  return logits[0, length - 1]


def greedy_reference(params, prime, length, banned=()):
  """Arg-max of the logits of the whole prefix, recomputed from scratch at every step."""
  tokens = list(prime)
  for _ in range(length):
    padded = np.zeros((1, 16), np.int32)
    padded[0, :len(tokens)] = tokens
    logits = np.array(last_logits(params, padded, jnp.int32(len(tokens))))
    logits[list(banned)] = -np.inf
    tokens.append(int(np.argmax(logits)))
  return tokens[len(prime):]


def test_greedy_generation_equals_rereading_the_prefix(params):
  primes = [[1, 2, 3], [4]]
  prime = np.zeros((2, 3), np.int32)
  prime[0], prime[1, :1] = primes[0], primes[1]
  tokens, lengths = generation.generate(MODEL, params, prime, np.array([3, 1]), length=7,
                                        key=jax.random.key(0), temperature=0.0, banned_ids=[0])
  for row, p in enumerate(primes):
    assert np.asarray(tokens[row]).tolist() == greedy_reference(params, p, 7, banned=[0])
  np.testing.assert_array_equal(lengths, 7)


def test_eos_stops_a_row_and_banned_tokens_are_never_drawn(params):
  prime = np.full((64, 1), 2, np.int32)
  tokens, lengths = generation.generate(MODEL, params, prime, np.ones(64, np.int32), length=12,
                                        key=jax.random.key(1), temperature=2.0, eos_id=5,
                                        banned_ids=[0, 1])
  tokens, lengths = np.asarray(tokens), np.asarray(lengths)
  assert not np.isin(tokens[:, :], [1]).any()
  stopped = lengths < 12
  assert stopped.any() and (~stopped).any()
  for row, n in zip(tokens, lengths):
    assert 0 not in row[:n] and (row[:n - 1] != 5).all()
    if n < 12:
      assert row[n - 1] == 5 and (row[n:] == 0).all()


def test_seeded_and_no_recompile_within_a_bucket(params):
  run = lambda p, key: generation.generate(MODEL, params, np.asarray([p], np.int32),
                                           np.array([len(p)]), length=6, key=key, top_k=3)
  a, _ = run([1, 2], jax.random.key(7))
  b, _ = run([1, 2], jax.random.key(7))
  np.testing.assert_array_equal(a, b)
  before = generation._generate._cache_size()
  for p in ([3], [1, 2, 3, 4, 5], [6] * 16):        # every prime in the bucket of 16
    run(p, jax.random.key(0))
  generation.generate(MODEL, params, np.asarray([[1]], np.int32), np.array([1]), length=6,
                      key=jax.random.key(0), temperature=0.3, top_p=0.9)
  assert generation._generate._cache_size() == before


def test_bad_arguments(params):
  with pytest.raises(ValueError, match='every prime needs 1..2 tokens'):
    generation.generate(MODEL, params, np.zeros((1, 2), np.int32), np.array([0]), length=3,
                        key=jax.random.key(0))
  with pytest.raises(ValueError, match='length must be a positive integer'):
    generation.generate(MODEL, params, np.zeros((1, 2), np.int32), np.array([1]), length=0,
                        key=jax.random.key(0))
