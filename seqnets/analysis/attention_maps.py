"""Attention heatmaps of an encoder-decoder: which source token each output token read.

  paths = save_attention_maps(load_run(workdir), ['ein hund läuft'], 'maps/', beam_size=5)
  plot_attention(weights [T, S], source_tokens, target_tokens, 'map.png')

One PNG per sentence: rows are the generated tokens (`</s>` included), columns
the source tokens, cell (t, s) the weight α_{t,s} of the best hypothesis.
"""

from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np


def plot_attention(weights: np.ndarray, source_tokens: Sequence[str],
                   target_tokens: Sequence[str], path: str | pathlib.Path,
                   title: str | None = None) -> None:
  """Writes the heatmap of `weights [T, S]` (rows: target tokens, columns: source tokens)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  weights = np.asarray(weights)[:len(target_tokens), :len(source_tokens)]
  height = max(2.5, 0.3 * len(target_tokens) + 1.2)
  width = max(3.0, 0.3 * len(source_tokens) + 1.8)
  fig, ax = plt.subplots(figsize=(width, height))
  image = ax.imshow(weights, cmap='viridis', vmin=0, vmax=1, aspect='auto')
  ax.set_xticks(range(len(source_tokens)), list(source_tokens), rotation=90, fontsize=8)
  ax.set_yticks(range(len(target_tokens)), list(target_tokens), fontsize=8)
  ax.set(xlabel='source', ylabel='output')
  if title:
    ax.set_title(title, fontsize=9)
  fig.colorbar(image, ax=ax, fraction=0.04)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def save_attention_maps(run, lines: Sequence[str], directory: str | pathlib.Path, *,
                        beam_size: int = 1, length_penalty: float = 0.0, max_length: int = 0,
                        seed_index: int = 0) -> list[pathlib.Path]:
  """`attention_<i>.png` in `directory` for every line (decoded as `translate` does);
  returns the paths. A model without attention weights (all zero) gives blank maps."""
  from seqnets.decoding import encoder_decoder
  from seqnets.tasks import seq2seq as task_lib
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  source, source_lengths = task_lib.encode_sources(run.config.data, run.preprocessing, list(lines))
  params, _ = run.seed(seed_index)
  _, results = encoder_decoder.decode_sources(
      run.model, params, source, source_lengths, bos_id=task_lib.BOS_ID, eos_id=task_lib.EOS_ID,
      beam_size=beam_size, length_penalty=length_penalty, max_length=max_length)
  weights = np.concatenate([r.extras[:, 0] for r in results]) if results else []
  tokens = np.concatenate([r.tokens[:, 0] for r in results]) if results else []
  lengths = np.concatenate([r.lengths[:, 0] for r in results]) if results else []
  source_vocab = run.preprocessing.vocabulary
  target_vocab = run.preprocessing.target_vocabulary or source_vocab
  paths = []
  for index, line in enumerate(lines):
    n = int(source_lengths[index])
    source_tokens = [source_vocab[i] for i in source[index, :n]]
    target_tokens = [target_vocab[i] for i in tokens[index, :lengths[index]]]   # </s> included
    path = directory / f'attention_{index}.png'
    plot_attention(weights[index], source_tokens, target_tokens, path, title=line[:60])
    paths.append(path)
  return paths
