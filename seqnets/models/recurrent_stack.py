"""The stacked recurrence of every recurrent model, with one parameter naming scheme.

  stack = recurrent_stack(cell_fn, num_layers=2, bidirectional=True, dropout_rate=0.3)
  h = stack(x [B, T, F], lengths [B], deterministic=...)          # [B, T, H] or [B, T, 2H]

Layer i's forward cell is `<prefix>{i}_cell` and, when bidirectional, its backward cell
`<prefix>{i}_backward_cell` (`prefix` 'layer', or 'encoder' for an encoder-decoder's
encoder), so a parameter path says which layer and direction it belongs to, and a language
model's recurrence transfers by name into a tagger's forward cells. Dropout between layers
is `StackedRNN`'s; variational dropout, `unroll` and `remat` are every `sn.RNN`'s. Call it inside a
compact method or `setup`: the cells are scoped to the calling module.
"""

from __future__ import annotations

from typing import Callable

from flax import linen as nn

from seqnets.layers.bidirectional import Bidirectional
from seqnets.layers.rnn import RNN
from seqnets.layers.stacked import StackedRNN


def recurrent_stack(cell_fn: Callable[..., nn.RNNCellBase], num_layers: int,
                    bidirectional: bool = False, dropout_rate: float = 0.0,
                    unroll: int | None = None,
                    variational_input_rate: float = 0.0, variational_state_rate: float = 0.0,
                    prefix: str = 'layer', remat: int = 0) -> StackedRNN:
  """`num_layers` recurrent layers of cells from `cell_fn` (see the module docstring)."""
  rnn = lambda name: RNN(cell_fn(name=name), unroll=unroll, remat=remat,
                         variational_input_rate=variational_input_rate,
                         variational_state_rate=variational_state_rate)
  layers = [Bidirectional(rnn(f'{prefix}{i}_cell'), rnn(f'{prefix}{i}_backward_cell'))
            if bidirectional else rnn(f'{prefix}{i}_cell') for i in range(num_layers)]
  return StackedRNN(layers, dropout_rate=dropout_rate)
