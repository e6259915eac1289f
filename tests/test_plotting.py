"""Image files from matplotlib: the Agg backend whatever the environment asks for, and a
figure saved and closed."""

from seqnets import plotting


def test_pyplot_draws_on_agg_and_save_figure_writes_and_closes(tmp_path, monkeypatch):
  monkeypatch.setenv('MPLBACKEND', 'TkAgg')
  plt = plotting.pyplot()
  assert plt.get_backend().lower() == 'agg'
  fig, ax = plt.subplots()
  ax.plot([0, 1], [1, 0])
  plotting.save_figure(fig, tmp_path / 'line.png', dpi=50)
  assert (tmp_path / 'line.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  assert not plt.fignum_exists(fig.number)
