"""Counter languages (aⁿbⁿ, aⁿbⁿcⁿ, …) as next-symbol prediction tasks.

The protocol is the one of Gers & Schmidhuber (2001), "LSTM recurrent networks
learn simple context-free and context-sensitive languages", IEEE Transactions
on Neural Networks 12(6). A string of aⁿbⁿ is written ``S aⁿ bⁿ T``, with a
start symbol S and a terminal symbol T. The network reads the string one
symbol at a time, without the final T, and at every step predicts the *set* of
symbols that may legally come next. A string counts as correct only if every
prediction of every step is right. Once the first b has been read, n is known,
so everything after it is deterministic. Trained on small n, a network is then
tested on how far beyond the training range it stays correct.

Synopsis:

  lang = get_language('anbn')             # or counter_language(2)
  inputs, targets = lang.example(2)       # [5] int32, [5, 4] float32
  batch = make_batch(lang, [1, 3])        # inputs [2, 7], targets [2, 7, 4]
  it = train_batches(lang, (1, 10), batch_size=16, seed=0)
  batch = next(it)                        # same for the same (seed, step)
  ok = sequence_correct(probs > 0.5, batch['targets'], batch['lengths'])  # [B]
  max_correct_n(eval_ns, ok)              # the generalisation score

Token ids: ``PAD_ID = 0`` is padding and a language's symbols get ids
``1 .. len(symbols)`` in the order of ``Language.symbols``. Targets are indexed
by symbol without the padding slot: ``targets[..., i]`` is ``symbols[i]``.
"""

from __future__ import annotations

import dataclasses
import functools
import string
from collections.abc import Callable, Iterator, Sequence

import numpy as np

PAD_ID = 0

_START = 'S'
_END = 'T'


@dataclasses.dataclass(frozen=True)
class Language:
  """A language for next-symbol prediction. To add one, write its two functions.

  Attributes:
    name: Human-readable name, e.g. ``'a^n b^n'``.
    symbols: The alphabet, one character per symbol, e.g.
      ``('S', 'a', 'b', 'T')``. The id of ``symbols[i]`` is ``i + 1``.
    string_fn: ``n -> str``, the whole string of size n including its start
      and end symbols, one character per symbol: ``2 -> 'SaabbT'``.
    legal_next_fn: ``(prefix, n) -> frozenset[str]``, the symbols that may
      legally follow ``prefix`` (which includes the start symbol) in a string
      of size n: ``('Saa', 2) -> {'a', 'b'}``.
    min_n: The smallest n that gives a string of the language.

  Example:

    >>> lang = counter_language(2)
    >>> inputs, targets = lang.example(2)
    >>> inputs                           # S a a b b
    array([1, 2, 2, 3, 3], dtype=int32)
    >>> targets                          # columns S a b T
    array([[0., 1., 0., 0.],
           [0., 1., 1., 0.],
           [0., 1., 1., 0.],
           [0., 0., 1., 0.],
           [0., 0., 0., 1.]], dtype=float32)
  """

  name: str
  symbols: tuple[str, ...]
  string_fn: Callable[[int], str]
  legal_next_fn: Callable[[str, int], frozenset[str]]
  min_n: int = 1

  def __post_init__(self):
    if not self.symbols:
      raise ValueError(f'Language {self.name!r}: symbols is empty.')
    bad = [s for s in self.symbols if not (isinstance(s, str) and len(s) == 1)]
    if bad:
      raise ValueError(
          f'Language {self.name!r}: every symbol must be one character, got '
          f'{bad!r} in symbols={self.symbols!r}.')
    if len(set(self.symbols)) != len(self.symbols):
      raise ValueError(
          f'Language {self.name!r}: symbols={self.symbols!r} has duplicates.')

  @property
  def vocab_size(self) -> int:
    """Number of input ids, padding included: ``len(symbols) + 1``."""
    return len(self.symbols) + 1

  @property
  def num_outputs(self) -> int:
    """Size of a target vector: one entry per symbol, ``len(symbols)``."""
    return len(self.symbols)

  def input_length(self, n: int) -> int:
    """Number of input steps for size n: the string without its last symbol."""
    return len(self.string_fn(self._check_n(n))) - 1

  def example(self, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The input ids and multi-hot targets of the string of size n.

    Args:
      n: Size of the string, at least ``min_n``.

    Returns:
      ``(inputs, targets)``: inputs ``[L] int32`` are the ids of the string
      without its last symbol; targets ``[L, num_outputs] float32`` has a 1 at
      ``[t, i]`` iff ``symbols[i]`` may follow the prefix ``string[:t + 1]``.
      ``L = input_length(n)``.

    Raises:
      ValueError: if n is below ``min_n`` or the language's functions return
        a symbol outside ``symbols``.
    """
    inputs, targets = _cached_example(self, self._check_n(n))
    return inputs.copy(), targets.copy()

  def _check_n(self, n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
      raise ValueError(
          f'Language {self.name!r}: n must be an integer, got n={n!r}.')
    if n < self.min_n:
      raise ValueError(
          f'Language {self.name!r}: n={n} is below min_n={self.min_n}.')
    return int(n)

  def _index(self, symbol: str, where: str) -> int:
    try:
      return self.symbols.index(symbol)
    except ValueError:
      raise ValueError(
          f'Language {self.name!r}: {where} gave symbol {symbol!r}, which is '
          f'not in symbols={self.symbols!r}.') from None


# Examples are read-only so that the cache can hand them out without copying;
# `Language.example` copies, `make_batch` copies into its own arrays.
@functools.lru_cache(maxsize=4096)
def _cached_example(language: Language, n: int) -> tuple[np.ndarray, np.ndarray]:
  text = language.string_fn(n)
  if len(text) < 2:
    raise ValueError(
        f'Language {language.name!r}: string_fn({n}) = {text!r} has fewer '
        'than 2 symbols, so there is nothing to predict.')
  length = len(text) - 1
  inputs = np.array(
      [language._index(s, f'string_fn({n})') + 1 for s in text[:-1]],
      dtype=np.int32)
  targets = np.zeros((length, language.num_outputs), np.float32)
  for t in range(length):
    for s in language.legal_next_fn(text[:t + 1], n):
      targets[t, language._index(s, f'legal_next_fn({text[:t + 1]!r}, {n})')] = 1
  inputs.setflags(write=False)
  targets.setflags(write=False)
  return inputs, targets


def _counter_string(letters: str, n: int) -> str:
  return _START + ''.join(letter * n for letter in letters) + _END


def _counter_legal_next(letters: str, prefix: str, n: int) -> frozenset[str]:
  if not _counter_string(letters, n).startswith(prefix) or not (
      1 <= len(prefix) <= len(letters) * n + 1):
    raise ValueError(
        f'prefix={prefix!r} is not a proper prefix of the string of '
        f'n={n}, {_counter_string(letters, n)!r}.')
  last = prefix[-1]
  if last == _START:
    return frozenset(letters[0])
  j = letters.index(last)
  after_block = letters[j + 1] if j + 1 < len(letters) else _END
  if j == 0:
    # n is still unknown while reading the first block.
    return frozenset((letters[0], after_block))
  if prefix.count(last) < n:
    return frozenset(last)
  return frozenset(after_block)


def counter_language(num_letters: int) -> Language:
  """The language ``S a₁ⁿ a₂ⁿ … a_kⁿ T`` over k = ``num_letters`` letters.

  ``counter_language(2)`` is aⁿbⁿ and ``counter_language(3)`` is aⁿbⁿcⁿ,
  both with n ≥ 1. Legal next symbols: after S, {a}; after an a, {a, b} (n is
  not known yet); inside any later block, its own letter until the block has
  n letters, then the first letter of the next block, or T after the last.

  Args:
    num_letters: Number of letter blocks, 1 to 26 (the letters a, b, c, …).

  Returns:
    The ``Language``, named e.g. ``'a^n b^n c^n'``, with symbols
    ``('S', 'a', …, 'T')``.

  Example:

    >>> lang = counter_language(3)
    >>> lang.string_fn(2)
    'SaabbccT'
    >>> sorted(lang.legal_next_fn('Saabb', 2))
    ['c']
  """
  if isinstance(num_letters, bool) or not isinstance(num_letters, int) or not (
      1 <= num_letters <= 26):
    raise ValueError(
        f'num_letters must be an int in [1, 26], got num_letters={num_letters!r}.')
  letters = string.ascii_lowercase[:num_letters]
  return Language(
      name=' '.join(f'{letter}^n' for letter in letters),
      symbols=(_START, *letters, _END),
      string_fn=functools.partial(_counter_string, letters),
      legal_next_fn=functools.partial(_counter_legal_next, letters),
      min_n=1,
  )


LANGUAGES: dict[str, Callable[[], Language]] = {
    'anbn': functools.partial(counter_language, 2),
    'anbncn': functools.partial(counter_language, 3),
}


def get_language(name: str) -> Language:
  """Builds the language registered in ``LANGUAGES`` under ``name``.

  Raises:
    ValueError: if ``name`` is not registered; the message lists valid names.
  """
  if name not in LANGUAGES:
    raise ValueError(
        f'Unknown language {name!r}; valid names: {sorted(LANGUAGES)}.')
  return LANGUAGES[name]()


def make_batch(
    language: Language,
    ns: Sequence[int],
    pad_to: int | None = None,
) -> dict[str, np.ndarray]:
  """Pads the examples of sizes ``ns`` into one batch.

  Args:
    language: The language.
    ns: ``[B]`` string sizes, each at least ``language.min_n``.
    pad_to: Number of time steps T of the batch; default the longest input.

  Returns:
    A dict with ``inputs`` ``[B, T] int32`` (``PAD_ID`` past each end),
    ``targets`` ``[B, T, num_outputs] float32`` (all 0 past each end),
    ``lengths`` ``[B] int32`` (input steps of each string) and ``n``
    ``[B] int32``.

  Raises:
    ValueError: if ``ns`` is empty, an n is below ``min_n`` (the message names
      it), or ``pad_to`` is shorter than the longest input.

  Example:

    >>> b = make_batch(counter_language(2), [1, 2], pad_to=6)
    >>> b['inputs']                      # S a b · · · / S a a b b ·
    array([[1, 2, 3, 0, 0, 0],
           [1, 2, 2, 3, 3, 0]], dtype=int32)
    >>> b['lengths']
    array([3, 5], dtype=int32)
  """
  ns = [language._check_n(n) for n in ns]
  if not ns:
    raise ValueError('make_batch: ns is empty.')
  examples = [_cached_example(language, n) for n in ns]
  lengths = np.array([len(inputs) for inputs, _ in examples], np.int32)
  longest = int(lengths.max())
  if pad_to is None:
    pad_to = longest
  elif pad_to < longest:
    raise ValueError(
        f'make_batch: pad_to={pad_to} is shorter than the longest input '
        f'({longest} steps, n={ns[int(lengths.argmax())]}).')
  batch_inputs = np.full((len(ns), pad_to), PAD_ID, np.int32)
  batch_targets = np.zeros((len(ns), pad_to, language.num_outputs), np.float32)
  for b, (inputs, targets) in enumerate(examples):
    batch_inputs[b, :len(inputs)] = inputs
    batch_targets[b, :len(inputs)] = targets
  return {
      'inputs': batch_inputs,
      'targets': batch_targets,
      'lengths': lengths,
      'n': np.array(ns, np.int32),
  }


def _check_n_range(n_range: tuple[int, int], min_n: int = 0) -> tuple[int, int]:
  try:
    lo, hi = (int(v) for v in n_range)
  except (TypeError, ValueError):
    raise ValueError(f'n_range must be a pair (lo, hi), got {n_range!r}.') from None
  if lo > hi:
    raise ValueError(f'n_range={n_range!r}: lo={lo} is above hi={hi}.')
  if lo < min_n:
    raise ValueError(f'n_range={n_range!r}: lo={lo} is below min_n={min_n}.')
  return lo, hi


def sample_ns(
    rng: np.random.Generator,
    n_range: tuple[int, int],
    batch_size: int,
) -> np.ndarray:
  """Draws ``[batch_size] int32`` sizes uniformly from ``[lo, hi]``, inclusive."""
  lo, hi = _check_n_range(n_range)
  if batch_size < 1:
    raise ValueError(f'batch_size must be at least 1, got {batch_size}.')
  return rng.integers(lo, hi, size=batch_size, dtype=np.int32, endpoint=True)


def train_batches(
    language: Language,
    n_range: tuple[int, int],
    batch_size: int,
    seed: int,
    start_step: int = 0,
    full_batch: bool = False,
) -> Iterator[dict[str, np.ndarray]]:
  """Endless training batches, each a deterministic function of (seed, step).

  The batch of step s draws its sizes with ``np.random.default_rng([seed,
  s])``, so a run resumed with ``start_step=k`` sees exactly the batches that
  an uninterrupted run sees from step k on. Every batch is padded to the input
  length of the largest n in ``n_range``, so the shapes never change and a
  jitted step compiles once.

  Args:
    language: The language.
    n_range: ``(lo, hi)``, inclusive range of string sizes.
    batch_size: B, the number of strings per batch (ignored if
      ``full_batch``).
    seed: Non-negative data seed.
    start_step: Step of the first batch yielded.
    full_batch: If True, every batch holds each n of ``n_range`` once, in
      increasing order: the fixed training set of Gers & Schmidhuber (2001).

  Returns:
    An iterator of ``make_batch`` dicts with ``T = input_length(hi)``.

  Raises:
    ValueError: at the call, before any batch is made, for a bad range, batch
      size, seed or start step.
  """
  lo, hi = _check_n_range(n_range, language.min_n)
  if not full_batch and batch_size < 1:
    raise ValueError(f'batch_size must be at least 1, got {batch_size}.')
  if seed < 0:
    raise ValueError(f'seed must be non-negative, got seed={seed}.')
  if start_step < 0:
    raise ValueError(f'start_step must be non-negative, got {start_step}.')
  pad_to = language.input_length(hi)

  def batches():
    step = start_step
    while True:
      if full_batch:
        ns = np.arange(lo, hi + 1)
      else:
        ns = sample_ns(np.random.default_rng([seed, step]), (lo, hi), batch_size)
      yield make_batch(language, ns, pad_to=pad_to)
      step += 1

  return batches()


def sequence_correct(
    predictions: np.ndarray,
    targets: np.ndarray,
    lengths: np.ndarray,
) -> np.ndarray:
  """Whether every output of every step before each string's end is right.

  Positions ``t >= lengths[b]`` are ignored. Uses only operators that NumPy
  and JAX arrays share, so it also works on ``jax.Array``s inside ``jit``.

  Args:
    predictions: ``[B, T, V] bool``, the thresholded outputs (e.g.
      ``sigmoid(logits) > 0.5``).
    targets: ``[B, T, V]`` multi-hot targets (float 0/1 or bool).
    lengths: ``[B] int`` number of valid steps of each string.

  Returns:
    ``[B] bool``.

  Example: with T = 2, V = 1, ``predictions[:, :, 0] = [[1, 1], [0, 1]]``,
  ``targets[:, :, 0] = [[1, 0], [1, 1]]`` and ``lengths = [1, 2]``, the result
  is ``[True, False]``: string 0's wrong step 1 is padding, string 1's step 0
  is wrong.
  """
  if predictions.shape != targets.shape or predictions.ndim != 3:
    raise ValueError(
        f'predictions {predictions.shape} and targets {targets.shape} must '
        'have the same shape [B, T, V].')
  step_ok = (predictions == (targets > 0.5)).all(-1)  # [B, T]
  valid = lengths[:, None] > np.arange(predictions.shape[1])  # [B, T]
  return (step_ok | ~valid).all(-1)


def max_correct_n(ns: Sequence[int], correct: Sequence[bool]) -> int:
  """The largest n such that every evaluated n' ≤ n is correct.

  This is the generalisation score of Gers & Schmidhuber (2001): the size up
  to which a network is right on *all* tested strings. If an n was evaluated
  more than once, it counts as correct only if all its evaluations are.

  Args:
    ns: The evaluated sizes, in any order.
    correct: ``correct[i]`` says whether the string of size ``ns[i]`` was
      predicted correctly (e.g. from ``sequence_correct``).

  Returns:
    That n, or 0 if the smallest evaluated n is wrong (or nothing was
    evaluated).

  Example:

    >>> max_correct_n([1, 2, 3, 5, 8], [True, True, True, True, False])
    5
    >>> max_correct_n([1, 2, 3, 4], [True, True, False, True])  # 4 is isolated
    2
    >>> max_correct_n([1, 2], [False, True])
    0
  """
  ns = [int(n) for n in np.asarray(ns).reshape(-1)]
  correct = [bool(c) for c in np.asarray(correct).reshape(-1)]
  if len(ns) != len(correct):
    raise ValueError(
        f'ns has {len(ns)} entries but correct has {len(correct)}.')
  wrong = [n for n, ok in zip(ns, correct) if not ok]
  first_wrong = min(wrong, default=None)
  best = 0
  for n in ns:
    if (first_wrong is None or n < first_wrong) and n > best:
      best = n
  return best
