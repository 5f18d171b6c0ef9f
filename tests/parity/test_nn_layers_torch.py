"""Every jaxnets.nn layer against its torch.nn twin: forward values, input and parameter gradients.

Each case builds the torch layer (its parameters and buffers randomised so that affine weights
and running statistics are not the trivial ones), copies its ``state_dict`` into the jaxnets layer
with ``load_state_dict``, and compares one forward pass and the gradients of ``sum(y * cotangent)``
in float64 (to 1e-12 of the largest entry: the same algorithm) and float32 (1e-5), in training and
eval mode where the layer has modes. Inputs are drawn in torch's layout and moved channels-last.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from jaxnets import nn

TOLERANCE = {"float64": 1e-12, "float32": 1e-5}
TORCH_DTYPE = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class Case:
    """One layer configuration: torch's constructor call, the input shape in torch's layout."""

    layer: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    shape: tuple[int, ...] = (3, 4)
    channels_in: bool = False  # input is (N, C, *spatial) in torch: move C last for jaxnets
    channels_out: bool | None = None  # output likewise (default: as the input)
    jax_kwargs: dict | None = None  # where the jaxnets call differs (axes of channels-last data)
    indices: int | None = None  # integer input in [0, indices) instead of floats
    modes: tuple[str, ...] = ("train",)

    def __str__(self) -> str:
        args = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.layer}({', '.join(args)})@{'x'.join(map(str, self.shape))}"


def _image(layer: str, *args: Any, shape=(2, 4, 7, 8), modes=("train",), **kwargs: Any) -> Case:
    return Case(layer, args, kwargs, shape, channels_in=True, modes=modes)


MODES = ("train", "eval")
# One case a line reads as a table.
# fmt: off
CASES = [
    Case("Linear", (5, 3), shape=(4, 5)),
    Case("Linear", (5, 3), {"bias": False}, shape=(2, 3, 5)),
    Case("Identity", shape=(3, 4)),
    Case("Conv1d", (4, 6, 3), shape=(2, 4, 11), channels_in=True),
    Case("Conv1d", (4, 6, 3), {"stride": 2, "padding": 1}, (2, 4, 11), True),
    Case("Conv1d", (4, 6, 4), {"padding": "same", "dilation": 2}, (2, 4, 11), True),
    Case("Conv1d", (4, 6, 3), {"groups": 2, "bias": False}, (2, 4, 11), True),
    Case("Conv1d", (4, 6, 3), {"padding": 2, "padding_mode": "reflect"}, (2, 4, 11), True),
    Case("Conv1d", (4, 6, 3), {"padding": 1, "padding_mode": "circular"}, (4, 11), True),
    _image("Conv2d", 4, 6, 3),
    _image("Conv2d", 4, 6, 3, stride=2, padding=1),
    _image("Conv2d", 4, 6, (2, 3), stride=(2, 1), padding=(1, 2), dilation=(2, 1)),
    _image("Conv2d", 4, 6, 4, padding="same", dilation=(1, 2)),
    _image("Conv2d", 4, 8, 3, padding="valid", groups=4),
    _image("Conv2d", 4, 6, 3, padding=2, padding_mode="reflect"),
    _image("Conv2d", 4, 6, 3, padding=(1, 2), padding_mode="replicate", groups=2),
    _image("Conv2d", 4, 6, 3, padding="same", padding_mode="circular", bias=False),
    _image("Conv2d", 4, 6, 3, shape=(4, 6, 7)),
    _image("ConvTranspose2d", 4, 6, 3, shape=(2, 4, 5, 4)),
    _image("ConvTranspose2d", 4, 6, 3, stride=2, padding=1, output_padding=1, shape=(2, 4, 5, 4)),
    _image("ConvTranspose2d", 4, 6, (2, 3), stride=(2, 1), groups=2, shape=(2, 4, 5, 4)),
    _image("ConvTranspose2d", 4, 6, 3, dilation=2, bias=False, shape=(2, 4, 5, 4)),
    _image("ConvTranspose2d", 4, 6, 3, stride=3, padding=3, output_padding=2, shape=(2, 4, 5, 4)),
    _image("ConvTranspose2d", 4, 4, 3, stride=2, groups=4, dilation=2, output_padding=1,
           shape=(4, 5, 4)),  # unbatched, depthwise
    Case("BatchNorm1d", (4,), shape=(6, 4), modes=MODES),
    Case("BatchNorm1d", (4,), {"momentum": None}, (3, 4, 5), True, modes=MODES),
    Case("BatchNorm1d", (4,), {"affine": False, "eps": 1e-3}, (6, 4), modes=MODES),
    Case("BatchNorm1d", (4,), {"track_running_stats": False}, (3, 4, 5), True, modes=MODES),
    _image("BatchNorm2d", 4, shape=(3, 4, 5, 6), modes=MODES),
    _image("BatchNorm2d", 4, momentum=0.3, shape=(3, 4, 5, 6), modes=MODES),
    _image("BatchNorm2d", 4, affine=False, track_running_stats=False, shape=(3, 4, 5, 6),
           modes=MODES),
    Case("LayerNorm", (5,), shape=(2, 3, 5)),
    Case("LayerNorm", ((3, 5),), {"eps": 1e-3}, (2, 4, 3, 5)),
    Case("LayerNorm", (5,), {"bias": False}, (2, 3, 5)),
    Case("LayerNorm", (5,), {"elementwise_affine": False}, (2, 3, 5)),
    _image("GroupNorm", 2, 4),
    _image("GroupNorm", 4, 4, eps=1e-3, shape=(2, 4, 9)),
    _image("GroupNorm", 1, 4, affine=False),
    Case("GroupNorm", (1, 4), shape=(3, 4)),
    Case("Embedding", (10, 3), shape=(3, 4), indices=10),
    Case("Embedding", (10, 3), {"padding_idx": 2}, (3, 4), indices=10),
    Case("Embedding", (10, 3), {"padding_idx": -1}, (3, 4), indices=10),
    Case("Dropout", (0.3,), shape=(5, 6), modes=("eval",)),
    Case("Dropout", (0.0,), shape=(5, 6), modes=MODES),
    _image("MaxPool2d", 2, shape=(2, 3, 9, 10)),
    _image("MaxPool2d", 3, 2, 1, shape=(2, 3, 9, 10)),
    _image("MaxPool2d", 3, 2, 1, dilation=2, shape=(2, 3, 9, 10)),
    _image("MaxPool2d", 2, ceil_mode=True, shape=(2, 3, 9, 10)),
    _image("MaxPool2d", (3, 2), (2, 3), (1, 1), ceil_mode=True, shape=(2, 3, 9, 10)),
    _image("MaxPool2d", 3, 2, shape=(3, 8, 7)),
    _image("AvgPool2d", 2, shape=(2, 3, 9, 10)),
    _image("AvgPool2d", 3, 2, 1, shape=(2, 3, 9, 10)),
    _image("AvgPool2d", 3, 2, 1, count_include_pad=False, shape=(2, 3, 9, 10)),
    _image("AvgPool2d", 3, 2, 1, ceil_mode=True, shape=(2, 3, 8, 10)),
    _image("AvgPool2d", 3, 2, 1, ceil_mode=True, count_include_pad=False, shape=(2, 3, 8, 10)),
    _image("AvgPool2d", (2, 3), divisor_override=5, ceil_mode=True, shape=(2, 3, 9, 10)),
    _image("AdaptiveAvgPool2d", 1, shape=(2, 3, 9, 10)),
    _image("AdaptiveAvgPool2d", (3, 4), shape=(2, 3, 9, 10)),
    _image("AdaptiveAvgPool2d", (None, 4), shape=(2, 3, 9, 10)),
    _image("AdaptiveAvgPool2d", 7, shape=(3, 9, 5)),
    Case("Flatten", shape=(2, 3, 4, 5), channels_in=True, channels_out=False),
    Case("Flatten", (2,), shape=(2, 3, 4, 5), channels_in=True, channels_out=False),
    Case("Flatten", (0, 2), shape=(2, 3, 4, 5), channels_in=True, channels_out=False),
    Case("Flatten", shape=(3, 4)),
    Case("ReLU", shape=(3, 7)),
    Case("GELU", shape=(3, 7)),
    Case("GELU", ("tanh",), shape=(3, 7)),
    Case("SiLU", shape=(3, 7)),
    Case("Tanh", shape=(3, 7)),
    Case("Sigmoid", shape=(3, 7)),
    Case("Softmax", (), {"dim": 1}, shape=(3, 7)),
    Case("Softmax", (), {"dim": 1}, (2, 3, 4, 5), True, jax_kwargs={"dim": -1}),
    Case("Softmax", (), {"dim": -1}, (2, 3, 4, 5), True, jax_kwargs={"dim": 2}),
]
# fmt: on


def _channels_last(a: np.ndarray) -> np.ndarray:
    return np.moveaxis(a, 1, -1) if a.ndim >= 3 else a


def _channels_first(a: np.ndarray) -> np.ndarray:
    return np.moveaxis(a, -1, 1) if a.ndim >= 3 else a


def _unbatched_channels_last(a: np.ndarray, batched_rank: int) -> np.ndarray:
    # An unbatched (C, *spatial) torch input is (*spatial, C) here.
    return np.moveaxis(a, 0, -1) if a.ndim == batched_rank - 1 else _channels_last(a)


def _batched_rank(case: Case) -> int:
    return {
        "Conv1d": 3,
        "Conv2d": 4,
        "ConvTranspose2d": 4,
        "MaxPool2d": 4,
        "AvgPool2d": 4,
        "AdaptiveAvgPool2d": 4,
    }.get(case.layer, len(case.shape))


def _to_jax_layout(case: Case, a: np.ndarray, channels: bool) -> np.ndarray:
    return _unbatched_channels_last(a, _batched_rank(case)) if channels else a


def _to_torch_layout(case: Case, a: np.ndarray, channels: bool) -> np.ndarray:
    if not channels:
        return a
    return np.moveaxis(a, -1, 0) if a.ndim == _batched_rank(case) - 1 else _channels_first(a)


def _build(case: Case, dtype: str) -> tuple[torch.nn.Module, nnx.Module]:
    torch.manual_seed(0)
    theirs = getattr(torch.nn, case.layer)(*case.args, **case.kwargs).to(TORCH_DTYPE[dtype])
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in theirs.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0, generator=generator)
            elif tensor.is_floating_point():
                tensor.normal_(generator=generator)
            else:
                tensor.fill_(3)  # num_batches_tracked: matters for momentum=None
    ours_type = getattr(nn, case.layer)
    extra = {}
    parameters = inspect.signature(ours_type.__init__).parameters
    if "dtype" in parameters:
        extra["dtype"] = jnp.dtype(dtype)
    if "rngs" in parameters:
        extra["rngs"] = nnx.Rngs(0)
    kwargs = case.kwargs if case.jax_kwargs is None else case.jax_kwargs
    ours = ours_type(*case.args, **kwargs, **extra)
    nn.load_state_dict(ours, theirs.state_dict())
    return theirs, ours


def _close(got: Any, want: np.ndarray, tolerance: float, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != torch's {want.shape}"
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-30)
    error = float(np.max(np.abs(got - want), initial=0.0))
    assert error <= tolerance * scale, f"{what}: max error {error:.3g} vs scale {scale:.3g}"


def _inputs(case: Case, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(len(str(case)))
    if case.indices is not None:
        values = rng.integers(0, case.indices, case.shape)
        values.flat[:3] = [2, case.indices - 1, 0]  # the padding rows of the cases above
        return values
    return rng.standard_normal(case.shape).astype(dtype)


def _cotangent(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    return np.random.default_rng(7).standard_normal(shape).astype(dtype)


def _jax_value_and_grads(ours: nnx.Module, x: jax.Array, cotangent: jax.Array):
    """Output, parameter gradients (as ``nnx.State``) and input gradient; updates ``ours``."""
    integer_input = jnp.issubdtype(x.dtype, jnp.integer)

    def loss(model, x):
        y = model(x)
        return jnp.sum(y * cotangent), y

    # One compiled program per case: far cheaper than tracing each primitive eagerly.
    @nnx.jit
    def grads(model, x):
        argnums = 0 if integer_input else (0, 1)
        return nnx.value_and_grad(loss, argnums=argnums, has_aux=True)(model, x)

    (_, y), grads = grads(ours, x)
    param_grads, x_grad = (grads, None) if integer_input else grads
    return y, param_grads, x_grad


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_layer_matches_torch(case: Case, dtype: str):
    for mode in case.modes:
        theirs, ours = _build(case, dtype)
        theirs.train(mode == "train")
        ours.train() if mode == "train" else ours.eval()
        tolerance = TOLERANCE[dtype]
        what = f"{case} {dtype} {mode}"
        channels_out = case.channels_in if case.channels_out is None else case.channels_out

        x = _inputs(case, dtype)
        xt = (
            torch.from_numpy(x) if case.indices is not None else torch.tensor(x, requires_grad=True)
        )
        with warnings.catch_warnings():
            # torch warns that 'same' padding of an even kernel copies the input: a cost note.
            warnings.filterwarnings("ignore", "Using padding='same'", UserWarning)
            yt = theirs(xt)
        cotangent = _cotangent(tuple(yt.shape), dtype)
        (yt * torch.from_numpy(cotangent)).sum().backward()

        x_jax = jnp.asarray(_to_jax_layout(case, x, case.channels_in))
        cot_jax = jnp.asarray(_to_jax_layout(case, cotangent, channels_out))
        y, param_grads, x_grad = _jax_value_and_grads(ours, x_jax, cot_jax)

        assert y.dtype == jnp.dtype(dtype), what
        _close(
            _to_torch_layout(case, np.asarray(y), channels_out),
            yt.detach().numpy(),
            tolerance,
            f"{what}: output",
        )
        if x_grad is not None:
            _close(
                _to_torch_layout(case, np.asarray(x_grad), case.channels_in),
                xt.grad.numpy(),
                tolerance,
                f"{what}: input gradient",
            )
        graphdef, _, rest = nnx.split(ours, nnx.Param, ...)
        grads = nn.state_dict(nnx.merge(graphdef, param_grads, rest))
        for name, parameter in theirs.named_parameters():
            _close(grads[name], parameter.grad.numpy(), tolerance, f"{what}: d/d{name}")
        ours_state = nn.state_dict(ours)
        for name, buffer in theirs.named_buffers():
            _close(ours_state[name], buffer.numpy(), tolerance, f"{what}: buffer {name}")


@pytest.mark.parametrize("dilation", [1, 2])
def test_max_pool_gives_a_tied_window_gradient_to_its_first_maximum(dilation):
    """Constant input ties every window; torch routes the gradient to the first element."""
    x = np.ones((1, 1, 5, 5))
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.MaxPool2d(2, 1, dilation=dilation)(xt).sum().backward()
    pool = nn.MaxPool2d(2, 1, dilation=dilation)
    grad = jax.grad(lambda v: jnp.sum(pool(v)))(jnp.asarray(_channels_last(x)))
    np.testing.assert_array_equal(_channels_first(np.asarray(grad)), xt.grad.numpy())
