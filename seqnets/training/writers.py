"""Metric writers: one JSON object per line in `workdir/metrics.jsonl`, plus
TensorBoard event files through tensorboardX (no TensorFlow) when installed."""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

import numpy as np


def to_json_value(value: Any) -> Any:
  """numpy/jax scalars and arrays -> JSON values (NaN/Inf as strings JSON can hold)."""
  if isinstance(value, dict):
    return {str(k): to_json_value(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_json_value(v) for v in value]
  value = np.asarray(value).tolist() if hasattr(value, 'shape') or isinstance(value, np.generic) else value
  if isinstance(value, list):
    return [to_json_value(v) for v in value]
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)
  return value


class MetricWriter:
  """Appends `{"step": s, **metrics}` lines to `workdir/metrics.jsonl` (flushed per line)."""

  def __init__(self, workdir: str | pathlib.Path, tensorboard: bool = True):
    self.path = pathlib.Path(workdir) / 'metrics.jsonl'
    self._tb = None
    if tensorboard:
      try:
        from tensorboardX import SummaryWriter
        self._tb = SummaryWriter(str(pathlib.Path(workdir) / 'tensorboard'))
      except ImportError:
        pass

  def truncate_after(self, step: int) -> None:
    """Drops lines with `step > step` (written after the checkpoint a run resumes from)."""
    if not self.path.exists():
      return
    keep = [line for line in self.path.read_text().splitlines()
            if line.strip() and json.loads(line)['step'] <= step]
    self.path.write_text(''.join(line + '\n' for line in keep))

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    record = {'step': int(step), **to_json_value(metrics)}
    with self.path.open('a') as f:
      f.write(json.dumps(record) + '\n')
    if self._tb is not None:
      seed = record.get('seed', 0)
      for name, value in record.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name not in ('step', 'seed'):
          self._tb.add_scalar(f'{name}/seed_{seed}', value, step)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str | pathlib.Path) -> list[dict[str, Any]]:
  """All records of `workdir/metrics.jsonl`, in order."""
  path = pathlib.Path(workdir) / 'metrics.jsonl'
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
