"""Parameter names of earlier versions, renamed to today's when a checkpoint is read.

Stacked recurrences share one naming scheme (`seqnets.models.recurrent_stack`): layer i's
forward cell is `<prefix>{i}_cell`, its backward cell `<prefix>{i}_backward_cell`. Earlier,
the bidirectional recurrent tagger and the bidirectional seq2seq encoder named the forward
cell `layer{i}_forward_cell` / `encoder{i}_forward_cell`; no model names a module so now,
so the rename is unambiguous. It applies to every dict key in a state (parameters and the
optimizer's moments, which mirror them).
"""

from __future__ import annotations

import re
from typing import Any

RENAMES = ((re.compile(r'^(layer|encoder)(\d+)_forward_cell$'), r'\1\2_cell'),)


def rename_key(key: str) -> str:
  for pattern, replacement in RENAMES:
    key = pattern.sub(replacement, key)
  return key


def rename(tree: Any) -> Any:
  """`tree` (nested dicts, as `flax.serialization.to_state_dict` gives) with every key that
  an earlier version wrote renamed; other values untouched."""
  if isinstance(tree, dict):
    return {rename_key(k) if isinstance(k, str) else k: rename(v) for k, v in tree.items()}
  return tree


def is_renamed(tree: Any) -> bool:
  """True when `rename(tree)` differs from `tree` (it holds names of an earlier version)."""
  if isinstance(tree, dict):
    return any((isinstance(k, str) and rename_key(k) != k) or is_renamed(v)
               for k, v in tree.items())
  return False
