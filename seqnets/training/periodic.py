"""When periodic work is due, and a progress bar."""

from __future__ import annotations

import sys

import tqdm


def due(step: int, every: int | None, total: int) -> bool:
  """True every `every` steps and always at the last step (`step` counts done steps).

  `due(100, 50, 120)` and `due(120, 50, 120)` are True; `due(110, 50, 120)` is not.
  `every` of 0 or None means only at the end.
  """
  return step == total or bool(every) and step % every == 0


def progress_bar(start: int, total: int, description: str, enabled: bool = True) -> tqdm.tqdm:
  """A tqdm bar on stderr (updates at most once a second; off when stderr is not a
  terminal, and when not `enabled`, e.g. on every process but the first)."""
  return tqdm.tqdm(initial=start, total=total, desc=description, file=sys.stderr,
                   mininterval=1.0, dynamic_ncols=True, leave=False, disable=None if enabled else True)
