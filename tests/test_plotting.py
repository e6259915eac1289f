"""pyplot for image files: the Agg backend, whatever the environment asks for."""

from seqnets import plotting


def test_pyplot_draws_on_agg(tmp_path, monkeypatch):
  monkeypatch.setenv('MPLBACKEND', 'TkAgg')
  plt = plotting.pyplot()
  assert plt.get_backend().lower() == 'agg'
  fig, ax = plt.subplots()
  ax.plot([0, 1], [1, 0])
  fig.savefig(tmp_path / 'line.png')
  plt.close(fig)
  assert (tmp_path / 'line.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
