"""Tasks: one file per kind of learning problem, registered by name in `factory.TASKS`.

A task owns its data pipeline, what the model receives, its objective and its
metrics (`base.Task`); the training harness is the same for all of them. Generators of
synthetic examples and readers of corpora live in `seqnets.data`; a task adds how
`config.data` selects them, the format of its own evaluation files, the objective and the
metrics.
"""

from seqnets.tasks.base import DataInfo, Preprocessing, ReportedMetric, Task, TaskData
from seqnets.tasks.factory import TASKS, get
