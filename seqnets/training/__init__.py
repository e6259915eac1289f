"""Training machinery: state, optimizers, pure steps, parallelism, checkpoints, metrics, loop."""
