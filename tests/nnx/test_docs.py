"""The Python blocks of docs/nnx.md run, in order, as a reader would paste them; the
training example's loss falls."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGE = ROOT / 'docs' / 'nnx.md'


def test_the_page_runs_and_the_example_learns():
  blocks = re.findall(r'```python\n(.*?)```', PAGE.read_text(), re.S)
  assert len(blocks) == 6
  namespace = {}
  for block in blocks:
    exec(compile(block, str(PAGE), 'exec'), namespace)
  losses = namespace['losses']
  assert len(losses) == 40 and losses[-1] < 0.2 * losses[0]
