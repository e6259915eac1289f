"""Transferring parameters between runs: copied, mapped by vocabulary, partial, fresh; and a
language model of a task's training text initialising that task's tagger through init_from."""

import json

import jax
import numpy as np
import pytest

from configs import task_lm, wnut17
from seqnets.training import loop, saved_run
from seqnets.training.transfer import transfer_params

RNG = np.random.default_rng(0)


def test_each_rule_worked_out():
  fresh = {'embed': {'embedding': np.zeros((4, 2))}, 'layer0_cell': {
      'input_kernel': np.zeros((5, 3)), 'bias': np.zeros(3)}, 'output': {'kernel': np.zeros((3, 7))}}
  source = {'embed': {'embedding': np.arange(6.0).reshape(3, 2)}, 'layer0_cell': {
      'input_kernel': np.ones((2, 3)), 'bias': np.full(3, 2.0)}, 'output': {'kernel': np.ones((3, 9))}}
  params, report = transfer_params(fresh, source, target_vocab=('<pad>', '<unk>', 'dog', 'cat'),
                                   source_vocab=('<pad>', 'cat', 'dog'))
  np.testing.assert_array_equal(params['embed']['embedding'], [[0, 1], [0, 0], [4, 5], [2, 3]])
  np.testing.assert_array_equal(params['layer0_cell']['input_kernel'],
                                np.concatenate([np.ones((2, 3)), np.zeros((3, 3))]))
  np.testing.assert_array_equal(params['layer0_cell']['bias'], 2.0)
  np.testing.assert_array_equal(params['output']['kernel'], 0.0)
  assert report == {'copied': ['layer0_cell/bias'], 'mapped': ['embed/embedding (3 of 4 rows)'],
                    'partial': ['layer0_cell/input_kernel (2 of 5 rows)'],
                    'fresh': ['output/kernel']}


def test_nothing_in_common_is_an_error():
  with pytest.raises(ValueError, match='no parameter of the source run fits'):
    transfer_params({'a': {'kernel': np.zeros(2)}}, {'b': {'kernel': np.zeros(2)}})


def test_a_language_model_initialises_the_tagger(tmp_path, tagged_files):
  train, dev = tagged_files
  lm_cfg = task_lm.get_config('smoke')
  lm_cfg.data.update(path=str(train), eval_path=str(dev))
  loop.train_and_evaluate(lm_cfg, tmp_path / 'lm')
  lm = saved_run.load_run(tmp_path / 'lm')
  cfg = wnut17.get_config('smoke')
  cfg.data.update(train_path=str(train), eval_path=str(dev), bucket_width=32)
  cfg.model.update(char_encoder='none')
  cfg.train.num_train_steps = 1
  cfg.optim.freeze = ('embed/*', 'layer0_cell/*')          # what was copied stays as it came
  cfg.init_from = str(tmp_path / 'lm')
  result = loop.train_and_evaluate(cfg, tmp_path / 'tagger')
  tagger = jax.tree_util.tree_map(lambda a: np.asarray(a[0]), result.state.params)
  source = jax.tree_util.tree_map(lambda a: np.asarray(a[0]), lm.params)
  tagger_vocab = saved_run.load_run(tmp_path / 'tagger').preprocessing.vocabulary
  lm_vocab = lm.preprocessing.vocabulary
  shared = [t for t in tagger_vocab if t in lm_vocab]
  assert len(shared) >= len(tagger_vocab) - 1 and 'smith' in shared     # all words but <unk>?
  for token in shared:
    np.testing.assert_array_equal(tagger['embed']['embedding'][tagger_vocab.index(token)],
                                  source['embed']['embedding'][lm_vocab.index(token)])
  for name, value in source['layer0_cell'].items():
    np.testing.assert_array_equal(tagger['layer0_cell'][name], value)
  report = json.loads((tmp_path / 'tagger' / 'transfer.json').read_text())
  assert report['init_from'] == str(tmp_path / 'lm')
  assert any(p.startswith('embed/embedding') for p in report['mapped'])
  assert 'output/kernel' in report['fresh'] and any('backward' in p for p in report['fresh'])
