"""matplotlib for writing image files: pyplot on the non-interactive Agg backend."""


def pyplot():
  """`matplotlib.pyplot` on the Agg backend (no display needed); matplotlib is imported
  only when this is first called."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  return plt


def save_figure(fig, path, dpi: int = 120) -> None:
  """Lays `fig` out (`tight_layout`), writes it to `path` and closes it."""
  fig.tight_layout()
  fig.savefig(path, dpi=dpi)
  pyplot().close(fig)
