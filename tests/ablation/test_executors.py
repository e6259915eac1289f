"""Executors: SLURM job parameters from the config's launch section."""

import os
import stat

from configs import ablate_formal
from seqnets.ablation import executors


def test_slurm_executor_takes_partition_and_time_from_the_config(tmp_path, monkeypatch):
  # submitit only checks that `srun` exists before it writes sbatch scripts.
  srun = tmp_path / 'bin' / 'srun'
  srun.parent.mkdir()
  srun.write_text('#!/bin/sh\n')
  srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
  monkeypatch.setenv('PATH', f'{srun.parent}{os.pathsep}{os.environ["PATH"]}')
  launch = dict(ablate_formal.get_config().launch)
  launch.update(slurm_partition='cpu', timeout_min=90)
  executor = executors.make_executor('slurm', launch, tmp_path / 'jobs')
  parameters = executor._executor.parameters
  assert parameters['partition'] == 'cpu' and parameters['time'] == 90
  assert parameters['cpus_per_task'] == 2 and parameters['mem'] == '4GB'
