"""Running evaluators: chunked, device-parallel, per seed, exact over any dataset size."""

from __future__ import annotations

from typing import Any, Callable

import jax
import numpy as np

from seqnets.training import evaluators as evaluators_lib
from seqnets.training import metrics as metrics_lib
from seqnets.training import parallel
from seqnets.training import state as state_lib
from seqnets.training import writers


def evaluate(evaluator: evaluators_lib.Evaluator, eval_step: Callable, params: Any, model_state: Any,
             mesh, num_seeds: int, time_keys=(),
             host: evaluators_lib.HostContext | None = None) -> list[dict[str, Any]]:
  """One dict per seed: `eval/<evaluator name>/<metric>`.

  `eval_step` is `parallel.make_eval_step(..., evaluator.extra_sums, mesh)`:
  params and model state have a leading seed axis; each chunk of the
  evaluator's data is broadcast to every seed. An evaluator type with a host
  part also gets each seed's parameters and `host` (ValueError without it).
  """
  total = None
  for chunk in evaluators_lib.chunks(evaluator.arrays, evaluator.batch_size, time_keys):
    stacked = {k: np.broadcast_to(v, (num_seeds,) + v.shape) for k, v in chunk.items()}
    total = metrics_lib.merge(total, eval_step(params, model_state, parallel.shard_batch(stacked, mesh)))
  means = metrics_lib.compute(jax.device_get(total))
  results = []
  for seed in range(num_seeds):
    metrics = evaluator.kind.finalize({k: v[seed] for k, v in means.items()}, evaluator.arrays)
    if evaluator.kind.host is not None:
      if host is None:
        raise ValueError(f'evaluator {evaluator.name!r} runs on the host and needs a HostContext')
      metrics.update(evaluator.kind.host(evaluator, host, state_lib.seed_slice(params, seed),
                                         state_lib.seed_slice(model_state, seed)))
    results.append({f'eval/{evaluator.name}/{k}': writers.to_json_value(v) for k, v in metrics.items()})
  return results


def evaluate_all(evaluators, eval_steps: dict[str, Callable], params, model_state, mesh,
                 num_seeds: int, time_keys=(),
                 host: evaluators_lib.HostContext | None = None) -> list[dict[str, Any]]:
  """Every evaluator in `evaluators`, merged into one dict per seed."""
  results = [dict() for _ in range(num_seeds)]
  for evaluator in evaluators:
    for result, values in zip(results, evaluate(evaluator, eval_steps[evaluator.name], params,
                                                model_state, mesh, num_seeds, time_keys, host)):
      result.update(values)
  return results
