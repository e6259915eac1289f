"""`runtime.initialize_distributed` starts `jax.distributed` exactly when the flags or the
cluster environment (Open MPI, SLURM, a Cloud TPU pod) name several processes."""

import jax
import pytest
from absl import flags
from absl.testing import flagsaver

from experiments import runtime

TPU_POD = {'TPU_WORKER_HOSTNAMES': 't1v-w-0,t1v-w-1,t1v-w-2,t1v-w-3', 'TPU_WORKER_ID': '2'}


@pytest.fixture
def started(monkeypatch):
  """The calls `initialize_distributed` makes to `jax.distributed.initialize`, flags unset."""
  calls = []
  monkeypatch.setattr(jax.distributed, 'initialize', lambda *a, **k: calls.append((a, k)))
  was_parsed = flags.FLAGS.is_parsed()
  flags.FLAGS.mark_as_parsed()
  with flagsaver.flagsaver(coordinator_address=None, num_processes=None, process_id=None):
    yield calls
  if not was_parsed:
    flags.FLAGS.unparse_flags()


@pytest.mark.parametrize('environ,processes', [
    ({}, 1),
    ({'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '4'}, 4),
    ({'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '1'}, 1),
    ({'SLURM_JOB_ID': '7'}, 1),
    ({'OMPI_COMM_WORLD_SIZE': '2'}, 2),
    ({'OMPI_COMM_WORLD_SIZE': '3', 'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '1'}, 3),
    (TPU_POD, 4),
    ({'TPU_WORKER_HOSTNAMES': 'localhost', 'TPU_WORKER_ID': '0'}, 1),
    ({'TPU_WORKER_HOSTNAMES': 'w-0,w-1', 'TPU_PROCESS_ADDRESSES': 'a:8476'}, 1),
    ({'TPU_WORKER_HOSTNAMES': 'w-0,w-1', 'MEGASCALE_NUM_SLICES': '2'}, 4),
    ({'TPU_WORKER_HOSTNAMES': 'w-0', 'MEGASCALE_NUM_SLICES': '2'}, 2),
    ({'TPU_WORKER_HOSTNAMES': ''}, 1),
])
def test_cluster_processes(environ, processes):
  assert runtime.cluster_processes(environ) == processes


def test_a_bad_count_names_its_variable():
  with pytest.raises(ValueError, match='SLURM_NTASKS'):
    runtime.cluster_processes({'SLURM_JOB_ID': '7', 'SLURM_NTASKS': 'four'})


def test_a_tpu_pod_starts_jax_cluster_detection(started):
  runtime.initialize_distributed(TPU_POD)
  assert started == [((), {})]


@pytest.mark.parametrize('environ', [{}, {'TPU_WORKER_HOSTNAMES': 'localhost', 'TPU_WORKER_ID': '0'},
                                     {'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '1'}])
def test_one_process_starts_nothing(started, environ):
  runtime.initialize_distributed(environ)
  assert started == []


def test_the_flags_win_over_the_environment(started):
  with flagsaver.flagsaver(coordinator_address='host0:1234', num_processes=2, process_id=1):
    runtime.initialize_distributed(TPU_POD)
  assert started == [(('host0:1234',), {'num_processes': 2, 'process_id': 1})]
