"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their one-step cells.

Inputs are torch's own layout (time-major ``(L, N, H_in)``, or ``(N, L, H_in)`` with
``batch_first``), not channels-last. Kernels are stored ``(in, gates * hidden)`` so a step is
``x @ kernel``; ``torch_state`` transposes them to torch's ``(gates * hidden, in)``. Gates are in
torch's order (LSTM ``i, f, g, o``; GRU ``r, z, n``), and each gate formula is written once, in
the step functions below, which the cells and the multi-layer layers share. A layer projects
the whole sequence through ``weight_ih`` in one matmul, then scans the recurrent part over time
(``lax.scan``, ``reverse=True`` for the reverse direction).
"""

from __future__ import annotations

import functools
import numbers
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from jaxnets.nn._args import positive
from jaxnets.nn.functional.activation import tanh as _tanh
from jaxnets.nn.functional.stochastic import dropout as _dropout
from jaxnets.nn.init import torch_uniform
from jaxnets.nn.state import TorchEntry, same, transposed

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

State = tuple[jax.Array, ...]


class _Weights(NamedTuple):
    """One layer and direction's parameters, in JAX layout (``None`` where absent)."""

    kernel_ih: jax.Array
    kernel_hh: jax.Array
    bias_ih: jax.Array | None
    bias_hh: jax.Array | None
    kernel_hr: jax.Array | None


def _affine(x: jax.Array, kernel: jax.Array, bias: jax.Array | None) -> jax.Array:
    y = x @ kernel
    if bias is None:
        return y
    # Explicit broadcast: the library stays valid under jax_numpy_rank_promotion="raise".
    return y + bias.reshape((1,) * (y.ndim - 1) + bias.shape)


def _elman_step(activation: Callable[[jax.Array], jax.Array]):
    def step(xw: jax.Array, state: State, w: _Weights) -> State:
        (h,) = state
        return (activation(xw + _affine(h, w.kernel_hh, w.bias_hh)),)

    return step


def _lstm_step(xw: jax.Array, state: State, w: _Weights) -> State:
    h, c = state
    gates = xw + _affine(h, w.kernel_hh, w.bias_hh)
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * _tanh(g)
    h = jax.nn.sigmoid(o) * _tanh(c)
    if w.kernel_hr is not None:
        h = h @ w.kernel_hr
    return h, c


def _gru_step(xw: jax.Array, state: State, w: _Weights) -> State:
    (h,) = state
    x_r, x_z, x_n = jnp.split(xw, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(_affine(h, w.kernel_hh, w.bias_hh), 3, axis=-1)
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    n = _tanh(x_n + r * h_n)
    # torch's order of operations: h' = (h - n) * z + n, i.e. (1 - z) * n + z * h.
    return ((h - n) * z + n,)


# mode -> (step, gates per hidden unit, number of state arrays)
_MODES: dict[str, tuple[Callable[[jax.Array, State, _Weights], State], int, int]] = {
    "RNN_TANH": (_elman_step(_tanh), 1, 1),
    "RNN_RELU": (_elman_step(jax.nn.relu), 1, 1),
    "LSTM": (_lstm_step, 4, 2),
    "GRU": (_gru_step, 3, 1),
}

_NONLINEARITY = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}


def _nonlinearity_mode(nonlinearity: str) -> str:
    if nonlinearity not in _NONLINEARITY:
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    return _NONLINEARITY[nonlinearity]


# Jitted on its own: eager calls (a debugging session, a Python loop over batches) then compile
# each recurrence once per shape and configuration instead of once per call; inside an outer
# jit it is inlined.
@functools.partial(jax.jit, static_argnames=("step", "reverse"))
def _scan(
    step: Callable[[jax.Array, State, _Weights], State],
    xw: jax.Array,
    state: State,
    weights: _Weights,
    valid: jax.Array | None,
    reverse: bool,
) -> tuple[State, jax.Array]:
    """Run ``step`` over the time axis of ``xw`` ``(L, N, G)``: final state and ``(L, N, H)``.

    ``valid`` ``(L, N, 1)`` (or ``None``: all valid) freezes the state of a sequence past its
    end and zeroes its outputs there, which is what torch computes for a packed sequence.
    """

    def body(carry: State, inputs):
        if valid is None:
            new = step(inputs, carry, weights)
            return new, new[0]
        xw_t, valid_t = inputs
        new = step(xw_t, carry, weights)
        kept = tuple(jnp.where(valid_t, n, o) for n, o in zip(new, carry, strict=True))
        return kept, jnp.where(valid_t, new[0], jnp.zeros((), new[0].dtype))

    return lax.scan(body, state, xw if valid is None else (xw, valid), reverse=reverse)


def _uniform_param(rngs: nnx.Rngs, shape: tuple[int, ...], bound: float, dtype) -> nnx.Param:
    return nnx.Param(torch_uniform(bound)(rngs.params(), shape, dtype))


def _check_dtype(layer: str, name: str, x: jax.Array, dtype: jnp.dtype) -> None:
    if x.dtype != dtype:
        raise ValueError(
            f"{layer} {name} dtype ({x.dtype}) does not match weight dtype ({dtype}); "
            f"convert one of them"
        )


class _RNNBase(nnx.Module):
    """torch's ``RNNBase``: parameters, checks and the multi-layer, bidirectional forward."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, numbers.Real)
            or not 0 <= dropout <= 1
        ):
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an "
                "element being zeroed"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=2,
            )
        for name, value in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
        self.input_size = positive("input_size", input_size)
        self.hidden_size = positive("hidden_size", hidden_size)
        self.num_layers = positive("num_layers", num_layers)
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(
                "proj_size should be a positive integer or zero to disable projections"
            )
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        self.mode = mode
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        # torch modules start in training mode; model.train()/eval() flip this attribute.
        self.deterministic = False
        uses_dropout = self.dropout > 0 and num_layers > 1
        self.rngs = rngs.dropout.fork() if uses_dropout else nnx.data(None)

        _, gates, _ = _MODES[mode]
        directions = 2 if bidirectional else 1
        real_hidden = proj_size if proj_size > 0 else hidden_size
        bound = 1.0 / np.sqrt(hidden_size)
        # (torch name, attribute, is a matrix) per tensor, in torch's _flat_weights order.
        names: list[tuple[str, str, bool]] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else real_hidden * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = [
                    ("weight_ih", (layer_input, gates * hidden_size)),
                    ("weight_hh", (real_hidden, gates * hidden_size)),
                ]
                if bias:
                    shapes += [
                        ("bias_ih", (gates * hidden_size,)),
                        ("bias_hh", (gates * hidden_size,)),
                    ]
                if proj_size > 0:
                    shapes += [("weight_hr", (hidden_size, proj_size))]
                for torch_name, shape in shapes:
                    attr = torch_name.replace("weight", "kernel") + suffix
                    setattr(self, attr, _uniform_param(rngs, shape, bound, dtype))
                    names.append((torch_name + suffix, attr, len(shape) == 2))
        self._names = tuple(names)

    def torch_state(self) -> dict[str, TorchEntry]:
        """torch's ``weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_hr_l0``, then
        ``..._reverse``, layer by layer; kernels transposed, biases as is."""
        return {
            name: transposed(attr, (1, 0)) if matrix else same(attr)
            for name, attr, matrix in self._names
        }

    def set_view(self, deterministic: bool | None = None) -> None:
        """``nnx.view(model, deterministic=...)`` support."""
        if deterministic is not None:
            self.deterministic = deterministic

    def _weights(self, layer: int, direction: int) -> _Weights:
        suffix = f"_l{layer}" + ("_reverse" if direction else "")

        def get(name: str) -> jax.Array | None:
            variable = getattr(self, name + suffix, None)
            return None if variable is None else variable[...]

        return _Weights(
            *(get(n) for n in ("kernel_ih", "kernel_hh", "bias_ih", "bias_hh", "kernel_hr"))
        )

    @property
    def _real_hidden(self) -> int:
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def _check_hidden(self, name: str, h: jax.Array, expected: tuple[int, ...], batched: bool):
        layer = type(self).__name__
        rank = len(expected)
        if h.ndim != rank:
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise ValueError(
                f"{layer}: for {kind} input, {name} should be {rank}-D, got shape {h.shape}"
            )
        if h.shape != expected:
            raise ValueError(f"{layer}: expected {name} of shape {expected}, got {h.shape}")

    def _initial_state(
        self, hx, batch: int, batched: bool, dtype: jnp.dtype
    ) -> tuple[jax.Array, ...]:
        """``hx`` checked and shaped ``(D * num_layers, N, H)``; zeros where not given."""
        stack = (2 if self.bidirectional else 1) * self.num_layers
        sizes = [self._real_hidden] + ([self.hidden_size] if self.mode == "LSTM" else [])
        if hx is None:
            return tuple(jnp.zeros((stack, batch, size), dtype) for size in sizes)
        if self.mode == "LSTM":
            if not isinstance(hx, tuple | list) or len(hx) != 2:
                raise ValueError("LSTM expected hx to be a tuple (h_0, c_0)")
            names = ["hx[0] (h_0)", "hx[1] (c_0)"]
        else:
            hx = (hx,)
            names = ["hx"]
        states = []
        for name, h, size in zip(names, hx, sizes, strict=True):
            h = jnp.asarray(h)
            expected = (stack, batch, size) if batched else (stack, size)
            self._check_hidden(name, h, expected, batched)
            _check_dtype(type(self).__name__, name, h, dtype)
            states.append(h if batched else h[:, None, :])
        return tuple(states)

    def _valid(self, lengths: ArrayLike, steps: int, batch: int) -> jax.Array:
        """``(L, N, 1)`` booleans: step ``t`` of sequence ``n`` is inside its length."""
        layer = type(self).__name__
        if not isinstance(lengths, jax.core.Tracer):
            values = np.asarray(lengths)
            if values.shape != (batch,) or not np.issubdtype(values.dtype, np.integer):
                raise ValueError(
                    f"{layer} expected lengths to be {batch} integers (one per sequence), got "
                    f"{values.dtype} of shape {values.shape}"
                )
            if np.any(values < 1) or np.any(values > steps):
                raise ValueError(
                    f"{layer} expected lengths in [1, {steps}] (the padded length), got "
                    f"{values.tolist()}"
                )
        lengths = jnp.asarray(lengths)
        if lengths.shape != (batch,):
            raise ValueError(f"{layer} expected lengths of shape ({batch},), got {lengths.shape}")
        time = lax.broadcasted_iota(lengths.dtype, (steps, batch, 1), 0)
        return time < lengths.reshape(1, batch, 1)

    def _forward(self, input, hx, lengths, rngs):
        layer_name = type(self).__name__
        if hasattr(input, "batch_sizes"):
            raise NotImplementedError(
                f"{layer_name} does not take packed sequences: pass the padded batch and "
                "lengths= (as pack_padded_sequence(..., enforce_sorted=False) would take)"
            )
        x = jnp.asarray(input)
        if x.ndim not in (2, 3):
            raise ValueError(
                f"{layer_name}: Expected input to be 2D or 3D, got {x.ndim}D tensor instead"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{layer_name}: input.size(-1) must be equal to input_size. Expected "
                f"{self.input_size}, got {x.shape[-1]} (input shape {x.shape})"
            )
        dtype = self.kernel_ih_l0.dtype
        _check_dtype(layer_name, "input", x, dtype)
        batched = x.ndim == 3
        if batched:
            x = jnp.swapaxes(x, 0, 1) if self.batch_first else x
        else:
            if lengths is not None:
                raise ValueError(f"{layer_name}: lengths needs batched 3-D input")
            x = x[:, None, :]
        steps, batch = x.shape[0], x.shape[1]
        states = self._initial_state(hx, batch, batched, dtype)
        valid = None if lengths is None else self._valid(lengths, steps, batch)

        step, _, _ = _MODES[self.mode]
        directions = 2 if self.bidirectional else 1
        finals: list[State] = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                weights = self._weights(layer, direction)
                index = layer * directions + direction
                xw = _affine(x, weights.kernel_ih, weights.bias_ih)
                final, ys = _scan(
                    step, xw, tuple(s[index] for s in states), weights, valid, direction == 1
                )
                finals.append(final)
                outputs.append(ys)
            x = jnp.concatenate(outputs, axis=-1) if directions == 2 else outputs[0]
            if layer < self.num_layers - 1 and not self.deterministic and self.dropout > 0:
                key = self.rngs if rngs is None else rngs
                # (T, N, H) between layers, torch's own axes.
                x = _dropout(x, self.dropout, True, key=key, layout="channels_first")

        output = jnp.swapaxes(x, 0, 1) if batched and self.batch_first else x
        final_states = tuple(jnp.stack(parts) for parts in zip(*finals, strict=True))
        if not batched:
            output = output[:, 0, :]
            final_states = tuple(s[:, 0, :] for s in final_states)
        return output, final_states


_LAYER_DOC = """
    Input ``(L, N, H_in)`` (``(N, L, H_in)`` with ``batch_first``) or unbatched ``(L, H_in)``;
    ``hx`` ``(D * num_layers, N, H_out)`` (unbatched ``(D * num_layers, H_out)``), zeros when
    omitted, with ``D = 2`` if ``bidirectional`` else 1. Returns ``output`` ``(L, N, D * H_out)``
    (batch first with ``batch_first``, unbatched ``(L, D * H_out)``): the last layer's hidden
    state at every step, the two directions concatenated; and the final states stacked
    layer-major as ``hx`` (layer ``k``'s reverse direction at index ``2k + 1``).

    Between layers (not after the last) ``dropout`` applies in training mode (the default,
    ``deterministic=False``; ``model.eval()`` sets ``True``), drawn from the ``dropout`` stream
    of the ``rngs`` given at construction (or at call time, ``rngs=``); the draws differ from
    torch's, so outputs with ``dropout > 0`` match torch in eval mode only.

    Packed sequences are not supported. For a padded batch of sequences of different lengths,
    pass ``lengths`` ``(N,)`` (integers in ``[1, L]``, checked unless traced): the result is torch's
    ``pad_packed_sequence(module(pack_padded_sequence(input, lengths, enforce_sorted=False)),
    total_length=L)``: outputs past a sequence's end are 0, the final states are each
    sequence's state at its last valid step, and the reverse direction starts at each sequence's
    last valid element.

    Parameters are stored ``kernel_ih_l{k}`` ``(in, gates * hidden_size)``, ``kernel_hh_l{k}``,
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (and ``_reverse``), torch's ``weight_*`` transposed;
    ``state_dict`` gives torch's names, layouts and order. All are initialised
    ``U(±1/sqrt(hidden_size))`` as torch. The input (and ``hx``) dtype must be the parameters'
    (torch raises too).
"""


class RNN(_RNNBase):
    """``torch.nn.RNN``: an Elman RNN, ``h_t = act(x_t @ W_ih + b_ih + h_{t-1} @ W_hh + b_hh)``
    with ``act`` ``tanh`` or ``relu`` (``nonlinearity``).
    """

    __doc__ = (
        (__doc__ or "")
        + _LAYER_DOC
        + """
    >>> rnn = RNN(3, 4, num_layers=2, rngs=nnx.Rngs(0))
    >>> output, h_n = rnn(jnp.ones((5, 2, 3), jnp.float32))
    >>> output.shape, h_n.shape
    ((5, 2, 4), (2, 2, 4))
    """
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
        **kwargs,
    ):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if kwargs:
            raise TypeError(f"RNN got unexpected keyword arguments {sorted(kwargs)}")
        self.nonlinearity = nonlinearity
        super().__init__(
            _nonlinearity_mode(nonlinearity),
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(
        self,
        input: ArrayLike,
        hx: ArrayLike | None = None,
        *,
        lengths: ArrayLike | None = None,
        rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """``(output, h_n)``; ``lengths`` ``(N,)`` for padded sequences of different lengths."""
        output, (h_n,) = self._forward(input, hx, lengths, rngs)
        return output, h_n


class LSTM(_RNNBase):
    """``torch.nn.LSTM``: gates ``i, f, g, o`` from ``x_t @ W_ih + b_ih + h_{t-1} @ W_hh + b_hh``,
    ``c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)``, ``h_t = sigmoid(o) * tanh(c_t)``, and
    with ``proj_size > 0`` ``h_t = h_t @ W_hr`` (``H_out = proj_size``, ``kernel_hr_l{k}``
    ``(hidden_size, proj_size)``). ``hx`` is a tuple ``(h_0, c_0)``, ``c_0`` with
    ``hidden_size`` features; the result is ``(output, (h_n, c_n))``.
    """

    __doc__ = (
        (__doc__ or "")
        + _LAYER_DOC
        + """
    >>> lstm = LSTM(3, 4, bidirectional=True, proj_size=2, rngs=nnx.Rngs(0))
    >>> output, (h_n, c_n) = lstm(jnp.ones((5, 3), jnp.float32))  # unbatched
    >>> output.shape, h_n.shape, c_n.shape
    ((5, 4), (2, 2), (2, 4))
    """
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        super().__init__(
            "LSTM",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(
        self,
        input: ArrayLike,
        hx: tuple[ArrayLike, ArrayLike] | None = None,
        *,
        lengths: ArrayLike | None = None,
        rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """``(output, (h_n, c_n))``; ``lengths`` ``(N,)`` for padded sequences."""
        output, (h_n, c_n) = self._forward(input, hx, lengths, rngs)
        return output, (h_n, c_n)


class GRU(_RNNBase):
    """``torch.nn.GRU``: gates ``r, z, n`` with ``r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)``,
    ``z`` likewise, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`` and
    ``h' = (1 - z) * n + z * h``.
    """

    __doc__ = (
        (__doc__ or "")
        + _LAYER_DOC
        + """
    >>> gru = GRU(3, 4, batch_first=True, rngs=nnx.Rngs(0))
    >>> output, h_n = gru(jnp.ones((2, 5, 3), jnp.float32), lengths=jnp.asarray([5, 2]))
    >>> output.shape, h_n.shape, output[1, 2:].tolist() == [[0.0] * 4] * 3
    ((2, 5, 4), (1, 2, 4), True)
    """
    )

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
        **kwargs,
    ):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if kwargs:
            raise TypeError(f"GRU got unexpected keyword arguments {sorted(kwargs)}")
        super().__init__(
            "GRU",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(
        self,
        input: ArrayLike,
        hx: ArrayLike | None = None,
        *,
        lengths: ArrayLike | None = None,
        rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """``(output, h_n)``; ``lengths`` ``(N,)`` for padded sequences of different lengths."""
        output, (h_n,) = self._forward(input, hx, lengths, rngs)
        return output, h_n


class _RNNCellBase(nnx.Module):
    """torch's ``RNNCellBase``: one step of the recurrence, on ``(N, H_in)`` or ``(H_in,)``."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        bias: bool,
        *,
        dtype: DTypeLike,
        rngs: nnx.Rngs,
    ):
        self.input_size = positive("input_size", input_size)
        self.hidden_size = positive("hidden_size", hidden_size)
        if not isinstance(bias, bool):
            raise TypeError(f"bias should be of type bool, got: {type(bias).__name__}")
        self.mode = mode
        self.bias = bias
        _, gates, _ = _MODES[mode]
        bound = 1.0 / np.sqrt(hidden_size)
        size = gates * hidden_size
        self.kernel_ih = _uniform_param(rngs, (input_size, size), bound, dtype)
        self.kernel_hh = _uniform_param(rngs, (hidden_size, size), bound, dtype)
        self.bias_ih = _uniform_param(rngs, (size,), bound, dtype) if bias else None
        self.bias_hh = _uniform_param(rngs, (size,), bound, dtype) if bias else None

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight_ih``, ``weight_hh`` (transposed kernels), ``bias_ih``, ``bias_hh``."""
        entries = {
            "weight_ih": transposed("kernel_ih", (1, 0)),
            "weight_hh": transposed("kernel_hh", (1, 0)),
        }
        if self.bias:
            entries.update(bias_ih=same("bias_ih"), bias_hh=same("bias_hh"))
        return entries

    def _step(self, input: ArrayLike, hx) -> State:
        layer = type(self).__name__
        x = jnp.asarray(input)
        if x.ndim not in (1, 2):
            raise ValueError(f"{layer}: Expected input to be 1D or 2D, got {x.ndim}D instead")
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{layer}: input has inconsistent input_size: got {x.shape[-1]} expected "
                f"{self.input_size} (input shape {x.shape})"
            )
        dtype = self.kernel_ih.dtype
        _check_dtype(layer, "input", x, dtype)
        batched = x.ndim == 2
        x = x if batched else x[None]
        expected = x.shape[:1] + (self.hidden_size,) if batched else (self.hidden_size,)
        _, _, count = _MODES[self.mode]
        if hx is None:
            state = tuple(jnp.zeros((x.shape[0], self.hidden_size), dtype) for _ in range(count))
        else:
            if count == 2:
                if not isinstance(hx, tuple | list) or len(hx) != 2:
                    raise ValueError(f"{layer} expected hx to be a tuple (h_0, c_0)")
                names = ["hx[0]", "hx[1]"]
            else:
                hx = (hx,)
                names = ["hx"]
            state = []
            for name, h in zip(names, hx, strict=True):
                h = jnp.asarray(h)
                if h.shape != expected:
                    raise ValueError(
                        f"{layer}: expected {name} of shape {expected} for input of shape "
                        f"{tuple(jnp.shape(input))}, got {h.shape}"
                    )
                _check_dtype(layer, name, h, dtype)
                state.append(h if batched else h[None])
            state = tuple(state)
        weights = _Weights(self.kernel_ih[...], self.kernel_hh[...], *self._biases(), None)
        step, _, _ = _MODES[self.mode]
        new = step(_affine(x, weights.kernel_ih, weights.bias_ih), state, weights)
        return new if batched else tuple(s[0] for s in new)

    def _biases(self) -> tuple[jax.Array | None, jax.Array | None]:
        if not self.bias:
            return None, None
        return self.bias_ih[...], self.bias_hh[...]


class RNNCell(_RNNCellBase):
    """``torch.nn.RNNCell``: ``h' = act(x @ W_ih + b_ih + h @ W_hh + b_hh)``, ``act`` ``tanh``
    or ``relu``.

    Input ``(N, input_size)`` or unbatched ``(input_size,)``; ``hx`` the same with
    ``hidden_size`` (zeros when omitted); returns ``h'`` shaped as ``hx``. Kernels
    ``kernel_ih`` ``(input_size, hidden_size)`` and ``kernel_hh`` are torch's ``weight_ih`` /
    ``weight_hh`` transposed; all parameters ``U(±1/sqrt(hidden_size))`` as torch. torch checks
    ``nonlinearity`` only when called; here the constructor does.

    >>> cell = RNNCell(3, 4, rngs=nnx.Rngs(0))
    >>> cell(jnp.ones((2, 3), jnp.float32)).shape
    (2, 4)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.nonlinearity = nonlinearity
        super().__init__(
            _nonlinearity_mode(nonlinearity),
            input_size,
            hidden_size,
            bias,
            dtype=dtype,
            rngs=rngs,
        )

    def __call__(self, input: ArrayLike, hx: ArrayLike | None = None) -> jax.Array:
        """The next hidden state, ``(N, hidden_size)`` or ``(hidden_size,)``."""
        (h,) = self._step(input, hx)
        return h


class LSTMCell(_RNNCellBase):
    """``torch.nn.LSTMCell``: one LSTM step (gates ``i, f, g, o``), ``hx = (h, c)``.

    Input ``(N, input_size)`` or ``(input_size,)``; ``h`` and ``c`` ``(N, hidden_size)`` or
    ``(hidden_size,)`` (zeros when omitted); returns ``(h', c')``. Kernels ``(in, 4 *
    hidden_size)``, torch's weights transposed; all parameters ``U(±1/sqrt(hidden_size))``.

    >>> cell = LSTMCell(3, 4, rngs=nnx.Rngs(0))
    >>> h, c = cell(jnp.ones((3,), jnp.float32))
    >>> h.shape, c.shape
    ((4,), (4,))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        super().__init__("LSTM", input_size, hidden_size, bias, dtype=dtype, rngs=rngs)

    def __call__(
        self, input: ArrayLike, hx: tuple[ArrayLike, ArrayLike] | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """``(h', c')``, each ``(N, hidden_size)`` or ``(hidden_size,)``."""
        h, c = self._step(input, hx)
        return h, c


class GRUCell(_RNNCellBase):
    """``torch.nn.GRUCell``: one GRU step (gates ``r, z, n``, torch's formulas).

    Input ``(N, input_size)`` or ``(input_size,)``; ``hx`` ``(N, hidden_size)`` or
    ``(hidden_size,)`` (zeros when omitted); returns ``h'``. Kernels ``(in, 3 * hidden_size)``,
    torch's weights transposed; all parameters ``U(±1/sqrt(hidden_size))``.

    >>> cell = GRUCell(3, 4, rngs=nnx.Rngs(0))
    >>> cell(jnp.ones((2, 3), jnp.float32), jnp.zeros((2, 4), jnp.float32)).shape
    (2, 4)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        super().__init__("GRU", input_size, hidden_size, bias, dtype=dtype, rngs=rngs)

    def __call__(self, input: ArrayLike, hx: ArrayLike | None = None) -> jax.Array:
        """The next hidden state, ``(N, hidden_size)`` or ``(hidden_size,)``."""
        (h,) = self._step(input, hx)
        return h
