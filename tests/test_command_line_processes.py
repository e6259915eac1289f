"""`command_line.start_processes` starts `jax.distributed` exactly when the flags' values or
the cluster environment (Open MPI, SLURM, a Cloud TPU pod) name several processes."""

import jax
import pytest

from seqnets import command_line

TPU_POD = {'TPU_WORKER_HOSTNAMES': 't1v-w-0,t1v-w-1,t1v-w-2,t1v-w-3', 'TPU_WORKER_ID': '2'}
NO_FLAGS = (None, None, None)


@pytest.fixture
def started(monkeypatch):
  """The calls `start_processes` makes to `jax.distributed.initialize`."""
  calls = []
  monkeypatch.setattr(jax.distributed, 'initialize', lambda *a, **k: calls.append((a, k)))
  return calls


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
  assert command_line.cluster_processes(environ) == processes


def test_a_bad_count_names_its_variable():
  with pytest.raises(ValueError, match='SLURM_NTASKS'):
    command_line.cluster_processes({'SLURM_JOB_ID': '7', 'SLURM_NTASKS': 'four'})


def test_a_tpu_pod_starts_jax_cluster_detection(started):
  command_line.start_processes(*NO_FLAGS, TPU_POD)
  assert started == [((), {})]


@pytest.mark.parametrize('environ', [{}, {'TPU_WORKER_HOSTNAMES': 'localhost', 'TPU_WORKER_ID': '0'},
                                     {'SLURM_JOB_ID': '7', 'SLURM_NTASKS': '1'}])
def test_one_process_starts_nothing(started, environ):
  command_line.start_processes(*NO_FLAGS, environ)
  command_line.start_processes(None, 1, None, TPU_POD)   # --num_processes=1 alone
  assert started == []


def test_the_flags_win_over_the_environment(started):
  command_line.start_processes('host0:1234', 2, 1, TPU_POD)
  assert started == [(('host0:1234',), {'num_processes': 2, 'process_id': 1})]


@pytest.mark.parametrize('given', [('host0:1234', 2, None), (None, 2, 0), ('host0:1234', None, None)])
def test_flags_given_in_part_are_refused(started, given):
  with pytest.raises(ValueError, match='go together'):
    command_line.start_processes(*given, {})
  assert started == []
