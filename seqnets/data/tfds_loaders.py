"""TFDS catalogue datasets as numpy arrays, read through `tfds.data_source` (no TensorFlow).

For users who are online: the first call downloads and prepares the dataset
in array_record format under `data_dir`. The tests use `tfds.testing.mock_data`.

Synopsis:
  train = load_images('mnist', 'train')          # {'inputs': [N, 28, 28, 1] float32 in [0, 1], 'labels': [N]}
  dev = load_texts('glue/sst2', 'validation')    # [(sentence, label), ...]
"""

from __future__ import annotations

import numpy as np


def _source(name: str, split: str, data_dir: str | None):
  import tensorflow_datasets as tfds
  if name.startswith('glue/'):
    # GLUE is not registered lazily when TensorFlow is absent; importing registers it.
    import tensorflow_datasets.text.glue  # noqa: F401
  return tfds.data_source(name, split=split, data_dir=data_dir,
                          download_and_prepare_kwargs={'file_format': 'array_record'})


def _examples(source):
  # Item by item: `tfds.testing.mock_data` does not support the batched `__getitems__`.
  for index in range(len(source)):
    yield source[index]


def load_images(name: str, split: str, data_dir: str | None = None) -> dict[str, np.ndarray]:
  """`{'inputs': [N, H, W, C] float32 = pixels / 255, 'labels': [N] int32}` (e.g. mnist, cifar10)."""
  images, labels = [], []
  for example in _examples(_source(name, split, data_dir)):
    images.append(np.asarray(example['image']))
    labels.append(int(example['label']))
  if not images:
    raise ValueError(f'TFDS {name}:{split} has no examples')
  return {'inputs': np.stack(images).astype(np.float32) / 255.0,
          'labels': np.asarray(labels, np.int32)}


def load_texts(name: str, split: str, data_dir: str | None = None,
               text_key: str = 'sentence') -> list[tuple[str, int]]:
  """`[(text, label)]`, e.g. `glue/sst2` splits 'train' / 'validation'."""
  pairs = []
  for example in _examples(_source(name, split, data_dir)):
    text = example[text_key]
    pairs.append((text.decode() if isinstance(text, bytes) else str(text), int(example['label'])))
  return pairs


def load_documents(name: str, split: str, data_dir: str | None = None,
                   text_key: str = 'text') -> list[str]:
  """Every example's text, e.g. `tiny_shakespeare` (one example per split)."""
  documents = []
  for example in _examples(_source(name, split, data_dir)):
    text = example[text_key]
    documents.append(text.decode() if isinstance(text, bytes) else str(text))
  return documents
