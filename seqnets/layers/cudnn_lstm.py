"""`LSTMCell` layers through cuDNN's LSTM (`jax.experimental.rnn`): the weight layout and a run.

What cuDNN computes, per layer and direction (its LSTM mode, PyTorch's `nn.LSTM`):

  [z_i | z_f | z_g | z_o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
  i, f, o = σ(z_i), σ(z_f), σ(z_o);  g = tanh(z_g)
  c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)

which is `LSTMCell` without peepholes, with the same gate order i, f, g, o:

  W_ih = input_kernelᵀ [4H, F_l]   (F_l = F at layer 0, D·H above: [forward | backward])
  W_hh = recurrent_kernelᵀ [4H, H]
  b_ih = bias [4H];  b_hh = hidden_bias [4H], 0 for a cell without it

The flat weight vector `[P]` (P = `rnn.get_num_params_in_lstm(F, H, L, bidirectional)`)
holds, for each pseudo-layer in the order layer 0 forward, [layer 0 backward,] layer 1
forward, ..., W_ih then W_hh (row-major), then for each pseudo-layer b_ih then b_hh.
`pack` writes it from the cells' params, `unpack` reads them back.

What cuDNN cannot serve (the cell's fused kernel or plain scan does):
  * peepholes and layer norm (`pack` raises naming the parameter); update dropout,
    zoneout and `sn.RNN`'s variational state dropout, which leave no parameter: callers
    must check the cell's fields (`rnn.cudnn_refusal` does); dropout between stacked
    layers. Weight drop works on params whose `recurrent_kernel` is already M ⊙ U.
  * dtypes other than float32 (`lstm` raises naming the dtype); on GPU its matmuls use
    TF32 unless `precision='highest'` (or `jax_default_matmul_precision`) says otherwise.
  * forward-mode autodiff (`jvp`), the carries after every step, a `Bidirectional`
    merge other than 'concat', cells of different sizes in one stack.

Under `vmap` (seeds trained side by side) cuDNN runs once per element of the mapped axis,
one after the other (`sequential`): its primitives have no batching rule.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
from jax.experimental import rnn
from jax.sharding import PartitionSpec as P

from seqnets.layers import masking
from seqnets.layers import param_trees

Array = jax.Array
Params = Mapping[str, Array]
LSTMCarry = tuple[Array, Array]

PLAIN_PARAMS = ('input_kernel', 'recurrent_kernel', 'bias', 'hidden_bias')


def pack(cells: Sequence[Params], bidirectional: bool = False) -> Array:
  """cuDNN's flat weights `[P]` of plain `LSTMCell` params in pseudo-layer order (layer 0
  forward, [layer 0 backward,] layer 1 forward, ...); sizes are read from the shapes."""
  directions = 2 if bidirectional else 1
  if not cells or len(cells) % directions:
    raise ValueError(f'cuDNN needs {directions} cell(s) per layer, got {len(cells)} cells')
  hidden = _check_cell(cells[0], 0, None, None)
  features = cells[0]['input_kernel'].shape[0]
  for k, cell in enumerate(cells):
    _check_cell(cell, k, hidden, features if k < directions else directions * hidden)
  kernels = [w for cell in cells
             for w in (cell['input_kernel'].T, cell['recurrent_kernel'].T)]
  biases = [b for cell in cells
            for b in (cell['bias'], cell.get('hidden_bias', jnp.zeros_like(cell['bias'])))]
  return jnp.concatenate([jnp.ravel(a) for a in kernels + biases])


def unpack(weights: Array, input_size: int, hidden_size: int, num_layers: int = 1,
           bidirectional: bool = False, hidden_bias: bool = False) -> list[dict[str, Array]]:
  """The `LSTMCell` params in `weights [P]`, pseudo-layer order (as `pack` takes them).
  With `hidden_bias`, b_hh is each cell's `hidden_bias`; without, `bias = b_ih + b_hh`
  (the same function; `pack` of such a cell wrote b_hh = 0)."""
  expected = rnn.get_num_params_in_lstm(input_size, hidden_size, num_layers, bidirectional)
  if weights.shape != (expected,):
    raise ValueError(f'cuDNN weights for F={input_size}, H={hidden_size}, '
                     f'num_layers={num_layers}, bidirectional={bidirectional} have shape '
                     f'({expected},), got {weights.shape}')
  w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(weights, input_size, hidden_size,
                                                   num_layers, bidirectional)
  cells = []
  for k in range(len(w_ih)):
    cell = {'input_kernel': w_ih[k].T, 'recurrent_kernel': w_hh[k].T}
    if hidden_bias:
      cell.update(bias=b_ih[k], hidden_bias=b_hh[k])
    else:
      cell['bias'] = b_ih[k] + b_hh[k]
    cells.append(cell)
  return cells


def layer_cells(params: Mapping[str, Any]) -> tuple[list[Params], bool]:
  """`(cells in pseudo-layer order, bidirectional)` of the params of an `sn.RNN`
  (`{'cell'}`), an `sn.Bidirectional` of two (`{'forward', 'backward'}`) or an
  `sn.StackedRNN` of either (`{'layers_0', ...}`, every layer alike)."""
  layers = param_trees.cells_by_layer(params)
  kinds = {len(cells) for cells in layers}
  if len(kinds) != 1:
    raise ValueError('cuDNN needs every layer bidirectional or none; the StackedRNN mixes them')
  return [cell for cells in layers for cell in cells], kinds == {2}


def lstm(params: Mapping[str, Any], inputs: Array, lengths: Array | None = None,
         initial_carry: Any = None, *, platform: str | None = None,
         precision: Any = None) -> tuple[Any, Array]:
  """Runs the plain-`LSTMCell` layers whose params are `params` (see `layer_cells`) over
  `inputs [B, T, F]` float32 with `lengths [B]` (None: all T; checked as
  `masking.check_lengths` says) through cuDNN on a GPU
  (`platform`, default `jax.default_backend()`), through `rnn.lstm_ref` elsewhere.

  Returns `(final_carry, outputs)` as the layer with `return_carry=True`: outputs
  `[B, T, D·H]`, 0 past each end; the final carry `(c, h)` per direction and layer in
  the layer's structure (what `initial_carry` takes; None: zeros). A row of length 0
  keeps its initial carry, and so does every row when T = 0. Under `vmap` (e.g. over the
  seeds' params) both routes run once per element of the mapped axis (`sequential`); with
  a mesh in context (`jax.set_mesh`), each device runs its rows (`_split_over_batch`).
  """
  cells, bidirectional = layer_cells(params)
  if inputs.ndim != 3:
    raise ValueError(f'cuDNN LSTM inputs must be [batch, time, features], got shape '
                     f'{inputs.shape}')
  if inputs.dtype != jnp.float32:
    raise ValueError(f'cuDNN LSTM computes in float32 only, got inputs of dtype {inputs.dtype}')
  batch, steps, features = inputs.shape
  directions = 2 if bidirectional else 1
  hidden = cells[0]['recurrent_kernel'].shape[0]
  num_layers = len(cells) // directions
  weights = pack(cells, bidirectional).astype(jnp.float32)
  lengths = masking.check_lengths(lengths, batch, steps)
  lengths = jnp.full((batch,), steps, jnp.int32) if lengths is None else lengths.astype(
      jnp.int32)
  if initial_carry is None:
    zeros = jnp.zeros((len(cells), batch, hidden), jnp.float32)
    c_0, h_0 = zeros, zeros
  else:
    c_0, h_0 = (jnp.stack(parts).astype(jnp.float32)
                for parts in zip(*_carries(initial_carry, params)))
  if steps == 0:
    carries = [(c_0[k], h_0[k]) for k in range(len(cells))]
    return _structured(carries, params), jnp.zeros((batch, 0, directions * hidden), jnp.float32)
  # Rows of length 0 run one step whose results are dropped below: lstm_ref would read
  # the carry at index lengths - 1 = -1, and cuDNN is not asked for empty sequences.
  run_lengths = jnp.maximum(lengths, 1)
  on_gpu = (platform or jax.default_backend()) == 'gpu'
  forward, backward = (rnn.lstm_fwd, rnn.lstm_bwd) if on_gpu else (_reference_fwd,
                                                                  _reference_bwd)
  run = sequential(
      functools.partial(forward, input_size=features, hidden_size=hidden, num_layers=num_layers,
                        dropout=0.0, bidirectional=bidirectional, precision=precision),
      functools.partial(backward, features, hidden, num_layers, 0.0, bidirectional, precision))
  y, h_n, c_n = _split_over_batch(run, batch)(inputs, h_0, c_0, weights, run_lengths)
  nonempty = (lengths > 0)[None, :, None]
  c_n, h_n = jnp.where(nonempty, c_n, c_0), jnp.where(nonempty, h_n, h_0)
  y = jnp.where(masking.sequence_mask(lengths, steps)[..., None], y, 0)
  return _structured([(c_n[k], h_n[k]) for k in range(len(cells))], params), y


def sequential(forward: Callable, backward: Callable) -> Callable:
  """`run(x, h_0, c_0, weights, lengths) -> (y, h_n, c_n)`, the value of `forward(...)[0]`,
  with the gradient `backward(residuals, (dy, dh_n, dc_n))` (the cotangents of the five
  arguments) where `forward` returns `((y, h_n, c_n), residuals)`: the contract of
  `jax.experimental.rnn.lstm_fwd` and `lstm_bwd`. Under `vmap` each half runs once per
  element of the mapped axis (`jax.custom_batching.sequential_vmap`), since cuDNN's
  primitives have no batching rule; the seeds trained side by side run one after the other.
  """
  forward = jax.custom_batching.sequential_vmap(forward)
  backward = jax.custom_batching.sequential_vmap(backward)

  @jax.custom_vjp
  def run(x, h_0, c_0, weights, lengths):
    return forward(x, h_0, c_0, weights, lengths)[0]

  run.defvjp(forward, backward)
  return run


def _split_over_batch(run: Callable, batch: int) -> Callable:
  """`run(x [B, T, F], h_0 [L, B, H], c_0 [L, B, H], weights [P], lengths [B])`, with the
  batch axis split over every axis of the mesh in context (`jax.set_mesh`; manual axes, as
  inside a `shard_map`, excepted) when those hold several devices and divide `batch`; else
  `run` itself. cuDNN's primitives have no sharding rule, so XLA's partitioner cannot
  split the call by itself. The weights' gradient is summed over the devices.
  """
  mesh = jax.sharding.get_abstract_mesh()
  axes = tuple(name for name, kind in zip(mesh.axis_names, mesh.axis_types)
               if kind != jax.sharding.AxisType.Manual)
  devices = math.prod(mesh.shape[name] for name in axes)
  if devices == 1 or batch % devices:
    return run
  rows, carries = P(axes), P(None, axes)
  # check_vma=False: cuDNN's primitives do not say how their results vary over the mesh.
  return jax.shard_map(run, mesh=mesh, in_specs=(rows, carries, carries, P(), rows),
                       out_specs=(rows, carries, carries), check_vma=False)


def _reference(x, h_0, c_0, w, seq_lengths, input_size, hidden_size, num_layers, dropout,
               bidirectional):
  """`rnn.lstm_ref` of the flat weights `w [P]`: `(y, h_n, c_n)` as `rnn.lstm` gives them."""
  w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(w, input_size, hidden_size, num_layers,
                                                   bidirectional)
  return rnn.lstm_ref(x, h_0, c_0, w_ih, w_hh, b_ih, b_hh, seq_lengths, input_size,
                      hidden_size, num_layers, dropout, bidirectional)


def _reference_fwd(x, h_0, c_0, w, seq_lengths, input_size, hidden_size, num_layers, dropout,
                   bidirectional, precision):
  """`rnn.lstm_fwd` (same arguments and results) through `lstm_ref`; the residuals are the
  inputs, from which `_reference_bwd` runs it again."""
  del precision
  outputs = _reference(x, h_0, c_0, w, seq_lengths, input_size, hidden_size, num_layers,
                       dropout, bidirectional)
  return outputs, (x, h_0, c_0, w, seq_lengths)


def _reference_bwd(input_size, hidden_size, num_layers, dropout, bidirectional, precision,
                   residuals, gradients):
  """`rnn.lstm_bwd` (same arguments and results) of `_reference_fwd`."""
  del precision
  x, h_0, c_0, w, seq_lengths = residuals
  run = lambda *args: _reference(*args, seq_lengths, input_size, hidden_size, num_layers,
                                 dropout, bidirectional)
  _, vjp = jax.vjp(run, x, h_0, c_0, w)
  return (*vjp(tuple(gradients)), jnp.zeros_like(seq_lengths))


def _check_cell(cell: Params, index: int, hidden: int | None, features: int | None) -> int:
  """H of a plain LSTM cell's params (ValueError naming the extra parameter or bad shape)."""
  extra = sorted(set(cell) - set(PLAIN_PARAMS))
  if extra:
    raise ValueError(f'cuDNN LSTM takes LSTMCell without peepholes or layer norm; cell {index} '
                     f'has {extra}')
  hidden = cell['recurrent_kernel'].shape[0] if hidden is None else hidden
  shapes = {'input_kernel': (features or cell['input_kernel'].shape[0], 4 * hidden),
            'recurrent_kernel': (hidden, 4 * hidden), 'bias': (4 * hidden,),
            'hidden_bias': (4 * hidden,)}
  for name in cell:
    if cell[name].shape != shapes[name]:
      raise ValueError(f'cuDNN LSTM cell {index}: {name} has shape {cell[name].shape}, '
                       f'expected {shapes[name]}')
  return hidden


def _structured(carries: list[LSTMCarry], params: Mapping[str, Any]) -> Any:
  """Per-pseudo-layer `(c, h)` in the carry structure of the layer that owns `params`."""
  layers, k = [], 0
  for cells in param_trees.cells_by_layer(params):
    layers.append(carries[k] if len(cells) == 1 else tuple(carries[k:k + len(cells)]))
    k += len(cells)
  return tuple(layers) if param_trees.is_stacked(params) else layers[0]


def _carries(carry: Any, params: Mapping[str, Any]) -> list[LSTMCarry]:
  """The inverse of `_structured`: per-pseudo-layer `(c, h)`."""
  layers = carry if param_trees.is_stacked(params) else (carry,)
  return [c for cells, layer in zip(param_trees.cells_by_layer(params), layers)
          for c in ((layer,) if len(cells) == 1 else layer)]
