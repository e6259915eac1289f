"""Tasks: one file per kind of learning problem, registered by name in `factory.TASKS`.

A task owns its data pipeline, what the model receives, its objective and its
metrics (`base.Task`); the training harness is the same for all of them.
"""

from seqnets.tasks.base import DataInfo, Preprocessing, ReportedMetric, Task, TaskData
from seqnets.tasks.factory import TASKS, get
