"""The benchmarked shapes (B, T, E, H): batch, time steps, input features, hidden size."""

SHAPES = {
    'a': (32, 128, 128, 256),
    'b': (64, 256, 256, 512),
    'c': (128, 64, 64, 128),
}
# Run on its own (`--shapes=large`, few reps): one train step is ~1.6 TFLOP.
LARGE_SHAPES = {'large': (128, 256, 1024, 1024)}
# `--quick`: a smoke test, not a measurement.
QUICK_SHAPES = {'quick': (4, 12, 8, 16)}
