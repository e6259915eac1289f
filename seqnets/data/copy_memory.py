"""Copy-memory sequences (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): 10 data
symbols, a delay of T blanks, a delimiter, then the same symbols as targets.

  inputs   d_1 … d_10   T − 1 blanks   delimiter   10 blanks        [B, T + 20] int32
  targets  T + 10 blanks                            d_1 … d_10      [B, T + 20] int32

Symbols 0..7 are data, 8 the blank, 9 the delimiter. The task (objective, metrics, config)
is `seqnets.tasks.copy_memory`.
"""

from __future__ import annotations

import math

import numpy as np

NUM_DATA_SYMBOLS = 8
BLANK, DELIMITER = 8, 9
VOCAB_SIZE = 10
COPY_LENGTH = 10


def sequence_length(delay: int) -> int:
  """T + 20."""
  return delay + 2 * COPY_LENGTH


def baseline_loss(delay: int) -> float:
  """The memoryless loss, `10 log 8 / (T + 20)` nats per step."""
  return COPY_LENGTH * math.log(NUM_DATA_SYMBOLS) / sequence_length(delay)


def make_batch(symbols: np.ndarray, delay: int) -> dict[str, np.ndarray]:
  """`symbols [B, 10]` (ints in 0..7) -> the batch of their copy sequences for delay T."""
  symbols = np.asarray(symbols, np.int32)
  count, length = len(symbols), sequence_length(delay)
  inputs = np.full((count, length), BLANK, np.int32)
  inputs[:, :COPY_LENGTH] = symbols
  inputs[:, delay + COPY_LENGTH - 1] = DELIMITER
  targets = np.full((count, length), BLANK, np.int32)
  targets[:, -COPY_LENGTH:] = symbols
  return {'inputs': inputs, 'targets': targets, 'lengths': np.full(count, length, np.int32)}


def random_symbols(rng: np.random.Generator, count: int) -> np.ndarray:
  return rng.integers(0, NUM_DATA_SYMBOLS, (count, COPY_LENGTH), dtype=np.int32)
