"""Confusion matrix as a PNG (matplotlib, imported only when called)."""

from __future__ import annotations

import pathlib

import numpy as np

from seqnets import plotting


def save_png(matrix: np.ndarray, path: str | pathlib.Path, title: str = '') -> None:
  """`matrix[true, predicted]` counts -> a labelled heat map with the counts written in."""
  plt = plotting.pyplot()
  matrix = np.asarray(matrix)
  size = max(3.0, 0.45 * len(matrix) + 1.5)
  fig, ax = plt.subplots(figsize=(size, size))
  ax.imshow(matrix, cmap='Blues')
  for (row, col), count in np.ndenumerate(matrix):
    ax.text(col, row, f'{count:g}', ha='center', va='center', fontsize=7,
            color='white' if count > matrix.max() / 2 else 'black')
  accuracy = np.trace(matrix) / max(matrix.sum(), 1)
  ax.set(xlabel='predicted', ylabel='true', title=f'{title} accuracy {accuracy:.4f}'.strip(),
         xticks=range(len(matrix)), yticks=range(len(matrix)))
  plotting.save_figure(fig, path)
