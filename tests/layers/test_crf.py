"""CRF against brute-force enumeration of every path in NumPy: log Z, the likelihood, Viterbi
and its score; padding never changes a result; BIO constraints are obeyed by both the
likelihood and Viterbi; gradients are finite and training recovers the tags; jit works.

Most checks go through one compiled function (`outputs`) on shared shapes, so the file
compiles only a handful of programs."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from seqnets.layers.crf import CRF, bio_constraints

BIO_NAMES = ['O', 'B-PER', 'I-PER', 'B-LOC', 'I-LOC']
BIO = bio_constraints(BIO_NAMES)
K, T = len(BIO_NAMES), 4
LENGTHS = np.array([4, 1, 0, 3, 2])
close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-5)


@functools.partial(jax.jit, static_argnames='crf')
def outputs(crf, p, emissions, tags, lengths):
  """Every method at once, and the gradient of the mean negative log-likelihood."""
  def loss(p, emissions):
    ll = crf.apply(p, emissions, tags, lengths, method='log_likelihood')
    return -ll.mean(), ll

  (_, ll), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(p, emissions)
  best, best_score = crf.apply(p, emissions, lengths)                   # __call__ = decode
  return dict(log_z=crf.apply(p, emissions, lengths, method='log_partition'),
              score=crf.apply(p, emissions, tags, lengths, method='score'), ll=ll,
              best=best, best_score=best_score, grads=grads)


@functools.partial(jax.jit, static_argnames='crf')
def decode(crf, p, emissions, lengths):
  return crf.apply(p, emissions, lengths, method='decode')


@functools.partial(jax.jit, static_argnames='crf')
def log_likelihood(crf, p, emissions, tags, lengths):
  return crf.apply(p, emissions, tags, lengths, method='log_likelihood')


def random_params(k=K, seed=0, scale=1.0):
  rng = np.random.default_rng(seed)
  return {'params': {'transitions': scale * rng.normal(size=(k, k)).astype(np.float32),
                     'start': scale * rng.normal(size=k).astype(np.float32),
                     'end': scale * rng.normal(size=k).astype(np.float32)}}


def zero_params(k=K):
  return jax.tree.map(np.zeros_like, random_params(k))


def random_emissions(b=len(LENGTHS), t=T, k=K, seed=1, scale=1.0):
  return (scale * np.random.default_rng(seed).normal(size=(b, t, k))).astype(np.float32)


def np_score(p, e, path):
  """s(path) for one row's emissions e [≥n, K] (n = len(path)), straight from the definition."""
  if not path:
    return 0.0
  s = p['start'][path[0]] + p['end'][path[-1]]
  s += sum(e[t, y] for t, y in enumerate(path))
  s += sum(p['transitions'][a, b] for a, b in zip(path, path[1:]))
  return float(s)


def path_allowed(allowed, path):
  if not path or allowed is None:
    return True
  start, transitions, end = (np.asarray(a) for a in allowed)
  return bool(start[path[0]] and end[path[-1]]
              and all(transitions[a, b] for a, b in zip(path, path[1:])))


def np_logsumexp(x):
  m = x.max()
  return m + np.log(np.exp(x - m).sum())


def np_crf(p, emissions, lengths, allowed=None):
  """-> log Z [B], best path per row and its score [B], enumerating the (allowed) paths."""
  p = p['params']
  log_z, best, best_score = [], [], []
  for e, n in zip(emissions, lengths):
    paths = [y for y in itertools.product(range(e.shape[-1]), repeat=int(n))
             if path_allowed(allowed, y)]
    scores = np.array([np_score(p, e, y) for y in paths])
    log_z.append(np_logsumexp(scores))
    best.append(paths[int(np.argmax(scores))])
    best_score.append(scores.max())
  return np.array(log_z), best, np.array(best_score)


def padded(paths, t=T):
  return np.array([list(y) + [0] * (t - len(y)) for y in paths], np.int32)


@pytest.mark.parametrize('k,allowed,scale', [(3, None, 1.0), (K, None, 1.0), (K, BIO, 3.0)],
                         ids=['free-3', 'free-5', 'bio-5'])
def test_matches_enumeration(k, allowed, scale):
  """log Z, s(y), log p(y) = s(y) − log Z, Viterbi path and score; with BIO constraints the
  enumeration is restricted to allowed paths (scaled-up scores favour forbidden ones)."""
  crf = CRF(k, allowed=allowed)
  p = random_params(k, seed=k, scale=scale)
  e = random_emissions(k=k, scale=scale)
  tags = np.random.default_rng(2).integers(0, k, size=(len(LENGTHS), T))
  got = outputs(crf, p, e, tags, LENGTHS)
  log_z, best, best_score = np_crf(p, e, LENGTHS, allowed)
  close(got['log_z'], log_z)
  if allowed is None:
    scores = [np_score(p['params'], e[b], tuple(tags[b, :n])) for b, n in enumerate(LENGTHS)]
    close(got['score'], scores)
    close(got['ll'], np.array(scores) - log_z)
  assert got['ll'][2] == 0.0 and got['log_z'][2] == 0.0          # length 0
  assert got['best'].dtype == jnp.int32 and got['best'].shape == (len(LENGTHS), T)
  np.testing.assert_array_equal(got['best'], padded(best))
  close(got['best_score'], best_score)
  best_again = outputs(crf, p, e, np.asarray(got['best']), LENGTHS)
  close(best_again['score'], got['best_score'])                  # decode's score = s(ŷ)


@pytest.mark.parametrize('allowed', [None, BIO], ids=['free', 'bio'])
def test_probabilities_of_all_paths_sum_to_one(allowed):
  crf = CRF(K, allowed=allowed)
  p = random_params()
  rows = [(n, y) for n in (0, 1, 2, 4) for y in itertools.product(range(K), repeat=n)]
  e = np.repeat(random_emissions(1), len(rows), axis=0)
  lengths = np.array([n for n, _ in rows])
  ll = np.asarray(log_likelihood(crf, p, e, padded([y for _, y in rows]), lengths), np.float64)
  ok = np.array([path_allowed(allowed, y) for _, y in rows])
  for n in (0, 1, 2, 4):
    close(np.exp(ll[lengths == n]).sum(), 1.0)
    close(np.exp(ll[(lengths == n) & ok]).sum(), 1.0)    # forbidden paths carry no probability
  assert np.all(ll[~ok] < -1e3)


def test_padding_never_changes_a_result():
  extra = 3
  crf = CRF(K, allowed=BIO)
  p = random_params(seed=3)
  e = random_emissions()
  tags = np.random.default_rng(4).integers(0, K, size=(len(LENGTHS), T))
  mask = np.arange(T + extra)[None] < LENGTHS[:, None]
  rng = np.random.default_rng(5)
  e_pad = np.concatenate([e, np.zeros((len(LENGTHS), extra, K), np.float32)], axis=1)
  garbage = rng.choice([np.nan, np.inf, -np.inf, 1e30, -7.0], size=e_pad.shape)
  e_pad = np.where(mask[..., None], e_pad, garbage).astype(np.float32)
  tags_pad = np.concatenate([tags, np.zeros((len(LENGTHS), extra), int)], axis=1)
  tags_pad = np.where(mask, tags_pad, rng.choice([-5, 99, 1, 3], size=tags_pad.shape))

  ref = outputs(crf, p, e, tags, LENGTHS)
  got = outputs(crf, p, e_pad, tags_pad, LENGTHS)
  for name in ('log_z', 'score', 'll', 'best_score'):
    close(got[name], ref[name])
  np.testing.assert_array_equal(got['best'], np.pad(ref['best'], ((0, 0), (0, extra))))
  jax.tree.map(close, got['grads'][0], ref['grads'][0])
  close(got['grads'][1][:, :T], ref['grads'][1])
  assert np.all(np.asarray(got['grads'][1])[~mask] == 0.0)


def test_bio_viterbi_avoids_forbidden_paths_worked_example():
  #                  O  B-PER I-PER B-LOC I-LOC
  e = 100.0 * np.array([[[0, 1, 9, 0, 0],     # unconstrained best: I-PER I-LOC I-PER (2700)
                         [5, 0, 0, 0, 9],
                         [0, 0, 9, 0, 3]]], np.float32)
  one = np.array([3])
  free_tags, free_score = decode(CRF(K), zero_params(), e, one)
  np.testing.assert_array_equal(free_tags, [[2, 4, 2]])
  close(free_score, [2700.0])
  tags, score = decode(CRF(K, allowed=BIO), zero_params(), e, one)
  # Allowed: B-LOC I-LOC I-LOC (1200) beats B-PER I-PER I-PER (1000) and B-PER O O (600).
  np.testing.assert_array_equal(tags, [[3, 4, 4]])
  close(score, [1200.0])


def test_bio_viterbi_never_outputs_a_forbidden_path():
  b = 300
  e = random_emissions(b, seed=9, scale=20.0)
  lengths = np.random.default_rng(10).integers(0, T + 1, size=b)
  tags, _ = decode(CRF(K, allowed=BIO), random_params(seed=7, scale=3.0), e, lengths)
  assert all(path_allowed(BIO, tuple(row[:n])) for row, n in zip(np.asarray(tags), lengths))
  # ... although the emissions alone favour a forbidden path in most rows.
  favoured = e.argmax(-1)
  assert np.mean([not path_allowed(BIO, tuple(row[:n]))
                  for row, n in zip(favoured, lengths)]) > 0.4


@pytest.mark.parametrize('allowed', [None, BIO], ids=['free', 'bio'])
def test_gradients_are_finite(allowed):
  crf = CRF(K, allowed=allowed)
  # Gold rows 0, 1 and 3 are forbidden under BIO; row 2 has length 0.
  tags = np.array([[2, 4, 1, 2], [2, 0, 0, 0], [0, 0, 0, 0], [0, 2, 2, 0], [1, 2, 0, 0]])
  got = outputs(crf, random_params(), random_emissions(), tags, LENGTHS)
  assert np.all(np.isfinite(got['ll']))
  for g in jax.tree.leaves(got['grads']):
    assert np.all(np.isfinite(g))
  if allowed is not None:                            # forbidden parameters get no gradient
    assert got['ll'][0] < -1e3 and got['ll'][4] > -1e3
    for name, a in zip(('start', 'transitions', 'end'), allowed):
      assert np.all(np.asarray(got['grads'][0]['params'][name])[~np.asarray(a)] == 0.0)


def test_training_recovers_the_tags():
  # 'york' is I-LOC after 'new' and B-LOC alone: only the transitions can tell them apart.
  words = ['<pad>', 'john', 'smith', 'lives', 'in', 'new', 'york', 'paris']
  sentences = [(['john', 'smith', 'lives', 'in', 'new', 'york'], [1, 2, 0, 0, 3, 4]),
               (['york', 'lives', 'in', 'paris'], [3, 0, 0, 3]),
               (['john', 'in', 'new', 'york'], [1, 0, 3, 4]),
               (['john'], [1])]
  t = 7
  tokens = np.array([[words.index(w) for w in s] + [0] * (t - len(s)) for s, _ in sentences])
  gold = np.array([y + [0] * (t - len(y)) for _, y in sentences])
  lengths = np.array([len(y) for _, y in sentences])

  class Tagger(nn.Module):
    def setup(self):
      self.embed = nn.Embed(len(words), K)
      self.crf = CRF(K)

    def loss(self, tokens, tags, lengths):
      return -self.crf.log_likelihood(self.embed(tokens), tags, lengths).mean()

    def __call__(self, tokens, lengths):
      return self.crf.decode(self.embed(tokens), lengths)

  model = Tagger()

  @jax.jit
  def train(key):
    # The first method run (`loss`) creates the CRF's parameters.
    params = model.init(key, tokens, gold, lengths, method='loss')

    def step(params, _):                              # plain gradient descent
      loss, grads = jax.value_and_grad(model.apply)(params, tokens, gold, lengths,
                                                    method='loss')
      return jax.tree.map(lambda w, g: w - 1.0 * g, params, grads), loss

    params, losses = jax.lax.scan(step, params, length=300)
    return params, losses, model.apply(params, tokens, lengths)[0]

  params, losses, tags = train(jax.random.key(0))
  assert set(params['params']['crf']) == {'transitions', 'start', 'end'}
  assert losses[-1] < 0.05 * losses[0]
  np.testing.assert_array_equal(tags, gold)


def test_bio_constraints_worked_example():
  start, transitions, end = BIO
  np.testing.assert_array_equal(start, [True, True, False, True, False])
  np.testing.assert_array_equal(end, [True] * 5)
  # row = previous tag, column = next tag:  O  B-PER I-PER B-LOC I-LOC
  np.testing.assert_array_equal(transitions, [[1, 1, 0, 1, 0],    # O
                                              [1, 1, 1, 1, 0],    # B-PER
                                              [1, 1, 1, 1, 0],    # I-PER
                                              [1, 1, 0, 1, 1],    # B-LOC
                                              [1, 1, 0, 1, 1]])   # I-LOC
  assert start.dtype == transitions.dtype == end.dtype == bool
  # Special names are unconstrained as next tags, and cannot precede an I- tag.
  start, transitions, end = bio_constraints(['<pad>', 'B-X', 'I-X', '<unk>'], scheme='IOB2')
  np.testing.assert_array_equal(start, [1, 1, 0, 1])
  np.testing.assert_array_equal(transitions[:, 2], [0, 1, 1, 0])
  assert transitions[:, [0, 1, 3]].all() and end.all()


@pytest.mark.parametrize('name', ['I-', 'B-', 'X-foo', 'b-per', 'E-PER', 'I'])
def test_bio_constraints_rejects_malformed_names(name):
  with pytest.raises(ValueError, match=repr(name).replace('-', r'\-')):
    bio_constraints(['O', 'B-PER', name])


def test_bio_constraints_rejects_unknown_scheme():
  with pytest.raises(ValueError, match='BIOES'):
    bio_constraints(BIO_NAMES, scheme='BIOES')


def test_constraints_are_stored_hashable_and_validated():
  start, transitions, end = BIO
  crf = CRF(K, allowed=(start, transitions, end))
  assert isinstance(crf.allowed[1], tuple) and isinstance(crf.allowed[1][0], tuple)
  assert crf == CRF(K, allowed=(tuple(start), transitions.tolist(), list(end)))
  hash(crf)
  with pytest.raises(ValueError, match='transitions'):
    CRF(4, allowed=(start[:4], transitions, end[:4]))
  with pytest.raises(ValueError, match='num_tags'):
    CRF(0)
  with pytest.raises(ValueError, match='emissions'):
    CRF(3).init(jax.random.key(0), np.zeros((2, 4, 5)))


def test_init_params_and_emission_dtypes():
  crf = CRF(K)
  p = jax.jit(crf.init)(jax.random.key(0), random_emissions(), LENGTHS)
  assert jax.tree.map(lambda v: (v.shape, v.dtype), p['params']) == {
      'transitions': ((K, K), jnp.float32), 'start': ((K,), jnp.float32),
      'end': ((K,), jnp.float32)}
  assert not any(v.any() for v in jax.tree.leaves(p))           # zeros
  # bfloat16 emissions are computed in float32; lengths=None means full length.
  p = random_params()
  e = jnp.asarray(random_emissions(), jnp.bfloat16)
  tags = np.zeros((len(LENGTHS), T), np.int32)
  ref = outputs(crf, p, np.asarray(e.astype(jnp.float32)), tags, np.full(len(LENGTHS), T))
  got = jax.jit(lambda p, e: crf.apply(p, e, method='log_partition'))(p, e)
  assert got.dtype == jnp.float32
  close(got, ref['log_z'])


def test_jit_of_the_methods_by_name():
  crf = CRF(K, allowed=BIO)
  p = random_params()
  e = random_emissions()
  tags = np.random.default_rng(2).integers(0, K, size=(len(LENGTHS), T))
  log_z, best, best_score = np_crf(p, e, LENGTHS, BIO)

  @jax.jit
  def methods(p, e, tags, lengths):
    return (crf.apply(p, e, lengths, method='log_partition'),
            crf.apply(p, e, tags, lengths, method=CRF.log_likelihood),
            crf.apply(p, e, lengths, method=crf.decode))

  got_log_z, got_ll, (got_best, got_score) = methods(p, e, tags, LENGTHS)
  close(got_log_z, log_z)
  close(got_ll, outputs(crf, p, e, tags, LENGTHS)['ll'])
  np.testing.assert_array_equal(got_best, padded(best))
  close(got_score, best_score)
