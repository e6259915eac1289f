"""Synthetic sequence-to-sequence problems generated on the fly: copy, reverse, sort, addition.

Synopsis:
  pairs = sample_pairs('reverse', rng, count=64, lengths=(5, 20), num_symbols=10)
  # [('cbhad', 'dahbc'), ...]: one character per symbol
  source, target = make_pair('addition', rng, length=3)   # ('407+96', '503')

Problems (a string of n symbols from the first `num_symbols` letters a, b, ...):
  copy      the string itself
  reverse   the string backwards
  sort      its symbols in alphabetical order
  addition  two numbers of 1..n digits each (the first exactly n, so n is the size of
            the problem), written `x+y` in decimal; the target is their sum
The size n of a pair is its `length` (the string's length; the first addend's digits).
"""

from __future__ import annotations

import string

import numpy as np

PROBLEMS = ('copy', 'reverse', 'sort', 'addition')
DIGITS = string.digits


def symbols(problem: str, num_symbols: int) -> str:
  """The characters the problem's sources and targets use."""
  check_problem(problem)
  if problem == 'addition':
    return DIGITS + '+'
  if not 1 <= num_symbols <= 26:
    raise ValueError(f'num_symbols={num_symbols} must be in [1, 26]')
  return string.ascii_lowercase[:num_symbols]


def check_problem(problem: str) -> None:
  if problem not in PROBLEMS:
    raise ValueError(f'problem={problem!r}; valid: {list(PROBLEMS)}')


def _number(rng: np.random.Generator, digits: int) -> int:
  if digits == 1:
    return int(rng.integers(0, 10))
  return int(rng.integers(10 ** (digits - 1), 10 ** digits))


def solve(problem: str, source: str) -> str:
  """The target of `source` (ValueError for a source the problem cannot read)."""
  check_problem(problem)
  if problem == 'copy':
    return source
  if problem == 'reverse':
    return source[::-1]
  if problem == 'sort':
    return ''.join(sorted(source))
  parts = source.split('+')
  if len(parts) != 2 or not all(p.isdigit() for p in parts):
    raise ValueError(f'{source!r} is not an addition x+y of two decimal numbers')
  return str(int(parts[0]) + int(parts[1]))


def make_pair(problem: str, rng: np.random.Generator, length: int,
              num_symbols: int = 10) -> tuple[str, str]:
  """One (source, target) of size `length`."""
  if problem == 'addition':
    other = int(rng.integers(1, length + 1))
    source = f'{_number(rng, length)}+{_number(rng, other)}'
  else:
    alphabet = symbols(problem, num_symbols)
    source = ''.join(alphabet[i] for i in rng.integers(0, len(alphabet), length))
  return source, solve(problem, source)


def sample_pairs(problem: str, rng: np.random.Generator, count: int, lengths: tuple[int, int],
                 num_symbols: int = 10, exclude: frozenset[str] = frozenset()
                 ) -> list[tuple[str, str]]:
  """`count` pairs of sizes uniform in `lengths` (inclusive), none with a source in `exclude`."""
  pairs = []
  while len(pairs) < count:
    length = int(rng.integers(lengths[0], lengths[1] + 1))
    pair = make_pair(problem, rng, length, num_symbols)
    if pair[0] not in exclude:
      pairs.append(pair)
  return pairs


def size_of(problem: str, source: str) -> int:
  """n of a source: its length, or the first addend's digits."""
  return len(source.split('+')[0]) if problem == 'addition' else len(source)


def num_sources(problem: str, lengths: tuple[int, int], num_symbols: int = 10) -> int:
  """How many distinct sources have a size in `lengths` (inclusive)."""
  total = 0
  for n in range(lengths[0], lengths[1] + 1):
    if problem == 'addition':
      firsts = 10 if n == 1 else 9 * 10 ** (n - 1)
      seconds = sum(10 if m == 1 else 9 * 10 ** (m - 1) for m in range(1, n + 1))
      total += firsts * seconds
    else:
      total += num_symbols ** n
  return total
