"""scikit-learn's handwritten digits: 1,797 grey 8×8 images shipped inside the package.

The offline image dataset of seqnets (no download). Needs the `sklearn` extra.

Synopsis:
  train, test = load_split(test_fraction=0.2, seed=0)
  train['images']: [N, 8, 8, 1] float32 in [0, 1];  train['labels']: [N] int32 in 0..9
"""

from __future__ import annotations

import numpy as np


def load() -> dict[str, np.ndarray]:
  """All 1,797 digits: `images [N, 8, 8, 1] float32` (pixel / 16), `labels [N] int32`."""
  try:
    from sklearn import datasets
  except ImportError as e:
    raise ImportError('the digits dataset needs scikit-learn: pip install "seqnets[sklearn]"') from e
  digits = datasets.load_digits()
  return {'images': (digits.images[..., None] / 16.0).astype(np.float32),
          'labels': digits.target.astype(np.int32)}


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Indices `(train, test)`: each class split in the same proportion, shuffled by `seed`.

  Per class c with m_c examples, round(test_fraction · m_c) go to the test set.
  """
  if not 0.0 < test_fraction < 1.0:
    raise ValueError(f'test_fraction must be in (0, 1), got {test_fraction}')
  rng = np.random.default_rng(seed)
  train, test = [], []
  for label in np.unique(labels):
    members = rng.permutation(np.flatnonzero(labels == label))
    cut = int(round(test_fraction * len(members)))
    test.append(members[:cut])
    train.append(members[cut:])
  return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def load_split(test_fraction: float = 0.2, seed: int = 0) -> tuple[dict, dict]:
  """`(train, test)` dicts of `images`, `labels` from a stratified split."""
  data = load()
  train, test = stratified_split(data['labels'], test_fraction, seed)
  return ({k: v[train] for k, v in data.items()}, {k: v[test] for k, v in data.items()})
