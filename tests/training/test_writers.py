"""MetricWriter / read_metrics: a line cut short by a kill, atomic rewrite, TensorBoard flush."""

import json
import logging
import os
import struct

import pytest

from seqnets.training import writers


def write_records(workdir, steps):
  writer = writers.MetricWriter(workdir, tensorboard=False)
  for step in steps:
    writer.write(step, {'train/loss': 1.0 / step})
  writer.close()
  return workdir / 'metrics.jsonl'


def warnings_of(caplog):
  return [r.getMessage() for r in caplog.records
          if r.levelno == logging.WARNING and r.pathname == writers.__file__]


def steps_of(records):
  return [r['step'] for r in records]


def test_read_metrics_drops_a_last_line_cut_short_with_a_warning(tmp_path, caplog):
  path = write_records(tmp_path, [1, 2, 3])
  with path.open('a') as f:
    f.write('{"step": 4, "train/lo')  # killed in the middle of a write
  with caplog.at_level(logging.WARNING):
    assert steps_of(writers.read_metrics(tmp_path)) == [1, 2, 3]
  [message] = warnings_of(caplog)
  assert str(path) in message and 'line 4' in message


@pytest.mark.parametrize('tail', [b'\x00\x00\x00\x00\n', b'{"step": 4, "a": 1}{"st\n', b'[1, 2]'])
def test_other_unreadable_last_lines_are_dropped(tmp_path, caplog, tail):
  path = write_records(tmp_path, [1, 2])
  with path.open('ab') as f:
    f.write(tail)
  with caplog.at_level(logging.WARNING):
    assert steps_of(writers.read_metrics(tmp_path)) == [1, 2]
  assert 'line 3' in warnings_of(caplog)[0]


def test_a_complete_last_line_without_newline_is_kept_and_terminated(tmp_path, caplog):
  path = write_records(tmp_path, [1, 2])
  with path.open('a') as f:
    f.write('{"step": 3, "train/loss": 0.5}')  # killed just before the newline
  with caplog.at_level(logging.WARNING):
    assert steps_of(writers.read_metrics(tmp_path)) == [1, 2, 3]
    writer = writers.MetricWriter(tmp_path, tensorboard=False)
    writer.truncate_after(10)
  assert not warnings_of(caplog)
  assert path.read_text().endswith('0.5}\n')
  writer.write(4, {'train/loss': 0.25})
  writer.close()
  assert steps_of(writers.read_metrics(tmp_path)) == [1, 2, 3, 4]


@pytest.mark.parametrize('bad_line', ['{"step": 2, "train/lo', '\x00\x00', '{"train/loss": 1.0}'])
def test_an_unreadable_line_before_the_last_raises_naming_file_and_line(tmp_path, bad_line):
  path = write_records(tmp_path, [1])
  with path.open('a') as f:
    f.write(bad_line + '\n' + json.dumps({'step': 3}) + '\n')
  before = path.read_bytes()
  with pytest.raises(ValueError, match=rf'{path}: line 2 '):
    writers.read_metrics(tmp_path)
  with pytest.raises(ValueError, match=rf'{path}: line 2 '):
    writers.MetricWriter(tmp_path, tensorboard=False).truncate_after(10)
  assert path.read_bytes() == before


def test_truncate_after_drops_later_steps_and_a_cut_last_line(tmp_path, caplog):
  path = write_records(tmp_path, [1, 2, 3, 4])
  path.chmod(0o640)
  with path.open('a') as f:
    f.write('{"step": 5, "tr')
  writer = writers.MetricWriter(tmp_path, tensorboard=False)
  with caplog.at_level(logging.WARNING):
    writer.truncate_after(2)
  assert any(str(path) in m and 'line 5' in m for m in warnings_of(caplog))
  assert steps_of(writers.read_metrics(tmp_path)) == [1, 2]
  assert path.read_text().endswith('}\n')
  assert (path.stat().st_mode & 0o777) == 0o640
  assert sorted(os.listdir(tmp_path)) == ['metrics.jsonl']  # no temporary file left
  writer.write(3, {'train/loss': 0.1})
  writer.close()
  assert steps_of(writers.read_metrics(tmp_path)) == [1, 2, 3]


def test_truncate_after_replaces_the_file_atomically(tmp_path, monkeypatch):
  path = write_records(tmp_path, [1, 2, 3])
  before = path.read_bytes()
  replaced = []
  real_replace = os.replace

  def spy(src, dst):
    replaced.append((src, dst))
    assert os.path.dirname(src) == str(tmp_path) and os.path.samefile(dst, path)
    assert before == path.read_bytes()  # the old content until the very rename
    real_replace(src, dst)

  monkeypatch.setattr(writers.os, 'replace', spy)
  writers.MetricWriter(tmp_path, tensorboard=False).truncate_after(1)
  assert len(replaced) == 1 and steps_of(writers.read_metrics(tmp_path)) == [1]


def test_a_kill_during_the_rewrite_loses_no_record(tmp_path, monkeypatch):
  path = write_records(tmp_path, [1, 2, 3])
  before = path.read_bytes()

  def killed(src, dst):
    raise KeyboardInterrupt  # stands for a kill before the rename

  monkeypatch.setattr(writers.os, 'replace', killed)
  with pytest.raises(KeyboardInterrupt):
    writers.MetricWriter(tmp_path, tensorboard=False).truncate_after(1)
  assert path.read_bytes() == before
  assert sorted(os.listdir(tmp_path)) == ['metrics.jsonl']


def test_truncate_after_leaves_an_intact_file_alone(tmp_path, monkeypatch):
  path = write_records(tmp_path, [1, 2])
  monkeypatch.setattr(writers.os, 'replace', lambda *a: pytest.fail('rewrote an intact file'))
  writers.MetricWriter(tmp_path, tensorboard=False).truncate_after(2)
  writers.MetricWriter(tmp_path / 'fresh', tensorboard=False).truncate_after(0)  # no file: no-op
  assert steps_of(writers.read_metrics(tmp_path)) == [1, 2]
  assert path.read_text().count('\n') == 2


def read_event_records(path):
  """The payloads of a TFRecord file, checking its framing and checksums."""
  from tensorboardX.record_writer import masked_crc32c
  data, records, offset = path.read_bytes(), [], 0
  while offset < len(data):
    header = data[offset:offset + 8]
    (length,) = struct.unpack('<Q', header)
    (header_crc,) = struct.unpack('<I', data[offset + 8:offset + 12])
    payload = data[offset + 12:offset + 12 + length]
    (payload_crc,) = struct.unpack('<I', data[offset + 12 + length:offset + 16 + length])
    assert header_crc == masked_crc32c(header) and payload_crc == masked_crc32c(payload)
    records.append(payload)
    offset += 16 + length
  return records


def test_flush_puts_tensorboard_scalars_on_disk_without_close(tmp_path):
  pytest.importorskip('tensorboardX')
  from tensorboardX.proto import event_pb2
  writer = writers.MetricWriter(tmp_path)
  writer.flush()
  [event_file] = (tmp_path / 'tensorboard').iterdir()
  size = event_file.stat().st_size
  writer.write(7, {'seed': 1, 'train/loss': 0.25})
  writer.flush()
  assert event_file.stat().st_size > size
  scalars = []
  for payload in read_event_records(event_file):
    event = event_pb2.Event.FromString(payload)
    scalars += [(event.step, v.tag, v.simple_value) for v in event.summary.value]
  assert scalars == [(7, 'train/loss/seed_1', 0.25)]
  assert steps_of(writers.read_metrics(tmp_path)) == [7]
  writer.close()


def test_each_writer_gets_its_own_event_file(tmp_path):
  pytest.importorskip('tensorboardX')
  first, second = writers.MetricWriter(tmp_path), writers.MetricWriter(tmp_path)  # same second
  first.write(1, {'train/loss': 1.0})
  second.write(2, {'train/loss': 0.5})
  first.close()
  second.close()
  second.flush()  # after close: nothing to do
  files = sorted((tmp_path / 'tensorboard').iterdir())
  assert len(files) == 2 and all(len(read_event_records(f)) == 2 for f in files)


def test_flush_without_tensorboard_or_file(tmp_path, monkeypatch):
  synced = []  # os.fstat of every file descriptor synced
  real_fsync = os.fsync

  def spy(fd):
    synced.append(os.fstat(fd))
    real_fsync(fd)

  monkeypatch.setattr(writers.os, 'fsync', spy)
  writer = writers.MetricWriter(tmp_path, tensorboard=False)
  writer.flush()  # nothing written yet: nothing to sync, and no file or folder made
  assert synced == [] and not list(tmp_path.iterdir())
  writer.write(1, {'train/loss': 1.0})
  writer.flush()  # the metrics file, and only it (no TensorBoard events)
  assert len(synced) == 1 and os.path.samestat(synced[0], os.stat(writer.path))
  assert sorted(os.listdir(tmp_path)) == ['metrics.jsonl']
  assert steps_of(writers.read_metrics(tmp_path)) == [1]
  writer.close()


def test_null_writer_has_the_writer_interface_and_writes_nothing(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)  # anything it wrote to a relative path would land here
  writer = writers.NullWriter()
  writer.truncate_after(3)
  writer.write(4, {'train/loss': 1.0})
  writer.flush()
  writer.close()
  assert not list(tmp_path.iterdir())
