"""Smoke test of `python -m benchmarks.lm_bench` (needs PyTorch): both sides train the same
model shape from the same first loss; no timing asserts."""

import json
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip('torch')
ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_quick_run_writes_both_sides_and_the_ratio(tmp_path):
  subprocess.run([sys.executable, '-m', 'benchmarks.lm_bench', '--quick', f'--out={tmp_path}'],
                 cwd=ROOT, check=True, capture_output=True, timeout=300)
  results = json.loads((tmp_path / 'lm_bench.json').read_text())
  assert [r['model'] for r in results] == ['char', 'word']
  for r in results:
    # Untrained, both predict about uniformly: the first loss is near log(vocab) on each side.
    for side in ('seqnets', 'torch'):
      assert r['first_loss'][side] == pytest.approx(r['first_loss']['seqnets'], rel=0.2)
      assert r[side]['tokens_per_s'] > 0
    assert r['ratio'] > 0
  assert '| char |' in (tmp_path / 'lm_bench.md').read_text()
