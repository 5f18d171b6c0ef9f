"""Pooling and convolution against torch: every ``module_db`` and ``op_db`` sample, plus extras.

The layers (``MaxPool1d`` ... ``ConvTranspose3d``) run every sample input of torch's own module
test database (``torch.testing._internal.common_modules.module_db``) in float64 and float32,
with torch's randomised weights loaded through ``load_state_dict``; the functional forms run the
``OpInfo`` samples of ``op_db`` in torch's own layout (``layout="channels_first"``), float64.
Each compares the output (max pools' indices exactly), the input gradient and the parameter
gradients of ``sum(y * cotangent)`` with torch's: float64 to 1e-10 of the largest entry, float32
to 1e-5, NaNs where torch has them.

Compilation is most of the cost on CPU, so each test compiles one program holding a family's
cases, with XLA's cheapest CPU code generation (``COMPILER``; the arithmetic is the same IEEE
operations, only less optimised), and inputs go in as NumPy arrays (``jnp.asarray`` outside a
trace compiles a program per shape). op_db's max-pool samples are a product of every option
with every other (2,880 samples, 624 distinct): the test takes a subset holding every input
shape and every pair of option values that occurs in them (28 samples). This file's own cases
cover options the samples leave out, ties, NaNs, ``-inf`` windows and the argument errors.
"""

from __future__ import annotations

import inspect
import itertools
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from flax import nnx
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_modules import module_db

from jaxnets import nn
from jaxnets.nn import convolution, pooling
from jaxnets.nn.functional import convolution as FC
from jaxnets.nn.functional import pooling as FP

pytestmark = pytest.mark.parity

TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
TORCH_DTYPE = {"float64": torch.float64, "float32": torch.float32}
# Fast compilation: XLA's legacy CPU emitters without LLVM optimisation (5x faster to compile).
# XLA's own CPU convolution (3-D) runs 50x slower unoptimised, so those keep LLVM's passes.
COMPILER = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
COMPILER_3D_CONV = {"xla_cpu_use_fusion_emitters": False}

POOLS = [
    f"{kind}{n}d"
    for kind, dims in [
        ("MaxPool", (1, 2, 3)),
        ("AvgPool", (1, 2, 3)),
        ("AdaptiveAvgPool", (1, 2, 3)),
        ("AdaptiveMaxPool", (1, 2, 3)),
        ("LPPool", (1, 2, 3)),
        ("FractionalMaxPool", (2, 3)),
    ]
    for n in dims
]
CONVS = [f"{kind}{n}d" for kind in ("Conv", "ConvTranspose") for n in (1, 2, 3)]
INFOS = {info.name[3:]: info for info in module_db if info.name[3:] in POOLS + CONVS}


def _ours(name: str) -> type[nnx.Module]:
    return getattr(pooling if "Pool" in name else convolution, name)


# -- layouts and comparison ------------------------------------------------------------------


def _last(a: np.ndarray, axis: int | None) -> np.ndarray:
    return a if axis is None else np.moveaxis(a, axis, -1)


def _first(a: np.ndarray, axis: int | None) -> np.ndarray:
    return a if axis is None else np.moveaxis(a, -1, axis)


def _numpy(value: Any) -> Any:
    return value.detach().numpy() if isinstance(value, torch.Tensor) else value


def _close(got: Any, want: Any, tolerance: float, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != torch's {want.shape}"
    if want.dtype.kind in "iu":
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != torch's {want.dtype}"
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"{what}: NaNs")
    finite = ~np.isnan(want)
    got, want = got[finite], want[finite]
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-30)
    error = float(np.max(np.abs(got - want), initial=0.0))
    assert error <= tolerance * scale, f"{what}: max error {error:.3g} vs scale {scale:.3g}"


def _cotangent(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    return np.random.default_rng(7).standard_normal(shape).astype(dtype)


def _torch_run(call: Any, inputs: list[torch.Tensor]) -> tuple[list[np.ndarray], list[Any]]:
    """torch's outputs (value, and indices if any) and its gradients of ``sum(value * cot)``."""
    with warnings.catch_warnings():
        # torch warns that 'same' padding of an even kernel copies the input: a cost note.
        warnings.filterwarnings("ignore", "Using padding='same'", UserWarning)
        out = call()
    outs = list(out) if isinstance(out, tuple) else [out]
    cotangent = torch.from_numpy(_cotangent(tuple(outs[0].shape), _numpy(outs[0]).dtype))
    grads = torch.autograd.grad((outs[0] * cotangent).sum(), inputs, allow_unused=True)
    return [_numpy(o) for o in outs], [None if g is None else g.numpy() for g in grads]


def _compiled_value_and_grads(
    functions: list[Any], arguments: list[Any], xla_convolution: bool = False
) -> list[Any]:
    """``[value_and_grad(f)(a) for f, a]`` as one compiled program (compiling is the cost).

    Each ``f(differentiable, constant)`` returns ``(loss, outputs)``; the gradient is taken with
    respect to ``differentiable``.
    """

    def run(arguments):
        return [
            jax.value_and_grad(f, has_aux=True)(*a)
            for f, a in zip(functions, arguments, strict=True)
        ]

    options = COMPILER_3D_CONV if xla_convolution else COMPILER
    return jax.jit(run, compiler_options=options)(arguments)


def _loss(out: Any, cotangent: np.ndarray) -> tuple[jax.Array, list[jax.Array]]:
    outs = list(out) if isinstance(out, tuple) else [out]
    return jnp.sum(outs[0] * cotangent), outs


# -- layers -------------------------------------------------------------------------------


@dataclass
class LayerCase:
    """One layer call: torch's constructor arguments and input, in torch's layout."""

    name: str
    args: tuple
    kwargs: dict
    x: torch.Tensor
    forward: dict = field(default_factory=dict)  # torch's forward keywords
    ours_forward: dict | None = None  # ours where they differ (channels-last shapes)
    label: str = ""


def _build(case: LayerCase, dtype: str) -> tuple[torch.nn.Module, nnx.Module]:
    torch.manual_seed(1)
    theirs = getattr(torch.nn, case.name)(*case.args, **case.kwargs).to(TORCH_DTYPE[dtype])
    ours_type = _ours(case.name)
    extra = {}
    if "dtype" in inspect.signature(ours_type.__init__).parameters:
        extra["dtype"] = jnp.dtype(dtype)
    convolution_layer = case.name in CONVS

    def build() -> nnx.Module:
        kwargs = {k: _numpy(v) for k, v in case.kwargs.items()}
        rngs = {"rngs": nnx.Rngs(0)} if convolution_layer else {}
        return ours_type(*[_numpy(a) for a in case.args], **kwargs, **extra, **rngs)

    # Parameters are built abstract (no random draws to compile), then get torch's state.
    ours = nnx.eval_shape(build) if convolution_layer else build()
    state = theirs.state_dict()
    nn.load_state_dict(ours, state)
    shapes = {key: value.shape for key, value in nn.state_dict(ours).items()}
    assert shapes == {key: tuple(value.shape) for key, value in state.items()}, case.label
    return theirs, ours


def _check_layers(cases: list[LayerCase], dtype: str) -> None:
    """Every case against torch: outputs, indices, input and parameter gradients."""
    functions, arguments, expected = [], [], []
    for case in cases:
        theirs, ours = _build(case, dtype)
        x = case.x.detach().to(TORCH_DTYPE[dtype]).requires_grad_(True)
        params = [p for _, p in theirs.named_parameters()]
        outs, grads = _torch_run(lambda: theirs(x, **case.forward), [x, *params])  # noqa: B023
        axis = _ours(case.name).torch_channel_axis[x.ndim]
        cotangent = _last(_cotangent(outs[0].shape, outs[0].dtype), axis)
        graphdef, variables, rest = nnx.split(ours, nnx.Param, ...)
        forward = case.forward if case.ours_forward is None else case.ours_forward

        def loss(differentiable, rest, graphdef=graphdef, forward=forward, cot=cotangent):
            variables, x = differentiable
            return _loss(nnx.merge(graphdef, variables, rest)(x, **forward), cot)

        functions.append(loss)
        arguments.append(((variables, _last(_numpy(x), axis)), rest))
        names = [key for key, _ in theirs.named_parameters()]
        expected.append((case, axis, outs, grads, names, graphdef, rest))

    xla_convolution = any(re.fullmatch(r"Conv(Transpose)?3d", case.name) for case in cases)
    results = _compiled_value_and_grads(functions, arguments, xla_convolution)
    tolerance = TOLERANCE[dtype]
    for ((_, got), (param_grads, x_grad)), (case, axis, outs, grads, names, graphdef, rest) in zip(
        results, expected, strict=True
    ):
        what = f"{case.label or case.name} {dtype}"
        assert len(got) == len(outs), what
        _close(_first(np.asarray(got[0]), axis), outs[0], tolerance, f"{what}: output")
        if len(outs) == 2:
            assert got[1].dtype == jax.dtypes.canonicalize_dtype(jnp.int64), what
            _close(_first(np.asarray(got[1]), axis), outs[1], 0, f"{what}: indices")
        _close(_first(np.asarray(x_grad), axis), grads[0], tolerance, f"{what}: input gradient")
        ours_grads = nn.state_dict(nnx.merge(graphdef, param_grads, rest))
        for key, grad in zip(names, grads[1:], strict=True):
            _close(ours_grads[key], grad, tolerance, f"{what}: d/d{key}")


def _module_db_cases(name: str, dtype: str) -> list[LayerCase]:
    info = INFOS[name]
    torch.manual_seed(0)
    samples = info.module_inputs_func(
        info, device="cpu", dtype=TORCH_DTYPE[dtype], requires_grad=True, training=True
    )
    cases = []
    for index, sample in enumerate(samples):
        (x,) = sample.forward_input.args
        c = sample.constructor_input
        cases.append(
            LayerCase(
                name, c.args, c.kwargs, x, sample.forward_input.kwargs, None, f"{name}#{index}"
            )
        )
    return cases


def test_module_db_covers_every_class():
    assert sorted(INFOS) == sorted(POOLS + CONVS)
    assert not any(INFOS[name].train_and_eval_differ for name in INFOS)


# Families share a compiled program (one compilation's fixed costs instead of one per class);
# XLA's 3-D convolutions need its optimised build (see COMPILER_3D_CONV), so they go apart.
FAMILIES = {
    "MaxPool": ["MaxPool1d", "MaxPool2d", "MaxPool3d"],
    "AvgPool": ["AvgPool1d", "AvgPool2d", "AvgPool3d"],
    "AdaptivePool": [f"Adaptive{kind}Pool{n}d" for kind in ("Avg", "Max") for n in (1, 2, 3)],
    "LPPool+FractionalMaxPool": [*(f"LPPool{n}d" for n in (1, 2, 3)), *POOLS[-2:]],
    "Conv1d/2d": ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"],
    "Conv3d": ["Conv3d", "ConvTranspose3d"],
}


def test_families_hold_every_class():
    assert sorted(sum(FAMILIES.values(), [])) == sorted(POOLS + CONVS)


@pytest.mark.torch_db_full
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_module_db_samples_match_torch(family: str, dtype: str):
    _check_layers([c for name in FAMILIES[family] for c in _module_db_cases(name, dtype)], dtype)


def _randn(*shape: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(sum(shape) + len(shape))
    return torch.randn(*shape, generator=generator, dtype=torch.float64)


def _case(name: str, *args: Any, shape: tuple[int, ...], **kwargs: Any) -> LayerCase:
    forward = kwargs.pop("forward", {})
    ours_forward = kwargs.pop("ours_forward", None)
    label = f"{name}{args}{kwargs}@{shape}{forward or ''}"
    return LayerCase(name, args, kwargs, _randn(*shape), forward, ours_forward, label)


# Options the module_db samples leave out, for every dimension count.
# fmt: off
EXTRA_CASES = [
    _case("MaxPool1d", 3, 2, 1, 2, True, True, shape=(2, 3, 11)),
    _case("MaxPool1d", 4, 3, 2, ceil_mode=True, shape=(3, 10)),
    _case("MaxPool2d", (3, 2), (2, 1), (1, 1), (2, 3), True, True, shape=(2, 3, 9, 10)),
    _case("MaxPool2d", 2, ceil_mode=True, shape=(2, 3, 9, 10)),
    _case("MaxPool2d", 3, 2, 1, dilation=2, shape=(3, 8, 9)),
    _case("MaxPool3d", (2, 3, 2), (1, 2, 2), (1, 1, 0), (2, 1, 2), True, True,
          shape=(2, 2, 5, 7, 6)),
    _case("MaxPool3d", 3, 2, 1, ceil_mode=True, shape=(2, 6, 5, 7)),
    _case("AvgPool1d", 3, 2, 1, True, False, shape=(2, 3, 10)),
    _case("AvgPool1d", 4, 3, 2, ceil_mode=True, shape=(3, 11)),
    _case("AvgPool2d", 3, 2, 1, True, False, shape=(2, 3, 8, 10)),
    _case("AvgPool2d", (2, 3), divisor_override=-2, ceil_mode=True, shape=(2, 3, 9, 10)),
    _case("AvgPool3d", 3, 2, 1, True, False, shape=(2, 2, 6, 5, 7)),
    _case("AvgPool3d", (3, 2, 2), (2, 1, 2), (1, 1, 0), True, True, 3, shape=(2, 6, 5, 7)),
    _case("AdaptiveAvgPool1d", 4, shape=(2, 3, 10)),
    _case("AdaptiveAvgPool2d", (4, 3), shape=(3, 7, 11)),
    _case("AdaptiveAvgPool3d", (2, None, 3), shape=(2, 2, 5, 4, 7)),
    _case("AdaptiveMaxPool1d", 4, True, shape=(3, 10)),
    _case("AdaptiveMaxPool2d", (4, 3), True, shape=(2, 3, 7, 11)),
    _case("AdaptiveMaxPool3d", (2, 3, None), True, shape=(3, 5, 7, 4)),
    _case("LPPool1d", 3, 3, 2, True, shape=(2, 3, 10)),
    _case("LPPool1d", float("inf"), 2, shape=(2, 3, 10)),
    _case("LPPool2d", 2, (3, 2), (2, 1), True, shape=(2, 3, 8, 9)),
    _case("LPPool2d", -float("inf"), 2, 1, shape=(3, 5, 6)),
    _case("LPPool3d", 2, (2, 3, 2), 2, True, shape=(2, 5, 7, 6)),
    _case("FractionalMaxPool2d", (2, 3), output_ratio=(0.5, 0.7), return_indices=True,
          _random_samples=torch.rand(3, 3, 2, generator=torch.Generator().manual_seed(0),
                                     dtype=torch.float64), shape=(2, 3, 9, 10)),
    _case("FractionalMaxPool3d", 2, output_size=(3, 2, 4), return_indices=True,
          _random_samples=torch.rand(1, 2, 3, generator=torch.Generator().manual_seed(1),
                                     dtype=torch.float64), shape=(2, 6, 5, 7)),
    _case("Conv1d", 4, 6, 3, 2, 1, 2, 2, False, "reflect", shape=(2, 4, 11)),
    _case("Conv1d", 4, 6, 4, 1, "same", 3, padding_mode="circular", shape=(4, 13)),
    _case("Conv2d", 4, 6, (2, 3), (2, 1), (1, 2), (2, 1), 2, padding_mode="replicate",
          shape=(2, 4, 7, 8)),
    _case("Conv3d", 4, 6, (2, 3, 2), (2, 1, 1), (1, 0, 2), (1, 2, 1), 2, shape=(2, 4, 5, 7, 6)),
    _case("Conv3d", 2, 4, (2, 4, 3), 1, "same", (2, 1, 1), padding_mode="reflect",
          shape=(2, 6, 7, 5)),
    _case("Conv3d", 3, 6, 2, padding=1, padding_mode="circular", groups=3, bias=False,
          shape=(1, 3, 4, 5, 3)),
    _case("ConvTranspose1d", 4, 6, 3, 2, 1, 1, 2, True, 2, shape=(2, 4, 5)),
    _case("ConvTranspose1d", 4, 6, 3, 3, 3, 2, shape=(4, 6)),
    _case("ConvTranspose2d", 4, 6, (2, 3), (2, 1), (0, 1), (1, 0), 2, False, (1, 2),
          shape=(2, 4, 5, 4)),
    _case("ConvTranspose3d", 4, 6, (2, 3, 2), (2, 1, 3), (1, 0, 1), (1, 0, 2), 2, True,
          (2, 1, 1), shape=(2, 4, 3, 4, 3)),
    _case("ConvTranspose3d", 2, 2, 3, 2, 1, 1, 2, dilation=2, shape=(2, 3, 2, 3)),
    # torch's forward(input, output_size): spatial sizes, or the whole shape (ours channels-last).
    _case("ConvTranspose1d", 4, 2, 3, 3, forward={"output_size": [13]}, shape=(2, 4, 4)),
    _case("ConvTranspose2d", 4, 2, 3, 2, 1, forward={"output_size": (2, 2, 10, 9)},
          ours_forward={"output_size": (2, 10, 9, 2)}, shape=(2, 4, 5, 5)),
    _case("ConvTranspose3d", 2, 2, 2, (2, 3, 1), forward={"output_size": (2, 5, 8, 4)},
          ours_forward={"output_size": (5, 8, 4, 2)}, shape=(2, 2, 3, 3)),
]
# fmt: on


@pytest.mark.parametrize("kind", ["Pool", "Conv"])
def test_extra_layer_options_match_torch(kind: str):
    """float64 only: the module_db samples check float32 for every class."""
    _check_layers([case for case in EXTRA_CASES if kind in case.name], "float64")


# -- functional: op_db --------------------------------------------------------------------

FUNCTIONS = [
    *(
        f"{kind}_pool{n}d"
        for kind in ("max", "avg", "adaptive_avg", "adaptive_max")
        for n in (1, 2, 3)
    ),
    "fractional_max_pool2d",
    "fractional_max_pool3d",
    *(f"conv{n}d" for n in (1, 2, 3)),
    *(f"conv_transpose{n}d" for n in (1, 2, 3)),
]
OPS = {
    op.name[len("nn.functional.") :]: op
    for op in op_db
    if op.name[len("nn.functional.") :] in FUNCTIONS and not op.variant_test_name
}


def _expand(value: Any, n: int) -> Any:
    if value is None or isinstance(value, int):
        return value if value is None else (value,) * n
    value = tuple(value)
    return value * n if len(value) == 1 else value


def _max_pool_key(sample: Any, n: int) -> tuple:
    """A max-pool sample's options, normalised (``3`` and ``(3,)`` are the same kernel)."""
    kw = sample.kwargs
    kernel = _expand(kw["kernel_size"], n)
    return (
        tuple(sample.input.shape),
        kernel,
        _expand(kw.get("stride"), n) or kernel,
        _expand(kw.get("padding", 0), n),
        _expand(kw.get("dilation", 1), n),
        kw.get("ceil_mode", False),
        kw.get("return_indices", False),
    )


def _pairwise(samples: list[Any], n: int) -> list[Any]:
    """A subset holding every input shape, and every pair of option values (kernel, stride,
    padding, dilation, ceil_mode, return_indices) that occurs together in ``samples``."""
    keyed = {}
    for sample in samples:
        keyed.setdefault(_max_pool_key(sample, n), sample)

    def pairs(key: tuple) -> set:
        options = itertools.combinations(enumerate(key[1:]), 2)
        return {("shape", key[0])} | {(i, a, j, b) for (i, a), (j, b) in options}

    pairs = {key: pairs(key) for key in keyed}
    needed = set().union(*pairs.values())
    chosen = []
    while needed:
        best = max(pairs, key=lambda key: len(pairs[key] & needed))
        chosen.append(keyed[best])
        needed -= pairs[best]
    return chosen


def _op_samples(name: str) -> list[Any]:
    torch.manual_seed(0)
    # set_seed=False: torch would reseed its generator for each of thousands of samples.
    samples = list(
        OPS[name].sample_inputs("cpu", torch.float64, requires_grad=True, set_seed=False)
    )
    match = re.fullmatch(r"max_pool(\d)d", name)
    if match:
        return _pairwise(samples, int(match.group(1)))
    if "max_pool" in name:
        # Adaptive and fractional max pools compute the indices either way: a sample that only
        # differs by return_indices=False from one with True adds nothing.
        seen, kept = set(), []
        for sample in sorted(samples, key=lambda s: not _returns_indices(s)):
            key = repr(
                (
                    sample.input.shape,
                    [_drop_flag(a) for a in sample.args],
                    {k: v for k, v in sample.kwargs.items() if k != "return_indices"},
                )
            )
            if key not in seen:
                seen.add(key)
                kept.append(sample)
        return kept
    return samples


def _returns_indices(sample: Any) -> bool:
    return bool(sample.kwargs.get("return_indices")) or True in sample.args[1:2]


def _drop_flag(value: Any) -> Any:
    return None if isinstance(value, bool) else value


def test_op_db_covers_every_function():
    assert sorted(OPS) == sorted(FUNCTIONS)


OP_FAMILIES = {
    family: [name for name in FUNCTIONS if re.fullmatch(pattern, name)]
    for family, pattern in {
        "max_pool": r"max_pool\dd",
        "avg_pool": r"avg_pool\dd",
        "adaptive_avg_pool": r"adaptive_avg_pool\dd",
        "adaptive_max_pool": r"adaptive_max_pool\dd",
        "fractional_max_pool": r"fractional_max_pool\dd",
        "conv1d/2d": r"conv(_transpose)?[12]d",
        "conv3d": r"conv(_transpose)?3d",
    }.items()
}


def test_op_families_hold_every_function():
    assert sorted(sum(OP_FAMILIES.values(), [])) == sorted(FUNCTIONS)


@pytest.mark.torch_db_full
@pytest.mark.parametrize("family", list(OP_FAMILIES))
def test_op_db_samples_match_torch(family: str):
    """Each sample in torch's layout (``layout="channels_first"``): values, indices, gradients
    of the input and of every tensor argument (weights, biases)."""
    functions, arguments, expected = [], [], []
    for name, index, sample in [
        (function, index, sample)
        for function in OP_FAMILIES[family]
        for index, sample in enumerate(_op_samples(function))
    ]:
        ours_function = getattr(FP if "pool" in name else FC, name)
        args, kwargs = list(sample.args), dict(sample.kwargs)
        if name.startswith("fractional") and kwargs.get("_random_samples") is None:
            # torch would draw these from its generator: both sides get the same draws.
            n = int(name[-2])
            batch = sample.input.shape[0] if sample.input.ndim == n + 2 else 1
            channels = sample.input.shape[-n - 1]
            generator = torch.Generator().manual_seed(index)
            kwargs["_random_samples"] = torch.rand(
                batch, channels, n, generator=generator, dtype=torch.float64
            )
        tensors = [sample.input] + [a for a in args if isinstance(a, torch.Tensor)]
        differentiable = [t for t in tensors if t.requires_grad]
        outs, grads = _torch_run(
            lambda: getattr(TF, name)(sample.input, *args, **kwargs),  # noqa: B023
            differentiable,
        )
        cotangent = _cotangent(outs[0].shape, outs[0].dtype)
        places = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        host_kwargs = {k: _numpy(v) for k, v in kwargs.items()}

        def loss(
            arrays,
            constant,
            f=ours_function,
            args=args,
            places=places,
            kw=host_kwargs,
            cot=cotangent,
        ):
            del constant
            x, *tensor_args = arrays
            call = list(args)
            for place, value in zip(places, tensor_args, strict=True):
                call[place] = value
            return _loss(f(x, *call, **kw, layout="channels_first"), cot)

        assert all(t.requires_grad for t in tensors), f"{name}#{index}: a constant tensor"
        functions.append(loss)
        arguments.append(([_numpy(t) for t in tensors], None))
        expected.append(
            (f"{name}#{index} {tuple(sample.input.shape)} {args} {kwargs}", outs, grads)
        )

    results = _compiled_value_and_grads(functions, arguments, family == "conv3d")
    for ((_, got), got_grads), (what, outs, grads) in zip(results, expected, strict=True):
        assert len(got) == len(outs), what
        _close(got[0], outs[0], TOLERANCE["float64"], f"{what}: output")
        if len(outs) == 2:
            _close(got[1], outs[1], 0, f"{what}: indices")
        for i, (got_grad, grad) in enumerate(zip(got_grads, grads, strict=True)):
            _close(got_grad, grad, TOLERANCE["float64"], f"{what}: gradient {i}")


# -- ties, NaN, -inf, zeros ------------------------------------------------------------------


def _pool_case(function: str, x: np.ndarray, *args: Any, **kwargs: Any) -> tuple:
    """torch's and ours (channels-first) values, indices and input gradients of ``sum(y)``."""
    xt = torch.tensor(x, requires_grad=True)
    out = getattr(TF, function)(xt, *args, **kwargs)
    outs = list(out) if isinstance(out, tuple) else [out]
    outs[0].sum().backward()
    ours_function = getattr(FP, function)

    def loss(v):
        got = ours_function(v, *args, **kwargs, layout="channels_first")
        gots = list(got) if isinstance(got, tuple) else [got]
        return jnp.sum(gots[0]), gots

    (_, got), grad = jax.jit(jax.value_and_grad(loss, has_aux=True), compiler_options=COMPILER)(x)
    return [_numpy(o) for o in outs], xt.grad.numpy(), got, grad


TIES = [
    ("max_pool1d", (1, 2, 7), (3, 2, 1, 2, True, True)),
    ("max_pool2d", (1, 2, 6, 7), (2, 1, 1, 1, False, True)),
    ("max_pool2d", (2, 1, 7, 6), ((3, 2), (2, 1), 1, (2, 1), True, True)),
    ("max_pool3d", (1, 2, 4, 5, 4), (2, 1, 1, (1, 2, 1), False, True)),
    ("adaptive_max_pool1d", (1, 2, 7), (3, True)),
    ("adaptive_max_pool2d", (2, 6, 7), ((4, 3), True)),
    ("adaptive_max_pool3d", (1, 1, 5, 4, 6), ((3, 2, 4), True)),
]


@pytest.mark.parametrize("fill", ["ones", "-inf", "nan"])
@pytest.mark.parametrize("function,shape,args", TIES, ids=[f"{t[0]}{t[1]}" for t in TIES])
def test_max_pool_picks_torchs_element_at_ties_nans_and_minus_infinity(function, shape, args, fill):
    """Constant inputs tie every window (torch takes the first maximum, never padding); windows
    of -inf keep an in-bounds index; NaNs win (torch takes the last) and their gradient is
    torch's. Values, indices and gradients must equal torch's exactly."""
    x = np.ones(shape)
    if fill == "-inf":
        x[..., ::2] = -np.inf
    elif fill == "nan":
        x.reshape(-1)[::5] = np.nan
        x.reshape(-1)[1::5] = np.nan
    (value, indices), grad, (got_value, got_indices), got_grad = _pool_case(function, x, *args)
    np.testing.assert_array_equal(np.asarray(got_value), value)
    np.testing.assert_array_equal(np.asarray(got_indices), indices)
    np.testing.assert_array_equal(np.asarray(got_grad), grad)


@pytest.mark.parametrize("n", [2, 3])
def test_fractional_max_pool_ties_and_nans_are_torchs(n):
    x = np.ones((2, 3) + (7,) * n)
    x.reshape(-1)[::7] = np.nan
    samples = np.random.default_rng(n).uniform(size=(2, 3, n))
    kwargs = {"output_size": 3, "return_indices": True, "_random_samples": torch.tensor(samples)}
    xt = torch.tensor(x, requires_grad=True)
    value, indices = getattr(TF, f"fractional_max_pool{n}d")(xt, 2, **kwargs)
    value.sum().backward()
    kwargs["_random_samples"] = samples
    ours = getattr(FP, f"fractional_max_pool{n}d")

    def loss(v):
        y, i = ours(v, 2, **kwargs, layout="channels_first")
        return jnp.sum(y), (y, i)

    (_, (y, i)), grad = jax.jit(jax.value_and_grad(loss, has_aux=True))(x)
    np.testing.assert_array_equal(np.asarray(y), value.detach().numpy())
    np.testing.assert_array_equal(np.asarray(i), indices.numpy())
    np.testing.assert_array_equal(np.asarray(grad), xt.grad.numpy())


def test_lp_pool_gradient_is_torchs_at_zero_and_negative_sums():
    """All-zero windows (gradient 0, not NaN), negative sums of odd powers (NaN), a float p."""
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 8))
    x[:, :, :2, :4] = 0.0
    for args in [(2, 2), (3, (2, 3), 1, True), (1.5, 2, None, True)]:
        (value,), grad, (got,), got_grad = _pool_case("lp_pool2d", x, *args)
        _close(got, value, 1e-12, f"lp_pool2d{args}: output")
        _close(got_grad, grad, 1e-12, f"lp_pool2d{args}: input gradient")


def test_fractional_max_pool_draws_from_its_key_or_rngs():
    """Without ``_random_samples`` the draws are ``uniform(key, (N, C, n))``: torch with those
    draws gives the same result; the layer draws from its ``dropout`` stream, anew each call."""
    x = np.random.default_rng(1).standard_normal((2, 9, 8, 3)).astype(np.float32)
    key = jax.random.key(3)
    pool = jax.jit(lambda v, k: FP.fractional_max_pool2d(v, 2, output_ratio=(0.5, 0.5), key=k))
    draws = jax.jit(lambda k: jax.random.uniform(k, (2, 3, 2), jnp.float32))(key)
    want = TF.fractional_max_pool2d(
        torch.tensor(np.moveaxis(x, -1, 1)),
        2,
        output_ratio=(0.5, 0.5),
        _random_samples=torch.tensor(np.asarray(draws)),
    )
    np.testing.assert_array_equal(np.moveaxis(np.asarray(pool(x, key)), -1, 1), want.numpy())
    layer = pooling.FractionalMaxPool2d(2, output_size=4, rngs=nnx.Rngs(dropout=0))
    call = nnx.jit(lambda m, v: m(v))
    first, second = call(layer, x), call(layer, x)
    assert first.shape == (2, 4, 4, 3) and not np.array_equal(first, second)
    assert nn.state_dict(layer) == {}
    with pytest.raises(ValueError, match="draws its pooling regions at random"):
        pooling.FractionalMaxPool2d(2, output_size=4)(x)
    with pytest.raises(ValueError, match="key="):
        FP.fractional_max_pool2d(x, 2, 4)


# -- errors -------------------------------------------------------------------------------


def test_bad_arguments_are_clear_errors():
    x = np.zeros((1, 6, 6, 2), np.float32)
    with pytest.raises(ValueError, match="layout"):
        FP.max_pool2d(x, 2, layout="NHWC")
    with pytest.raises(ValueError, match="expected 3-D .* or 4-D"):
        FP.avg_pool2d(x[0, 0], 2)
    with pytest.raises(ValueError, match="at most half"):
        pooling.MaxPool3d(2, padding=2)
    with pytest.raises(ValueError, match="too small"):
        FP.max_pool1d(x[0], 7)
    with pytest.raises(ValueError, match="divisor must be not zero"):
        pooling.AvgPool3d(2, divisor_override=0)
    with pytest.raises(ValueError, match="output_ratio must be between 0 and 1"):
        pooling.FractionalMaxPool3d(2, output_ratio=1.5)
    with pytest.raises(ValueError, match="does not fit"):
        FP.fractional_max_pool2d(x, 4, 4, _random_samples=np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="channels"):
        FC.conv2d(x, np.zeros((3, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match="strided"):
        FC.conv1d(x[0], np.zeros((3, 2, 3), np.float32), stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode"):
        convolution.Conv3d(2, 2, 3, padding_mode="mirror", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match='Only "zeros"'):
        convolution.ConvTranspose1d(2, 2, 3, padding_mode="reflect", rngs=nnx.Rngs(0))
    up = convolution.ConvTranspose2d(2, 2, 3, stride=2, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="valid sizes range from"):
        up(x, output_size=(15, 13))
