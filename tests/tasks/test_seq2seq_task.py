"""The sequence-to-sequence task: synthetic problems, batches, the loss with label smoothing,
teacher-forcing schedules, training end to end, and decoding a file from the command line."""

import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from configs import reverse
from seqnets.data.seq2seq import synthetic
from seqnets.training import teacher_forcing
from seqnets.decoding import encoder_decoder
from seqnets.tasks import seq2seq
from seqnets.training import loop, saved_run

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_problems_have_the_targets_they_name():
  assert synthetic.solve('copy', 'abca') == 'abca'
  assert synthetic.solve('reverse', 'abcd') == 'dcba'
  assert synthetic.solve('sort', 'dbca') == 'abcd'
  assert synthetic.solve('addition', '407+96') == '503'
  rng = np.random.default_rng(0)
  for problem in synthetic.PROBLEMS:
    for length in (1, 3, 7):
      source, target = synthetic.make_pair(problem, rng, length, num_symbols=4)
      assert synthetic.size_of(problem, source) == length
      assert target == synthetic.solve(problem, source)
  with pytest.raises(ValueError, match="problem='rotate'"):
    synthetic.symbols('rotate', 4)


def config(**data):
  cfg = reverse.get_config('smoke')
  cfg.data.update(data)
  return cfg


def test_batches_hold_bos_target_eos_and_no_evaluation_source():
  data = seq2seq.build_data(config().data)
  vocab = data.preprocessing.vocabulary
  held_out = set()
  for split in data.eval_sets.values():
    for row, length in zip(split['source'], split['source_lengths']):
      held_out.add(''.join(vocab[i] for i in row[:length]))
  batches = data.train_batches(0, 0)
  for _ in range(20):
    batch = next(batches)
    for row in range(len(batch['source'])):
      source = ''.join(vocab[i] for i in batch['source'][row, :batch['source_lengths'][row]])
      n = batch['target_lengths'][row]
      target = [vocab[i] for i in batch['targets'][row, :n]]
      assert ''.join(target[:-1]) == source[::-1] and target[-1] == '</s>'
      inputs = [vocab[i] for i in batch['target_inputs'][row, :n]]
      assert inputs == ['<s>'] + target[:-1]
      assert batch['weights'][row].sum() == n and batch['n'][row] == len(source)
      assert source not in held_out
  again = next(seq2seq.build_data(config().data).train_batches(0, 3))
  third = next(data.train_batches(0, 3))
  for key in third:
    np.testing.assert_array_equal(again[key], third[key])
  assert set(data.eval_sets['lengths']['n'].tolist()) == set(range(2, 8))


def test_loss_with_label_smoothing_matches_its_formula():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(2, 3, 5)).astype(np.float32)
  batch = {'targets': np.array([[1, 2, 0], [3, 4, 4]]),
           'weights': np.array([[1, 1, 0], [1, 1, 1]], np.float32),
           'valid': np.ones(2, np.float32), 'label_smoothing': np.full(2, 0.1, np.float32)}
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  onehot = np.eye(5)[batch['targets']]
  smoothed = 0.9 * onehot + 0.1 / 5
  per_token = -(smoothed * log_p).sum(-1)
  loss, sums = seq2seq.loss(logits, batch)
  assert float(loss) == pytest.approx((per_token * batch['weights']).sum() / 5, rel=1e-5)
  plain, _ = seq2seq.loss(logits, {k: v for k, v in batch.items() if k != 'label_smoothing'})
  assert float(plain) == pytest.approx(
      (-(onehot * log_p).sum(-1) * batch['weights']).sum() / 5, rel=1e-5)
  assert float(sums['sequence_count']) == 2


def test_evaluation_sets_that_leave_training_too_little_are_an_error():
  with pytest.raises(ValueError, match='data.eval_examples'):
    seq2seq.build_data(config(train_lengths=(1, 2), num_symbols=2).data)


def test_teacher_forcing_schedules():
  tf = teacher_forcing.true_token_probability
  assert tf('constant', 0.75, 0, 10 ** 6) == 0.75
  assert tf('linear', 0.2, 0.01, 50) == pytest.approx(0.5) and tf('linear', 0.2, 0.01, 500) == 0.2
  assert tf('exponential', 0.0, 0.99, 100) == pytest.approx(0.99 ** 100)
  assert tf('inverse_sigmoid', 0.0, 100, 200) == pytest.approx(100 / (100 + math.exp(2)))
  with pytest.raises(ValueError, match='data.teacher_forcing_decay must be in \\(0, 1\\)'):
    teacher_forcing.validate('exponential', 0.0, 1.5)
  data = seq2seq.build_data(config(teacher_forcing_schedule='linear', teacher_forcing_ratio=0.0,
                                   teacher_forcing_decay=0.1).data)
  assert 'sampling_probability' not in next(data.train_batches(0, 0))
  np.testing.assert_allclose(next(data.train_batches(0, 5))['sampling_probability'], 0.5)


def test_config_errors_name_the_field():
  for field, value, message in [('problem', 'rotate', 'data.problem'),
                                ('train_lengths', (5, 2), r'data.train_lengths=\(5, 2\)'),
                                ('num_symbols', 30, 'data.num_symbols'),
                                ('label_smoothing', 1.0, 'data.label_smoothing'),
                                ('teacher_forcing_schedule', 'cosine',
                                 'data.teacher_forcing_schedule')]:
    with pytest.raises(ValueError, match=message):
      seq2seq.validate(config(**{field: value}).data)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  """Reverse over 4 symbols, lengths 3..5: learnt to exact match in a few hundred steps."""
  cfg = reverse.get_config('smoke')
  cfg.data.update(train_lengths=(3, 5), eval_lengths=(3, 6), num_symbols=4, batch_size=32,
                  eval_examples=32, examples_per_length=8)
  cfg.model.embedding_size = 8
  cfg.model.cell.hidden_size = 32
  cfg.optim.learning_rate = 1e-2
  cfg.train.update(num_train_steps=300, log_every_steps=100, checkpoint_every_steps=300)
  cfg.evals.validation.update(every_steps=0, batch_size=64)
  workdir = tmp_path_factory.mktemp('reverse') / 'run'
  result = loop.train_and_evaluate(cfg, workdir)
  return workdir, result.final[0]


def test_training_learns_and_reports_exact_match_by_length(trained):
  _, final = trained
  assert final['eval/validation/accuracy'] >= 0.9
  by_n = final['eval/lengths/accuracy_by_n']
  assert set(by_n) == {'3', '4', '5', '6'} and min(by_n[n] for n in '345') >= 0.9


def test_decoding_agrees_with_exact_match_and_beams_rank_by_score(trained):
  workdir, final = trained
  run = saved_run.load_run(workdir)
  rng = np.random.default_rng(5)
  pairs = synthetic.sample_pairs('reverse', rng, 40, (3, 5), num_symbols=4)
  sources = [s for s, _ in pairs]
  greedy = encoder_decoder.translate(run, sources, beam_size=1)
  batch = run.encode(pairs)
  correct = np.asarray(run.task.example_correct(run.apply(batch), batch))
  # Greedy decoding gives the target exactly when every teacher-forced arg-max is right.
  np.testing.assert_array_equal(np.array([g == t for g, (_, t) in zip(greedy, pairs)]), correct)
  beams, results = encoder_decoder.translate(run, sources, beam_size=3, return_results=True)
  scores = np.concatenate([r.scores for r in results])
  assert np.all(np.diff(scores, axis=1) <= 1e-6)                  # best first
  greedy_scores = np.concatenate(
      [r.scores for r in encoder_decoder.translate(run, sources, return_results=True)[1]])[:, 0]
  assert np.all(scores[:, 0] >= greedy_scores - 1e-5)             # the beam never does worse
  sampled = encoder_decoder.translate(run, sources, temperature=1.0, seed=4)
  assert sampled == encoder_decoder.translate(run, sources, temperature=1.0, seed=4)


def run_cli(*args):
  env = dict(os.environ, XLA_FLAGS=os.environ['SEQNETS_TEST_XLA_FLAGS'], JAX_PLATFORMS='cpu')
  return subprocess.run([sys.executable, '-m', *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=300)


def test_decode_command_writes_one_hypothesis_per_line(trained, tmp_path):
  workdir, _ = trained
  sources = tmp_path / 'sources.txt'
  sources.write_text('abcd\n\nc a d\nbbad\n', encoding='utf-8')
  output = tmp_path / 'hyp.txt'
  done = run_cli('experiments.decode', f'--workdir={workdir}', f'--input={sources}',
                 f'--output={output}', '--beam_size=2', f'--attention_dir={tmp_path / "maps"}',
                 '--attention_examples=2')
  assert done.returncode == 0, done.stderr[-2000:]
  assert sorted(p.name for p in (tmp_path / 'maps').iterdir()) == ['attention_0.png',
                                                                   'attention_1.png']
  lines = output.read_text(encoding='utf-8').split('\n')
  assert len(lines) == 5 and lines[-1] == ''                      # four lines, each ended
  library = encoder_decoder.translate(saved_run.load_run(workdir), ['abcd', '', 'c a d', 'bbad'], beam_size=2)
  assert lines[:4] == library
  bad = tmp_path / 'bad.txt'
  bad.write_bytes(b'abcd\n\xff\n')
  failed = run_cli('experiments.decode', f'--workdir={workdir}', f'--input={bad}',
                   f'--output={tmp_path / "other.txt"}')
  assert failed.returncode == 2 and 'bad.txt:2' in failed.stderr
  assert not (tmp_path / 'other.txt').exists()



def test_attention_learns_the_reversal_alignment(trained):
  """Output token t of a reversed string reads source position n − 1 − t."""
  run = saved_run.load_run(trained[0])
  pairs = synthetic.sample_pairs('reverse', np.random.default_rng(7), 32, (3, 5), num_symbols=4)
  source, lengths = seq2seq.encode_sources(run.config.data, run.preprocessing, [s for s, _ in pairs])
  params, _ = run.seed(0)
  _, [result] = encoder_decoder.decode_sources(run.model, params, source, lengths,
                                               bos_id=seq2seq.BOS_ID, eos_id=seq2seq.EOS_ID)
  hits = total = 0
  for row, n in enumerate(lengths):
    peaks = result.extras[row, 0, :n].argmax(-1)                  # [n] source position per output
    hits += int(np.sum(peaks == np.arange(n)[::-1]))
    total += int(n)
  assert hits / total >= 0.8
