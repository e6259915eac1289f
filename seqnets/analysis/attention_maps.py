"""Attention heatmaps of an encoder-decoder: which source token each output token read.

  paths = save_attention_maps(load_run(workdir), ['ein hund läuft'], 'maps/', beam_size=5)
  plot_attention(weights [T, S], source_tokens, target_tokens, 'map.png')

One PNG per sentence: rows are the generated tokens (`</s>` included), columns
the source tokens, cell (t, s) the weight α_{t,s} of the best hypothesis.

Attention over an image (an `ImageToSequence` model, e.g. configs/digit_strings.py):
  paths = save_digit_attention_maps(load_run(workdir), 'maps/', count=4)
  save_image_attention(image [8, W, 1], weights [T, P], (H', W'), tokens, 'map.png')
One row of panels per image, one panel per output token: the image, with that
token's attention map (P = H'·W' positions, upsampled to the pixels) over it.
"""

from __future__ import annotations

import pathlib
from typing import Sequence

import numpy as np

from seqnets import plotting


def plot_attention(weights: np.ndarray, source_tokens: Sequence[str],
                   target_tokens: Sequence[str], path: str | pathlib.Path,
                   title: str | None = None) -> None:
  """Writes the heatmap of `weights [T, S]` (rows: target tokens, columns: source tokens)."""
  plt = plotting.pyplot()
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
  plotting.save_figure(fig, path)


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


def save_image_attention(image: np.ndarray, weights: np.ndarray, feature_shape: tuple[int, int],
                         tokens: Sequence[str], path: str | pathlib.Path,
                         title: str | None = None) -> None:
  """Writes one row of panels, one per token: `image [H, W, 1]` in grey under
  `weights [T, P]` row t (P = H'·W', reshaped to `feature_shape` and upsampled to
  `[H, W]`, each position a block of H/H' × W/W' pixels, coloured and opaque in
  proportion to its weight)."""
  plt = plotting.pyplot()
  image = np.asarray(image, np.float32)[..., 0]
  rows, cols = feature_shape
  height, width = image.shape
  weights = np.asarray(weights, np.float32)[:len(tokens), :rows * cols].reshape(-1, rows, cols)
  panels = max(len(tokens), 1)
  fig, axes = plt.subplots(1, panels, figsize=(max(1.6, width / 12) * panels, 1.2 + height / 12),
                           squeeze=False)
  for index, ax in enumerate(axes[0]):
    ax.imshow(image, cmap='gray', vmin=0, vmax=1, extent=(0, width, height, 0))
    if index < len(weights):
      block = np.kron(weights[index], np.ones((-(-height // rows), -(-width // cols))))
      level = block[:height, :width] / max(float(weights[index].max()), 1e-6)   # [H, W] in [0, 1]
      overlay = plt.get_cmap('inferno')(level)
      overlay[..., 3] = 0.75 * level                  # unattended pixels stay as they are
      ax.imshow(overlay, extent=(0, width, height, 0))
      ax.set_title(tokens[index], fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
  if title:
    fig.suptitle(title, fontsize=9)
  plotting.save_figure(fig, path)


def save_digit_attention_maps(run, directory: str | pathlib.Path, count: int = 4, *,
                              seed_index: int = 0) -> list[pathlib.Path]:
  """`digits_<i>.png` in `directory` for the first `count` 'validation' strings of a
  digit-images run (greedy decoding, `save_image_attention`); returns the paths."""
  from seqnets.decoding import encoder_decoder
  from seqnets.tasks import seq2seq as task_lib
  from seqnets.tasks.seq2seq import digit_images as seq2seq_digit_images
  if run.config.data.get('source') != 'digit_images':
    raise ValueError(f"{run.workdir} is not a digit-images run (data.source="
                     f"{run.config.data.get('source')!r})")
  directory = pathlib.Path(directory)
  directory.mkdir(parents=True, exist_ok=True)
  data = seq2seq_digit_images.build_data(run.config.data)
  split = {k: v[:count] for k, v in data.eval_sets['validation'].items()}
  texts = data.texts['validation'][:count]
  params, _ = run.seed(seed_index)
  _, hi = seq2seq_digit_images.digits_per_image(run.config.data)
  result = encoder_decoder.decode_arrays(
      run.model, params, split['source'], split['source_lengths'], max_length=hi + 2,
      bos_id=task_lib.BOS_ID, eos_id=task_lib.EOS_ID)
  tokens, lengths, weights = (np.asarray(a)[:, 0] for a in (result.tokens, result.lengths,
                                                             result.extras))
  vocabulary = run.preprocessing.target_vocabulary or run.preprocessing.vocabulary
  feature_shape = run.model.feature_shape(*split['source'].shape[1:3])
  paths = []
  for index, (_, target) in enumerate(texts):
    output = [vocabulary[i] for i in tokens[index, :lengths[index]]]      # </s> included
    path = directory / f'digits_{index}.png'
    save_image_attention(split['source'][index], weights[index], feature_shape, output, path,
                         title=f'target {target}')
    paths.append(path)
  return paths
