"""Greedy, temperature, top-k and nucleus sampling against worked examples and frequencies."""

import jax
import jax.numpy as jnp
import numpy as np

from seqnets.decoding import filter_logits, sample

PROBS = np.array([0.5, 0.3, 0.15, 0.05])
LOGITS = jnp.log(jnp.asarray(PROBS))


def kept(logits):
  return np.isfinite(np.asarray(logits)).nonzero()[0].tolist()


def test_top_k_and_top_p_worked_examples():
  assert kept(filter_logits(LOGITS, top_k=2)) == [0, 1]
  assert kept(filter_logits(LOGITS, top_k=0)) == [0, 1, 2, 3]
  assert kept(filter_logits(LOGITS, top_k=9)) == [0, 1, 2, 3]
  assert kept(filter_logits(LOGITS, top_p=0.5)) == [0]          # 0.5 reaches 0.5
  assert kept(filter_logits(LOGITS, top_p=0.7)) == [0, 1]
  assert kept(filter_logits(LOGITS, top_p=0.81)) == [0, 1, 2]
  assert kept(filter_logits(LOGITS, top_p=0.01)) == [0]         # the most probable always stays
  assert kept(filter_logits(LOGITS, top_p=1.0)) == [0, 1, 2, 3]
  # Both: top-k first, then the nucleus of what is left (renormalised: 0.5/0.8, 0.3/0.8).
  assert kept(filter_logits(LOGITS, top_k=2, top_p=0.6)) == [0]
  assert kept(filter_logits(LOGITS, top_k=2, top_p=0.7)) == [0, 1]
  # Order of the vocabulary does not matter; batched rows are independent.
  shuffled = LOGITS[jnp.array([3, 1, 0, 2])]
  assert kept(filter_logits(shuffled, top_p=0.7)) == [1, 2]
  both = filter_logits(jnp.stack([LOGITS, shuffled]), top_k=jnp.int32(1))
  assert [kept(row) for row in both] == [[0], [2]]


def test_greedy_and_sampled_frequencies():
  logits = jnp.broadcast_to(LOGITS, (20000, 4))
  assert np.all(np.asarray(sample(jax.random.key(0), logits, temperature=0.0)) == 0)
  for temperature in (1.0, 0.5, 2.0):
    drawn = np.asarray(sample(jax.random.key(1), logits, temperature=temperature))
    want = PROBS ** (1 / temperature) / np.sum(PROBS ** (1 / temperature))
    np.testing.assert_allclose(np.bincount(drawn, minlength=4) / len(drawn), want, atol=0.015)
  drawn = np.asarray(sample(jax.random.key(2), logits, top_p=0.7))
  np.testing.assert_allclose(np.bincount(drawn, minlength=4) / len(drawn), [0.625, 0.375, 0, 0],
                             atol=0.015)
  same = sample(jax.random.key(3), logits[:50]), sample(jax.random.key(3), logits[:50])
  np.testing.assert_array_equal(*same)
