"""Autoregressive generation from a recurrent language model.

Synopsis:
  tokens, lengths = generate(model, params, prime [B, P], prime_lengths [B], length=200,
                             key=jax.random.key(0), temperature=0.8, top_k=0, top_p=1.0,
                             eos_id=vocab.id('</s>'), banned_ids=(0, 2))
  texts = generate_text(load_run(workdir), 'ROMEO:', length=500, temperature=0.8)

The prime is read in one pass of the recurrent layers; then one `lax.scan`
samples a token, feeds it back and steps the state, `length` times, with
fixed shapes: one compile per (batch, prime bucket, length), none per token,
and sampling settings are traced values. Primes are padded to a power of two
(at least 16), so primes of similar length share a compile.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from seqnets.data import lm_text
from seqnets.data.vocab import Vocabulary
from seqnets.decoding import sampling

Array = jax.Array


def prime_bucket(length: int) -> int:
  """The padded prime length: the next power of two, at least 16."""
  return max(16, 1 << max(length - 1, 0).bit_length())


@functools.partial(jax.jit, static_argnames=('model', 'length'))
def _generate(model, params, prime, prime_lengths, key, temperature, top_k, top_p, eos_id,
              banned, *, length: int):
  variables = {'params': params}
  carry, logits = model.apply(variables, prime, prime_lengths, deterministic=True,
                              return_carry=True)
  last = jnp.take_along_axis(logits, (prime_lengths - 1)[:, None, None], axis=1)[:, 0]  # [B, V]
  batch = prime.shape[0]

  def step(state, key_t):
    carry, logits, done = state
    logits = jnp.where(banned, -jnp.inf, logits)
    token = sampling.sample(key_t, logits, temperature=temperature, top_k=top_k, top_p=top_p)
    token = jnp.where(done, 0, token)
    done = done | (token == eos_id)
    carry, logits = model.apply(variables, token[:, None], jnp.ones(batch, jnp.int32),
                                initial_carry=carry, deterministic=True, return_carry=True)
    return (carry, logits[:, 0], done), token

  keys = jax.random.split(key, length)
  _, tokens = jax.lax.scan(step, (carry, last, jnp.zeros(batch, bool)), keys)
  tokens = tokens.T                                                         # [B, length]
  ended = tokens == eos_id
  lengths = jnp.where(ended.any(axis=1), jnp.argmax(ended, axis=1) + 1, length)
  return tokens, lengths


def generate(model, params, prime: Array, prime_lengths: Array, *, length: int, key: Array,
             temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
             eos_id: int = -1, banned_ids: Sequence[int] = ()) -> tuple[Array, Array]:
  """Samples `length` tokens after each prime.

  Args:
    model: a `RecurrentLM` (anything called as `model(tokens, lengths,
      initial_carry=, return_carry=True, deterministic=True) -> (carry, logits)`).
    params: its parameters.
    prime: `[B, P]` token ids (padded); prime_lengths `[B]`, each at least 1.
    length: tokens to generate.
    key: the PRNG key; the same key gives the same tokens.
    temperature / top_k / top_p: see `sampling.sample` (temperature 0: greedy).
    eos_id: a row stops at this token (it is kept; later tokens are 0); -1: never.
    banned_ids: tokens never drawn (e.g. padding).

  Returns:
    tokens `[B, length]` and the generated lengths `[B]` (up to and with `eos_id`).
  """
  prime, prime_lengths = np.asarray(prime), np.asarray(prime_lengths)
  if prime.ndim != 2 or prime_lengths.shape != prime.shape[:1]:
    raise ValueError(f'prime must be [B, P] with prime_lengths [B]; got {prime.shape} and '
                     f'{prime_lengths.shape}')
  if np.any(prime_lengths < 1) or np.any(prime_lengths > prime.shape[1]):
    raise ValueError(f'every prime needs 1..{prime.shape[1]} tokens; got lengths {prime_lengths}')
  if not isinstance(length, int) or length < 1:
    raise ValueError(f'length must be a positive integer, got {length!r}')
  bucket = prime_bucket(prime.shape[1])
  prime = np.pad(prime, ((0, 0), (0, bucket - prime.shape[1])))
  vocab_size = model.vocab_size
  banned = np.zeros(vocab_size, bool)
  banned[list(banned_ids)] = True
  return _generate(model, params, jnp.asarray(prime, jnp.int32),
                   jnp.asarray(prime_lengths, jnp.int32), key, jnp.float32(temperature),
                   jnp.int32(top_k), jnp.float32(top_p), jnp.int32(eos_id), jnp.asarray(banned),
                   length=length)


def generate_text(run: Any, prime: str = '', length: int = 200, *, temperature: float = 1.0,
                  top_k: int = 0, top_p: float = 1.0, seed: int = 0, num_samples: int = 1,
                  seed_index: int = 0) -> list[str]:
  """Texts from a trained language-model run (`training.saved_run.load_run(workdir)`).

  The prime is tokenised as the run's training text was (an empty prime is
  `<s>`; a model trained on documents reads `<s>` before any prime); each returned text is the prime followed by what was generated,
  detokenised. A word-level model stops at `</s>` (a line end) or after
  `length` tokens; a character-level model was never trained to end, so it
  writes exactly `length` characters. `<pad>` and `<s>` are never drawn, and
  neither are `<unk>` and `</s>` for a character-level model.
  """
  if run.config.task != 'language_model':
    raise ValueError(f'{run.workdir} is a {run.config.task!r} run, not a language model')
  level = run.config.data.level
  vocab = Vocabulary(tuple(run.preprocessing.vocabulary))
  tokens = lm_text.tokenize(prime, level, run.config.data.get('lowercase', False),
                            run.config.data.get('word_split', 'punctuation'))
  if level == 'word' and tokens and not prime.endswith('\n'):
    tokens = tokens[:-1]                       # the prime's last line goes on
  bos = np.asarray([vocab.id(lm_text.BOS)], np.int32)
  ids = vocab.encode(tokens) if tokens else bos
  if tokens and run.config.data.get('document_separator'):
    ids = np.concatenate([bos, ids])           # documents were trained from <s>
  banned = [vocab.pad_id, vocab.id(lm_text.BOS)]
  eos = vocab.id(lm_text.EOS)
  if level == 'char':
    banned += [vocab.unk_id, eos]
    eos = -1
  params, _ = run.seed(seed_index)
  prime_ids = np.tile(ids[None], (num_samples, 1))
  out, lengths = generate(run.model, params, prime_ids, np.full(num_samples, len(ids)),
                          length=length, key=jax.random.key(seed), temperature=temperature,
                          top_k=top_k, top_p=top_p, eos_id=eos, banned_ids=banned)
  out, lengths = np.asarray(out), np.asarray(lengths)
  texts = []
  for row, n in zip(out, lengths):
    generated = lm_text.detokenize(vocab.decode(row[:n]), level)
    joiner = ' ' if level == 'word' and prime and not prime[-1].isspace() and generated else ''
    texts.append(prime + joiner + generated)
  return texts
