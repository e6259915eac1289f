"""Files of one sentence per line: the sources a decoder reads and the hypotheses it writes."""

from __future__ import annotations

import pathlib

from seqnets import files
from seqnets.data import text_file


def read_lines(path: str | pathlib.Path) -> list[str]:
  """Every line of `path`, blank ones too, without its line end (ValueError naming file and
  line for bad UTF-8)."""
  return text_file.read_text(path).splitlines()


def write_lines(path: str | pathlib.Path, lines: list[str]) -> None:
  """`lines`, each ended by a newline (a newline inside one becomes a space), written
  atomically in UTF-8: one output line per item, in order."""
  files.write_atomically(path, ''.join(line.replace('\n', ' ') + '\n' for line in lines))
