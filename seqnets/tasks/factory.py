"""The task registry: `config.task` names one of `TASKS`."""

from __future__ import annotations

from seqnets.tasks import adding
from seqnets.tasks import base
from seqnets.tasks import copy_memory
from seqnets.tasks import formal_languages
from seqnets.tasks import image_classification
from seqnets.tasks import language_model
from seqnets.tasks import seq2seq
from seqnets.tasks import sequential_digits
from seqnets.tasks import tagging
from seqnets.tasks import text_classification

TASKS: dict[str, base.Task] = {
    task.TASK.name: task.TASK
    for task in (adding, copy_memory, formal_languages, image_classification, language_model,
                 seq2seq, sequential_digits, tagging, text_classification)
}


def get(name: str) -> base.Task:
  """The task registered as `name`; ValueError naming `task` and listing the valid names."""
  if name not in TASKS:
    raise ValueError(f'task={name!r}; valid: {sorted(TASKS)}')
  return TASKS[name]
