"""Batches of sequence pairs for encoder-decoders, from token ids.

  batch = pair_batch(source_ids, target_ids, bos_id=2, eos_id=3, widths=(S, T), rows=64)

Layout (`[B, ...]`, padding 0):
  source `[B, S]`, source_lengths `[B]`
  target_inputs `[B, T]` = `<s> y_1 .. y_n`, targets `[B, T]` = `y_1 .. y_n </s>`,
  weights `[B, T]` (1 on the n + 1 real positions), target_lengths `[B]` = n + 1
  n `[B]` (the source length, unless `sizes` are given), valid `[B]` (1 on real rows;
  rows added to reach `rows` are all zeros and count nowhere)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def pair_batch(source_ids: Sequence[np.ndarray], target_ids: Sequence[np.ndarray], *,
               bos_id: int, eos_id: int, widths: tuple[int, int] | None = None,
               rows: int | None = None, sizes: Sequence[int] | None = None) -> dict[str, np.ndarray]:
  """The batch of the pairs (see the module docstring); `widths` (S, T) and `rows` pad
  to fixed shapes (default: the longest pair, the number of pairs). ValueError when a
  pair does not fit."""
  count = len(source_ids)
  rows = count if rows is None else rows
  if count > rows:
    raise ValueError(f'{count} pairs do not fit in {rows} rows')
  source_width = max([len(s) for s in source_ids] + [1]) if widths is None else widths[0]
  target_width = max([len(t) for t in target_ids] + [0]) + 1 if widths is None else widths[1]
  batch = {'source': np.zeros((rows, source_width), np.int32),
           'source_lengths': np.zeros(rows, np.int32),
           'target_inputs': np.zeros((rows, target_width), np.int32),
           'targets': np.zeros((rows, target_width), np.int32),
           'weights': np.zeros((rows, target_width), np.float32),
           'target_lengths': np.zeros(rows, np.int32),
           'n': np.zeros(rows, np.int32), 'valid': np.zeros(rows, np.float32)}
  for row, (source, target) in enumerate(zip(source_ids, target_ids)):
    if len(source) > source_width or len(target) + 1 > target_width:
      raise ValueError(f'pair {row} ({len(source)} source, {len(target)} target tokens) is '
                       f'longer than the batch width ({source_width}, {target_width - 1})')
    batch['source'][row, :len(source)] = source
    batch['source_lengths'][row] = len(source)
    n = len(target) + 1
    batch['target_inputs'][row, :n] = np.concatenate([[bos_id], target])
    batch['targets'][row, :n] = np.concatenate([target, [eos_id]])
    batch['weights'][row, :n] = 1
    batch['target_lengths'][row] = n
    batch['n'][row] = len(source) if sizes is None else sizes[row]
    batch['valid'][row] = 1
  return batch
