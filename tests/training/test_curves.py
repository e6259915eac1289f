"""Learning curves from metrics records."""

import json

from seqnets.training import curves


def test_curves_keep_losses_per_seed_and_skip_final_records(tmp_path):
  records = [
      {'step': 10, 'seed': 0, 'train/loss': 2.0, 'train/grad_norm': 5.0},
      {'step': 10, 'seed': 1, 'train/loss': 3.0},
      {'step': 20, 'seed': 0, 'train/loss': 1.5, 'eval/dev/loss': 1.7, 'eval/dev/accuracy': 0.5},
      {'step': 20, 'seed': 0, 'final': True, 'eval/dev/loss': 1.6},
  ]
  assert curves.curves(records) == {
      'train/loss': {0: [(10, 2.0), (20, 1.5)], 1: [(10, 3.0)]},
      'eval/dev/loss': {0: [(20, 1.7)]},
  }
  (tmp_path / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))
  path = curves.save_png(tmp_path)
  assert path == tmp_path / 'curves.png' and path.read_bytes()[:4] == b'\x89PNG'
