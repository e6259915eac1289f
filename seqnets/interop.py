"""Recurrent weights to and from PyTorch: `nn.LSTM`, `nn.GRU`, `nn.RNN` (tanh or relu).

Works on state dicts of NumPy arrays; torch tensors are accepted as values but
torch is never imported here, so PyTorch stays optional. Any `num_layers`,
`bidirectional`, `bias`; `batch_first` does not change the weights.

Synopsis:
  params, model = interop.from_torch(torch_lstm.state_dict(), 'lstm')
  y = model.apply({'params': params}, x, lengths=lengths, deterministic=True)  # [B, T, D·H]
  sd = interop.to_torch(params)                     # {'weight_ih_l0': ndarray, ...}, as given
  torch_lstm.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
  torch.nn.LSTM(**interop.torch_kwargs(sd), batch_first=True)  # the module sd belongs to
  model = interop.create_module('gru', 64, num_layers=2, bidirectional=True)  # train, export

The mapping, per layer l and direction (PyTorch suffix '' or '_reverse',
seqnets `layers_{l}/cell` or `layers_{l}/{forward,backward}/cell`), with G
gates (LSTM 4: i, f, g, o; GRU 3: r, z, n; RNN 1) in the same order on both
sides:

  input_kernel      [F_l, G·H] = S ⊙ weight_ih_lᵀ     (F_l = F, then D·H above layer 0)
  recurrent_kernel  [H, G·H]   = S ⊙ weight_hh_lᵀ
  bias              [G·H]      = S ⊙ bias_ih_l
  hidden_bias       [G·H]      = S ⊙ bias_hh_l       (cells built with `hidden_bias=True`)

S is −1 on the GRU's z columns and 1 elsewhere. PyTorch's GRU computes
`h' = (1 − z) ⊙ n + z ⊙ h` (z keeps the old state), seqnets'
`h_t = (1 − z) ⊙ h_{t-1} + z ⊙ h̃` (z takes the new one); since
σ(−a) = 1 − σ(a), negating z's weights and biases turns one into the other,
and negation is exact in floating point. PyTorch's candidate
`n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))` is `GRUCell(reset_after=True)`;
`reset_after=False` has no PyTorch equivalent.

Both PyTorch biases are kept, so `to_torch(from_torch(sd, kind)[0])` is `sd`
bit for bit. `from_torch(..., hidden_bias=False)` keeps their sum instead
(`bias = S ⊙ (bias_ih + bias_hh)`, the GRU's `b_hn` in `recurrent_bias [H]`),
the layout of cells built without `hidden_bias`; `to_torch` exports such a
cell with the sum in `bias_ih` and 0 in `bias_hh` (the same model).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from seqnets.layers import param_trees
from seqnets.layers.bidirectional import Bidirectional
from seqnets.layers.elman import ElmanCell
from seqnets.layers.gru import GRUCell
from seqnets.layers.lstm import LSTMCell
from seqnets.layers.rnn import RNN
from seqnets.layers.stacked import StackedRNN

StateDict = dict[str, np.ndarray]
Params = dict[str, Any]

GATES = {'lstm': 4, 'gru': 3, 'rnn': 1}
NONLINEARITIES = {'tanh': jnp.tanh, 'relu': jax.nn.relu}
_SUFFIXES = ('', '_reverse')                 # PyTorch's directions
_KEY = re.compile(r'(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?')


def create_module(kind: str, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                  nonlinearity: str = 'tanh', stack: bool = True,
                  hidden_bias: bool = False) -> nn.Module:
  """The seqnets equivalent of `torch.nn.{LSTM,GRU,RNN}(F, hidden_size, num_layers, ...)`.

  Args:
    kind: 'lstm', 'gru' or 'rnn'.
    hidden_size: H.
    num_layers: number of stacked layers.
    bidirectional: each layer a `Bidirectional` with `merge='concat'`, outputs `[B, T, 2H]`.
    nonlinearity: 'tanh' or 'relu', for 'rnn' only.
    stack: a `StackedRNN` (params `layers_{l}/...`); False returns the single layer
      itself (`RNN`, params `cell/...`, or `Bidirectional`), for `num_layers=1` only.
    hidden_bias: cells with PyTorch's second bias (`bias_hh`) as a parameter of its own.

  Returns:
    An unbound module called as `model.apply({'params': params}, x [B, T, F], lengths=,
    deterministic=)` (True in evaluation; a `StackedRNN` requires it). For PyTorch's
    `dropout` between layers, `model.clone(dropout_rate=p)`.
  """
  _check_kind(kind, nonlinearity)
  if not stack and num_layers != 1:
    raise ValueError(f'stack=False needs num_layers=1, got {num_layers}')

  def cell():
    if kind == 'lstm':
      return LSTMCell(hidden_size, hidden_bias=hidden_bias)
    if kind == 'gru':
      return GRUCell(hidden_size, reset_after=True, hidden_bias=hidden_bias)
    return ElmanCell(hidden_size, activation_fn=NONLINEARITIES[nonlinearity],
                     hidden_bias=hidden_bias)

  def layer():
    if bidirectional:
      return Bidirectional(RNN(cell()), RNN(cell()), merge='concat')
    return RNN(cell())

  if not stack:
    return layer()
  return StackedRNN([layer() for _ in range(num_layers)])


def from_torch(state_dict: Mapping[str, Any], kind: str, *, nonlinearity: str = 'tanh',
               prefix: str = '', stack: bool = True,
               hidden_bias: bool = True) -> tuple[Params, nn.Module]:
  """Params and module equivalent to a PyTorch `nn.LSTM` / `nn.GRU` / `nn.RNN`.

  The number of layers, the directions, the presence of biases and the sizes
  are read from the keys and shapes (`torch_kwargs`); the state dict must hold
  exactly one recurrent module's weights (under `prefix`).

  Args:
    state_dict: `weight_ih_l0`, `weight_hh_l0`, [`bias_ih_l0`, `bias_hh_l0`,]
      `..._l{l}[_reverse]`: NumPy arrays or torch tensors. Keys not starting
      with `prefix` are ignored.
    kind: 'lstm', 'gru' or 'rnn'.
    nonlinearity: 'tanh' or 'relu' for 'rnn' (torch's `nonlinearity`; it is not in the weights).
    prefix: where the module sits in a larger state dict, e.g. 'encoder.rnn.'.
    stack: see `create_module`.
    hidden_bias: keep `bias_hh` as a parameter of its own (exact round trip);
      False stores the sum (see the module docstring). Without biases in the
      state dict, the cells have one bias, 0.

  Returns:
    `(params, model)`: params as NumPy arrays (copies, in the input dtype), to be
    used as `model.apply({'params': params}, x, lengths=lengths, deterministic=True)`.

  Raises:
    ValueError: unknown or missing keys (e.g. `proj_size`'s `weight_hr_l0`),
      shapes that do not fit `kind`.
  """
  _check_kind(kind, nonlinearity)
  sd = _read(state_dict, prefix)
  shape = _structure(sd, kind)
  hidden, gates = shape['hidden_size'], GATES[kind]
  layers = []
  for layer in range(shape['num_layers']):
    cells = []
    for suffix in _SUFFIXES[:2 if shape['bidirectional'] else 1]:
      name = f'_l{layer}{suffix}'
      w_ih, w_hh = sd['weight_ih' + name], sd['weight_hh' + name]
      cell = {'input_kernel': _negate_z(kind, w_ih.T.copy(), hidden),       # [F_l, G·H]
              'recurrent_kernel': _negate_z(kind, w_hh.T.copy(), hidden)}   # [H, G·H]
      keep_both = hidden_bias and shape['bias']
      if keep_both:
        cell['bias'] = _negate_z(kind, sd['bias_ih' + name].copy(), hidden)
        cell['hidden_bias'] = _negate_z(kind, sd['bias_hh' + name].copy(), hidden)
      elif shape['bias']:
        b_ih, b_hh = sd['bias_ih' + name], sd['bias_hh' + name]
        merged = b_ih + b_hh
        if kind == 'gru':
          merged[2 * hidden:] = b_ih[2 * hidden:]                          # b_in alone
          cell['recurrent_bias'] = b_hh[2 * hidden:].copy()                # b_hn
        cell['bias'] = _negate_z(kind, merged, hidden)
      else:
        cell['bias'] = np.zeros(gates * hidden, w_hh.dtype)
        if kind == 'gru':
          cell['recurrent_bias'] = np.zeros(hidden, w_hh.dtype)
      cells.append(cell)
    layers.append({'cell': cells[0]} if len(cells) == 1 else
                  {direction: {'cell': c} for direction, c in zip(param_trees.DIRECTIONS, cells)})
  model = create_module(kind, hidden, shape['num_layers'], shape['bidirectional'], nonlinearity,
                        stack, hidden_bias=hidden_bias and shape['bias'])
  params = {f'layers_{l}': p for l, p in enumerate(layers)} if stack else layers[0]
  return params, model


def to_torch(params: Mapping[str, Any], *, kind: str | None = None,
             bias: bool = True) -> StateDict:
  """PyTorch state dict of the seqnets params of a `StackedRNN`, `RNN` or `Bidirectional`.

  The layers must be what PyTorch can express: `LSTMCell` without peepholes,
  `GRUCell(reset_after=True)` or `ElmanCell`; every layer of one kind and
  hidden size, all bidirectional (`merge='concat'`) or none. The RNN's
  nonlinearity is not in the params: build `nn.RNN(..., nonlinearity=...)` to match.
  A 3-gate cell with `hidden_bias` is read as `GRUCell(reset_after=True)`: the
  params alone cannot tell it from `reset_after=False`.

  Args:
    params: the param tree (`variables['params']`; a `{'params': ...}` dict is unwrapped).
    kind: 'lstm', 'gru' or 'rnn' to check against; None: read from the params.
    bias: export `bias_*` keys (PyTorch's `bias=True`). False needs every bias
      to be 0.

  Returns:
    `{'weight_ih_l0': ndarray, ...}` in PyTorch's key order and the params' dtype.
  """
  if set(params) == {'params'}:
    params = params['params']
  layers = param_trees.cells_by_layer(params)
  found = {_cell_kind(cell) for cells in layers for cell in cells}
  if len(found) != 1:
    raise ValueError(f'PyTorch needs one kind of cell in every layer, found {sorted(found)}')
  (found,) = found
  if kind is not None and kind != found:
    raise ValueError(f'kind={kind!r} but the params hold {found} cells')
  kind = found
  hidden = np.shape(layers[0][0]['recurrent_kernel'])[0]
  directions = len(layers[0])
  for l, cells in enumerate(layers):
    if len(cells) != directions:
      raise ValueError('PyTorch needs every layer bidirectional or none; '
                       f'layer 0 has {directions} direction(s), layer {l} {len(cells)}')
    for cell in cells:
      if np.shape(cell['recurrent_kernel'])[0] != hidden:
        raise ValueError(f'PyTorch needs one hidden size; layer 0 has {hidden}, layer {l} '
                         f'{np.shape(cell["recurrent_kernel"])[0]}')
      if l > 0 and np.shape(cell['input_kernel'])[0] != directions * hidden:
        raise ValueError(f'layer {l} takes {np.shape(cell["input_kernel"])[0]} features; '
                         f'PyTorch feeds it the {directions * hidden} outputs of layer {l - 1}')

  sd = {}
  for l, cells in enumerate(layers):
    for suffix, cell in zip(_SUFFIXES, cells):
      name = f'_l{l}{suffix}'
      cell = {key: np.asarray(value) for key, value in cell.items()}
      sd['weight_ih' + name] = _negate_z(kind, cell['input_kernel'], hidden).T.copy()  # [G·H, F_l]
      sd['weight_hh' + name] = _negate_z(kind, cell['recurrent_kernel'], hidden).T.copy()
      biases = [cell[key] for key in ('bias', 'hidden_bias', 'recurrent_bias') if key in cell]
      if not bias:
        if any(np.any(b != 0) for b in biases):
          raise ValueError(f'bias=False, but layer {l}{suffix} has non-zero biases')
        continue
      b_ih = _negate_z(kind, cell['bias'], hidden).copy()
      if 'hidden_bias' in cell:
        b_hh = _negate_z(kind, cell['hidden_bias'], hidden).copy()
      else:                                  # the sum in b_ih (GRU: b_in alone on n)
        b_hh = np.zeros_like(b_ih)
        if kind == 'gru':
          b_hh[2 * hidden:] = cell['recurrent_bias']
      sd['bias_ih' + name], sd['bias_hh' + name] = b_ih, b_hh
  return {key: sd[key] for key in sorted(sd, key=_sort_key)}


def torch_kwargs(state_dict: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """`input_size`, `hidden_size`, `num_layers`, `bias`, `bidirectional` of a state dict.

  `torch.nn.LSTM(**torch_kwargs(sd), batch_first=True)` builds a module that
  `load_state_dict(sd)` fits (for 'rnn', also pass its `nonlinearity`).
  """
  return _structure(_read(state_dict, prefix), None)


def final_state_to_torch(carries: Any, kind: str, bidirectional: bool) -> Any:
  """The final carries of a `StackedRNN(..., return_carry=True)` in PyTorch's layout.

  Args:
    carries: one carry per layer, bottom first; a layer's carry is `(c, h)`
      for an LSTM, `h` otherwise, and `(carry_fwd, carry_bwd)` when
      bidirectional. For a single `RNN` / `Bidirectional`, pass `(carry,)`.
    kind: 'lstm', 'gru' or 'rnn'.
    bidirectional: whether each layer is a `Bidirectional`.

  Returns:
    `h_n`, or `(h_n, c_n)` for an LSTM: `[num_layers · D, B, H]` NumPy arrays,
    rows ordered layer 0 forward, layer 0 backward, layer 1 forward, ...
    (what `torch.nn.LSTM/GRU/RNN` returns next to the outputs).
  """
  _check_kind(kind, 'tanh')
  states = [s for carry in carries for s in (carry if bidirectional else (carry,))]
  if kind == 'lstm':
    return (np.stack([np.asarray(h) for _, h in states]),
            np.stack([np.asarray(c) for c, _ in states]))
  return np.stack([np.asarray(h) for h in states])


def _check_kind(kind: str, nonlinearity: str) -> None:
  if kind not in GATES:
    raise ValueError(f'kind={kind!r}; valid: {sorted(GATES)}')
  if nonlinearity not in NONLINEARITIES:
    raise ValueError(f'nonlinearity={nonlinearity!r}; valid: {sorted(NONLINEARITIES)}')
  if kind != 'rnn' and nonlinearity != 'tanh':
    raise ValueError(f'nonlinearity applies to kind=\'rnn\' only, not {kind!r}')


def _numpy(value: Any) -> np.ndarray:
  if hasattr(value, 'detach'):                         # a torch.Tensor; no torch import needed
    return value.detach().cpu().numpy()
  return np.asarray(value)


def _read(state_dict: Mapping[str, Any], prefix: str) -> StateDict:
  """The entries under `prefix`, prefix removed, as NumPy arrays; unknown keys refused."""
  sd = {key[len(prefix):]: _numpy(value) for key, value in state_dict.items()
        if key.startswith(prefix)}
  unknown = sorted(key for key in sd if not _KEY.fullmatch(key))
  if unknown:
    proj_size = any(key.startswith('weight_hr') for key in unknown)
    hint = ' (proj_size is not supported)' if proj_size else ''
    raise ValueError(f'not a weight of torch.nn.LSTM/GRU/RNN: {unknown}{hint}')
  if not sd:
    raise ValueError(f'no recurrent weights under prefix {prefix!r}')
  return sd


def _structure(sd: StateDict, kind: str | None) -> dict[str, Any]:
  """Sizes read from the keys and shapes, every shape checked (against `kind` if given)."""
  layers = {int(_KEY.fullmatch(key).group(2)) for key in sd}
  num_layers = max(layers) + 1
  bidirectional = any(key.endswith('_reverse') for key in sd)
  bias = any(key.startswith('bias') for key in sd)
  names = ['weight_ih', 'weight_hh'] + (['bias_ih', 'bias_hh'] if bias else [])
  expected = {f'{n}_l{l}{s}' for n in names for l in range(num_layers)
              for s in _SUFFIXES[:2 if bidirectional else 1]}
  missing = sorted(expected - set(sd), key=_sort_key)
  if missing:
    raise ValueError(f'state dict incomplete, missing {missing}')
  if np.ndim(sd['weight_hh_l0']) != 2 or np.ndim(sd['weight_ih_l0']) != 2:
    raise ValueError('weight_ih_l0 and weight_hh_l0 must be matrices, [G·H, F] and [G·H, H]')
  rows, hidden = sd['weight_hh_l0'].shape
  kinds = [k for k, g in GATES.items() if g * hidden == rows]
  if not kinds or (kind is not None and kind not in kinds):
    raise ValueError(f'weight_hh_l0 is {list(sd["weight_hh_l0"].shape)}, not [G·H, H] with '
                     f'G = {GATES[kind] if kind else "4, 3 or 1"}'
                     + (f' ({kinds[0]} weights?)' if kinds else ''))
  input_size = sd['weight_ih_l0'].shape[1]
  for key, value in sd.items():
    layer = int(_KEY.fullmatch(key).group(2))
    if key.startswith('weight_ih'):
      want = (rows, input_size if layer == 0 else (1 + bidirectional) * hidden)
    elif key.startswith('weight_hh'):
      want = (rows, hidden)
    else:
      want = (rows,)
    if value.shape != want:
      raise ValueError(f'{key} is {list(value.shape)}, expected {list(want)}')
  return dict(input_size=input_size, hidden_size=hidden, num_layers=num_layers, bias=bias,
              bidirectional=bidirectional)


def _negate_z(kind: str, a: np.ndarray, hidden: int) -> np.ndarray:
  """Columns `[..., H:2H]` negated for the GRU (its z gate), a copy; `a` itself otherwise."""
  if kind != 'gru':
    return a
  a = np.array(a)
  a[..., hidden:2 * hidden] = -a[..., hidden:2 * hidden]
  return a


def _cell_kind(cell: Mapping[str, Any]) -> str:
  keys = set(cell)
  if any(key.startswith('peephole_') for key in keys):
    raise ValueError('LSTM peepholes have no PyTorch equivalent')
  hidden, columns = np.shape(cell['recurrent_kernel'])
  gates = columns // hidden
  if 'recurrent_bias' in keys or (gates == 3 and 'hidden_bias' in keys):
    kind = 'gru'
  elif gates == 3:
    raise ValueError('GRUCell(reset_after=False) has no PyTorch equivalent: torch.nn.GRU '
                     'applies the reset gate after the recurrent matmul (reset_after=True)')
  else:
    kind = {4: 'lstm', 1: 'rnn'}.get(gates)
  expected = {'input_kernel', 'recurrent_kernel', 'bias'} | (
      {'hidden_bias'} if 'hidden_bias' in keys else
      {'recurrent_bias'} if kind == 'gru' else set())
  if kind is None or gates * hidden != columns or keys != expected:
    raise ValueError(f'not the params of a seqnets LSTM/GRU/Elman cell: '
                     f'{ {k: np.shape(v) for k, v in cell.items()} }')
  return kind


def _sort_key(key: str) -> tuple[int, int, int]:
  """PyTorch's order: by layer, then direction, then weight_ih, weight_hh, bias_ih, bias_hh."""
  name, layer, reverse = _KEY.fullmatch(key).groups()
  return int(layer), bool(reverse), ('weight_ih', 'weight_hh', 'bias_ih', 'bias_hh').index(name)
