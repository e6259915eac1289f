"""Metric writers: one JSON object per line in `workdir/metrics.jsonl`, plus
TensorBoard event files (protos from tensorboardX, no TensorFlow) when installed.

A kill in the middle of `write` can leave the last line of `metrics.jsonl` cut
short. `read_metrics` and `MetricWriter.truncate_after` drop such a last line and
report it with `absl.logging.warning` (file and line number); an unreadable line
anywhere else raises ValueError.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import pathlib
import socket
import struct
import time
from typing import Any

import numpy as np
from absl import logging

from seqnets import files


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
  """Appends `{"step": s, **metrics}` lines to `workdir/metrics.jsonl` (flushed per line).

  Into an existing file, call `truncate_after` before the first `write`: it also
  removes a line cut short by a kill, which the next line would otherwise extend.
  """

  def __init__(self, workdir: str | pathlib.Path, tensorboard: bool = True):
    self.path = pathlib.Path(workdir) / 'metrics.jsonl'
    self._tb = None
    if tensorboard:
      try:
        self._tb = _EventFile(pathlib.Path(workdir) / 'tensorboard')
      except ImportError:
        pass

  def truncate_after(self, step: int) -> None:
    """Drops lines with `step > step` (written after the checkpoint a run resumes from).

    Also drops a damaged last line (with a warning) and ends the file with a
    newline. The file is replaced atomically (temporary file in the same
    directory, then `os.replace`), so a kill during the rewrite loses no record;
    it is not rewritten when nothing changes.
    """
    if not self.path.exists():
      return
    data = self.path.read_bytes()
    kept = b''.join(line + b'\n' for _, line, record in _read_lines(self.path, data)
                    if record['step'] <= step)
    if kept != data:
      files.write_atomically(self.path, kept)

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    record = {'step': int(step), **to_json_value(metrics)}
    with self.path.open('a') as f:
      f.write(json.dumps(record) + '\n')
    if self._tb is not None:
      seed = record.get('seed', 0)
      self._tb.add_scalars(step, {
          f'{name}/seed_{seed}': value for name, value in record.items()
          if isinstance(value, (int, float)) and not isinstance(value, bool)
          and name not in ('step', 'seed')})

  def flush(self) -> None:
    """Puts everything written so far on disk (fsync): the TensorBoard events and `metrics.jsonl`.

    The training loop calls it whenever it writes a checkpoint, so the metrics
    on disk reach at least as far as the newest checkpoint. (Between flushes,
    every `write` already hands both files to the OS, which a killed process
    cannot lose.)
    """
    if self._tb is not None:
      self._tb.flush()
    if self.path.exists():
      with self.path.open('rb') as f:
        os.fsync(f.fileno())

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


class NullWriter:
  """The `MetricWriter` interface, writing nothing (for processes other than the primary one)."""

  def truncate_after(self, step: int) -> None:
    del step

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    del step, metrics

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


class _EventFile:
  """Scalars in a TensorBoard event file, written synchronously.

  (tensorboardX's `SummaryWriter` hands events to a thread that its `flush()`
  does not wait for, so a flushed file can still miss the last scalars.) Each
  record is framed as TFRecord: uint64 length, masked crc32c of it, the
  serialized `Event`, masked crc32c of that.
  """

  _count = itertools.count()

  def __init__(self, logdir: pathlib.Path):
    from tensorboardX import summary
    from tensorboardX.proto import event_pb2, summary_pb2
    from tensorboardX.record_writer import masked_crc32c
    self._summary, self._summary_pb2, self._event_pb2 = summary, summary_pb2, event_pb2
    self._crc = masked_crc32c
    logdir.mkdir(parents=True, exist_ok=True)
    self.path = logdir / (f'events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.'
                          f'{os.getpid()}.{next(self._count)}')
    self._file = self.path.open('xb')
    self._write(self._event_pb2.Event(wall_time=time.time(), file_version='brain.Event:2'))

  def add_scalars(self, step: int, scalars: dict[str, float]) -> None:
    """One event holding all `scalars` (tag -> value), handed to the OS at once."""
    if not scalars:
      return
    values = [v for tag, value in scalars.items() for v in self._summary.scalar(tag, value).value]
    self._write(self._event_pb2.Event(wall_time=time.time(), step=int(step),
                                      summary=self._summary_pb2.Summary(value=values)))

  def flush(self) -> None:
    if not self._file.closed:
      self._file.flush()
      os.fsync(self._file.fileno())

  def close(self) -> None:
    if not self._file.closed:
      self._file.close()

  def _write(self, event) -> None:
    data = event.SerializeToString()
    header = struct.pack('<Q', len(data))
    self._file.write(header + struct.pack('<I', self._crc(header)) + data
                     + struct.pack('<I', self._crc(data)))
    self._file.flush()


def read_metrics(workdir: str | pathlib.Path) -> list[dict[str, Any]]:
  """All records of `workdir/metrics.jsonl`, in order (a damaged last line is dropped with a warning)."""
  path = pathlib.Path(workdir) / 'metrics.jsonl'
  return [record for _, _, record in _read_lines(path, path.read_bytes())]


def _read_lines(path: pathlib.Path, data: bytes) -> list[tuple[int, bytes, dict[str, Any]]]:
  """`(line number, line, record)` for the non-blank lines of `data` (the content of `path`).

  A last line that is not a JSON object with an integer "step" is dropped with
  a warning; such a line before the last raises ValueError naming `path` and the line.
  """
  lines = [(i + 1, line) for i, line in enumerate(data.split(b'\n')) if line.strip()]
  parsed = []
  for k, (number, line) in enumerate(lines):
    record = _parse(line)
    if record is None:
      if k == len(lines) - 1:
        logging.warning('%s: dropping damaged last line %d (a write cut short?): %r',
                        path, number, line[:200])
        break
      raise ValueError(f'{path}: line {number} is not a JSON record with a "step": {line[:200]!r}')
    parsed.append((number, line, record))
  return parsed


def _parse(line: bytes) -> dict[str, Any] | None:
  try:
    record = json.loads(line.decode('utf-8'))
  except ValueError:  # Includes UnicodeDecodeError and JSONDecodeError.
    return None
  if not isinstance(record, dict):
    return None
  step = record.get('step')
  return record if isinstance(step, int) and not isinstance(step, bool) else None
