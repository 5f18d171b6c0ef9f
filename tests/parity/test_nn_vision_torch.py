"""Interpolation, pixel/channel shuffles and fold/unfold against torch, run in the same test.

Every case compares the forward values and the input gradient of ``sum(y * cotangent)`` with
torch's, in float64 (to 1e-10 of the largest entry) and float32 (1e-5). Sources of cases: a grid
of every interpolation mode x ``align_corners`` x ``antialias`` x (size up/down, scale factors
1.7, 0.6, 1.1, per-axis, with and without ``recompute_scale_factor``) in the channels-last
layout; every ``op_db`` sample of the ops (called with ``layout="channels_first"``); torch's
layers against ours; extra fold/unfold and shuffle cases the samples miss. A group of cases is
one compiled program (each case traced once), so the file stays within a minute and a half.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from flax import nnx
from torch.testing._internal.common_methods_invocations import op_db
from torch.testing._internal.common_modules import module_db

from jaxnets import nn
from jaxnets.nn.fold import Fold, Unfold
from jaxnets.nn.functional.vision import (
    channel_shuffle,
    fold,
    interpolate,
    pixel_shuffle,
    pixel_unshuffle,
    resample,
    unfold,
)
from jaxnets.nn.pixelshuffle import ChannelShuffle, PixelShuffle, PixelUnshuffle
from jaxnets.nn.upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
TORCH_DTYPE = {"float64": torch.float64, "float32": torch.float32}
DTYPES = ["float64", "float32"]
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


def _identity(a: np.ndarray) -> np.ndarray:
    return a


def _channels_last(a: np.ndarray) -> np.ndarray:
    return np.moveaxis(a, 1, -1)


@dataclass
class Case:
    """One call: ours on our layout, torch's on torch's, and the moves between the two."""

    name: str
    ours: Callable[[jax.Array], jax.Array]
    theirs: Callable[[torch.Tensor], torch.Tensor]
    x: np.ndarray  # torch's layout
    input_to_ours: Callable[[np.ndarray], np.ndarray] = _identity
    output_to_ours: Callable[[np.ndarray], np.ndarray] = _identity


def _close(got: Any, want: np.ndarray, tolerance: float) -> str | None:
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        return f"shape {got.shape} != torch's {want.shape}"
    if got.dtype != want.dtype:
        return f"dtype {got.dtype} != torch's {want.dtype}"
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-30)
    error = float(np.max(np.abs(got.astype(np.float64) - want), initial=0.0))
    if error > tolerance * scale:
        return f"max error {error:.3g} vs scale {scale:.3g}"
    return None


def _run(cases: list[Case], dtype: str, models: Any = None) -> int:
    """Run every case in torch eagerly and in one compiled program of ours; assert all agree.

    With ``models`` (a list of NNX modules, one per case) case ``i``'s ``ours`` is called as
    ``ours(models[i], x)``.
    """
    rng = np.random.default_rng(0)
    wanted, inputs, cotangents = [], [], []
    for case in cases:
        floating = np.issubdtype(case.x.dtype, np.floating)
        xt = torch.tensor(case.x, requires_grad=floating)
        with warnings.catch_warnings():
            # upsample_nearest / upsample_bilinear are deprecated aliases: a note, not an error.
            warnings.simplefilter("ignore")
            yt = case.theirs(xt)
        cotangent = rng.standard_normal(tuple(yt.shape)).astype(dtype)
        grad = None
        if floating:
            (grad,) = torch.autograd.grad(yt, xt, torch.from_numpy(cotangent), allow_unused=True)
            grad = np.zeros_like(case.x) if grad is None else grad.numpy()
            grad = case.input_to_ours(grad)
        wanted.append((case.output_to_ours(yt.detach().numpy()), grad))
        inputs.append(jnp.asarray(case.input_to_ours(case.x)))
        cotangents.append(jnp.asarray(case.output_to_ours(cotangent)))

    def value_and_grads(models, xs, cots):
        results = []
        for i, (case, x, cot) in enumerate(zip(cases, xs, cots, strict=True)):
            function = case.ours if models is None else functools.partial(case.ours, models[i])
            if jnp.issubdtype(x.dtype, jnp.floating):
                y, vjp = jax.vjp(function, x)
                results.append((y, vjp(cot)[0]))
            else:
                results.append((function(x), None))
        return results

    # One program per group: each case traced once, compiled once. Code generation would take
    # most of the file's time for programs that run once on tiny arrays: the cheapest backend
    # settings (no LLVM optimisation, the legacy fusion emitters) keep XLA's semantics. The
    # modules go in as NNX's pure form (graph definition + state), as nnx.jit passes them.
    if models is None:
        state, program = None, lambda state, xs, cots: value_and_grads(None, xs, cots)
    else:
        graphdef, state = nnx.split(nnx.List(models))
        program = lambda state, xs, cots: value_and_grads(  # noqa: E731
            nnx.merge(graphdef, state), xs, cots
        )
    lowered = jax.jit(program).lower(state, inputs, cotangents)
    try:
        compiled = lowered.compile(compiler_options=FAST_COMPILE)
    except Exception as error:  # an XLA without these options: compile as usual
        if "compile option" not in str(error):
            raise
        compiled = lowered.compile()
    got = compiled(state, inputs, cotangents)
    tolerance = TOLERANCE[dtype]
    failures = []
    for case, (y, g), (want_y, want_g) in zip(cases, got, wanted, strict=True):
        for what, ours, theirs in (("output", y, want_y), ("input gradient", g, want_g)):
            if theirs is None:
                continue
            problem = _close(ours, theirs, tolerance)
            if problem:
                failures.append(f"{case.name} {dtype} {what}: {problem}")
    assert not failures, "\n".join(failures)
    return len(cases)


# ----------------------------------------------------------------------------- interpolate grid

SPATIAL = {1: (5,), 2: (5, 6), 3: (4, 5, 3)}
MODES = {  # mode -> the spatial ranks it takes
    "nearest": (1, 2, 3),
    "nearest-exact": (1, 2, 3),
    "area": (1, 2, 3),
    "linear": (1,),
    "bilinear": (2,),
    "bicubic": (2,),
    "trilinear": (3,),
    "lanczos": (2,),  # antialias only
}


def _specs(dim: int) -> list[dict]:
    shape = SPATIAL[dim]
    return [
        {"size": tuple(s + 3 for s in shape)},  # up
        {"size": (2, 3, 1)[:dim]},  # down, one axis to a single pixel
        # 1.7 and 0.6 with and without recompute_scale_factor are op_db's samples: one of each
        {"scale_factor": 1.7, "recompute_scale_factor": False},
        {"scale_factor": 0.6, "recompute_scale_factor": True},
        # sizes unchanged under a scale that is not 1: torch's special cases
        {"scale_factor": 1.1, "recompute_scale_factor": False},
        # per axis: doubled by 2.1 (nearest's halving shortcut), unchanged, shrunk
        {"scale_factor": (2.1, 1.1, 0.45)[:dim]},
        {"scale_factor": (0.35, 2.5, 1.5)[:dim], "recompute_scale_factor": True},
    ]


def _grid(mode: str, dtype: str) -> list[Case]:
    cases = []
    linear = mode in ("linear", "bilinear", "bicubic", "trilinear")
    antialiases = {"bilinear": (False, True), "bicubic": (False, True), "lanczos": (True,)}
    for dim in MODES[mode]:
        x = np.random.default_rng(dim).standard_normal((2, 2, *SPATIAL[dim])).astype(dtype)
        for align_corners in (False, True) if linear else (None,):
            for antialias in antialiases.get(mode, (False,)):
                for spec in _specs(dim):
                    kwargs = {"mode": mode, "align_corners": align_corners, **spec}
                    if antialias:
                        kwargs["antialias"] = True
                    cases.append(
                        Case(
                            f"interpolate{x.shape}{kwargs}",
                            lambda v, kw=kwargs: interpolate(v, **kw),
                            lambda t, kw=kwargs: F.interpolate(t, **kw),
                            x,
                            _channels_last,
                            _channels_last,
                        )
                    )
    return cases


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", list(MODES))
def test_interpolate_grid_matches_torch(mode, dtype):
    assert _run(_grid(mode, dtype), dtype) >= len(_specs(1))


# ----------------------------------------------------------------------------- op_db samples


def _samples(name: str, dtype: str, variant: str = "") -> list:
    (op,) = [o for o in op_db if o.name == name and o.variant_test_name == variant]
    return list(op.sample_inputs("cpu", TORCH_DTYPE[dtype], requires_grad=True)), op


def _aa_ours(sample) -> Callable[[jax.Array], jax.Array]:
    """``aten._upsample_bilinear2d_aa(input, output_size, align_corners, scales)`` as our
    ``resample``: the op takes an output size and scales independently."""
    kwargs = dict(sample.kwargs)
    shape = sample.input.shape[2:]
    if "scale_factors" in kwargs:
        scales = kwargs["scale_factors"]
    else:
        scales = [kwargs.get("scales_h"), kwargs.get("scales_w")]
    size = kwargs["output_size"]
    if size is None:
        size = [int(s * f) for s, f in zip(shape, scales, strict=True)]
    return lambda v: resample(
        v,
        (2, 3),
        tuple(size),
        "bilinear",
        align_corners=kwargs["align_corners"],
        scales=None if scales is None else tuple(scales),
        antialias=True,
    )


OPS = {  # (op name, variant) -> ours, called like torch's op with layout="channels_first"
    **{("nn.functional.interpolate", mode): interpolate for mode in MODES if mode != "lanczos"},
    ("nn.functional.upsample_nearest", ""): (
        lambda x, size=None, scale_factor=None, **kw: interpolate(
            x, size, scale_factor, mode="nearest", **kw
        )
    ),
    ("nn.functional.upsample_bilinear", ""): (
        lambda x, size=None, scale_factor=None, **kw: interpolate(
            x, size, scale_factor, mode="bilinear", align_corners=True, **kw
        )
    ),
    ("_upsample_bilinear2d_aa", ""): None,  # see _aa_ours
    ("nn.functional.pixel_shuffle", ""): pixel_shuffle,
    ("nn.functional.pixel_unshuffle", ""): pixel_unshuffle,
    ("nn.functional.channel_shuffle", ""): channel_shuffle,
    ("nn.functional.unfold", ""): unfold,
}


@pytest.mark.torch_db_full
@pytest.mark.parametrize("name, variant", list(OPS), ids=lambda v: str(v) or "-")
def test_op_db_samples_match_torch(name, variant):
    dtype = "float64"  # the grid and the extra cases run float32 too
    samples, op = _samples(name, dtype, variant)
    cases = []
    for sample in samples:
        if OPS[name, variant] is None:
            ours = _aa_ours(sample)
        else:
            ours = lambda v, s=sample, f=OPS[name, variant]: f(  # noqa: E731
                v, *s.args, **s.kwargs, layout="channels_first"
            )
        cases.append(
            Case(
                f"{name}[{variant}]{tuple(sample.input.shape)}{sample.args}{sample.kwargs}",
                ours,
                lambda t, s=sample: op(t, *s.args, **s.kwargs),
                sample.input.detach().numpy(),
            )
        )
    assert _run(cases, dtype) == len(samples) > 0


def test_fold_and_the_layers_have_no_torch_samples_so_extra_cases_cover_them():
    """If torch adds ``op_db`` samples for fold or ``module_db`` samples for these layers, they
    belong in ``OPS`` / ``LAYERS``."""
    assert not [o for o in op_db if o.name == "nn.functional.fold"]
    ours = {type(layer).__name__ for layer, _, _ in LAYERS}
    assert len(ours) == 8
    assert not [info for info in module_db if info.module_cls.__name__ in ours]


# ----------------------------------------------------------------------------- extra cases


def _extra(dtype: str) -> list[Case]:
    rng = np.random.default_rng(3)

    def draw(*shape):
        return rng.standard_normal(shape).astype(dtype)

    cases = []
    for args, shape in [  # unfold: (kernel, dilation, padding, stride), torch's (N, C, H, W)
        ((3,), (2, 3, 5, 6)),
        (((2, 3), (2, 1), (1, 2), (2, 3)), (2, 3, 7, 8)),
        ((2, 1, 1, 2), (3, 5, 6)),  # unbatched
        ((1,), (1, 2, 3, 3)),
    ]:
        x = draw(*shape)
        unbatched = len(shape) == 3
        patch = (lambda a: np.swapaxes(a, 0, 1)) if unbatched else (lambda a: np.swapaxes(a, 1, 2))
        image = (lambda a: np.moveaxis(a, 0, -1)) if unbatched else _channels_last
        cases.append(
            Case(
                f"unfold{shape}{args}",
                lambda v, a=args: unfold(v, *a),
                lambda t, a=args: F.unfold(t, *a),
                x,
                image,
                patch,
            )
        )
        blocks = F.unfold(torch.from_numpy(x), *args).shape
        patches = draw(*blocks)
        size = shape[-2:]
        cases.append(
            Case(
                f"fold{blocks}{size}{args}",
                lambda v, a=args, s=size: fold(v, s, *a),
                lambda t, a=args, s=size: F.fold(t, s, *a),
                patches,
                patch,
                image,
            )
        )
        cases.append(
            Case(
                f"fold{blocks}{size}{args} channels_first",
                lambda v, a=args, s=size: fold(v, s, *a, layout="channels_first"),
                lambda t, a=args, s=size: F.fold(t, s, *a),
                patches,
            )
        )
    for r, shape in [(2, (2, 8, 3, 4)), (3, (9, 2, 2)), (2, (2, 1, 12, 3, 2))]:
        x = draw(*shape)
        cases.append(
            Case(
                f"pixel_shuffle{shape}, {r}",
                lambda v, r=r: pixel_shuffle(v, r),
                lambda t, r=r: F.pixel_shuffle(t, r),
                x,
                lambda a: np.moveaxis(a, -3, -1),
                lambda a: np.moveaxis(a, -3, -1),
            )
        )
        image = F.pixel_shuffle(torch.from_numpy(x), r).numpy()
        cases.append(
            Case(
                f"pixel_unshuffle{image.shape}, {r}",
                lambda v, r=r: pixel_unshuffle(v, r),
                lambda t, r=r: F.pixel_unshuffle(t, r),
                image,
                lambda a: np.moveaxis(a, -3, -1),
                lambda a: np.moveaxis(a, -3, -1),
            )
        )
    for groups, shape in [(3, (2, 6, 3)), (2, (2, 4, 2, 3, 2)), (4, (1, 8, 2, 2))]:
        cases.append(
            Case(
                f"channel_shuffle{shape}, {groups}",
                lambda v, g=groups: channel_shuffle(v, g),
                lambda t, g=groups: F.channel_shuffle(t, g),
                draw(*shape),
                _channels_last,
                _channels_last,
            )
        )
    return cases


@pytest.mark.parametrize("dtype", DTYPES)
def test_extra_fold_unfold_and_shuffle_cases_match_torch(dtype):
    assert _run(_extra(dtype), dtype) > 20


def test_antialias_to_a_single_column_matches_torchs_channels_last_kernel():
    """torch's contiguous-NCHW antialiasing forward kernel repeats the first row when the output
    is one pixel wide and the height changes (torch 2.13; its backward and its channels-last
    kernel are right); we match the channels-last kernel's values and torch's gradients."""
    x = np.random.default_rng(7).standard_normal((2, 3, 6, 9))
    cases = [
        Case(
            f"interpolate{x.shape}{kwargs} antialias",
            lambda v, kw=kwargs: interpolate(v, antialias=True, **kw),
            lambda t, kw=kwargs: F.interpolate(
                t.contiguous(memory_format=torch.channels_last), antialias=True, **kw
            ),
            x,
            _channels_last,
            _channels_last,
        )
        for kwargs in (
            {"size": (10, 1), "mode": "bilinear"},
            {"size": (4, 1), "mode": "bicubic", "align_corners": True},
            {"size": (11, 1), "mode": "lanczos"},
        )
    ]
    assert _run(cases, "float64") == 3


def test_integer_nearest_matches_torch():
    """The nearest modes gather, so they take integer images as torch's do (values only)."""
    x = np.random.default_rng(4).integers(0, 255, (2, 3, 5, 6)).astype(np.uint8)
    cases = [
        Case(
            f"interpolate uint8 {mode} {spec}",
            lambda v, m=mode, s=spec: interpolate(v, mode=m, **s),
            lambda t, m=mode, s=spec: F.interpolate(t, mode=m, **s),
            x,
            _channels_last,
            _channels_last,
        )
        for mode in ("nearest", "nearest-exact")
        for spec in ({"size": (7, 4)}, {"scale_factor": 1.7})
    ]
    assert _run(cases, "float64") == 4


# ----------------------------------------------------------------------------- layers

LAYERS = [  # (ours, torch's, torch's input shape)
    (Upsample(scale_factor=2), torch.nn.Upsample(scale_factor=2), (2, 3, 4)),
    (
        Upsample((7, 5), mode="bicubic", align_corners=True),
        torch.nn.Upsample((7, 5), mode="bicubic", align_corners=True),
        (2, 3, 4, 4),
    ),
    (
        Upsample(scale_factor=(1.5, 0.7, 2.0), mode="trilinear"),
        torch.nn.Upsample(scale_factor=(1.5, 0.7, 2.0), mode="trilinear"),
        (1, 2, 3, 4, 3),
    ),
    (
        Upsample(scale_factor=0.6, mode="area", recompute_scale_factor=True),
        torch.nn.Upsample(scale_factor=0.6, mode="area", recompute_scale_factor=True),
        (2, 2, 5, 6),
    ),
    (
        Upsample(size=6, mode="nearest-exact"),
        torch.nn.Upsample(size=6, mode="nearest-exact"),
        (2, 2, 4),
    ),
    (UpsamplingNearest2d(scale_factor=1.7), torch.nn.UpsamplingNearest2d(scale_factor=1.7), None),
    (UpsamplingNearest2d(size=(3, 7)), torch.nn.UpsamplingNearest2d(size=(3, 7)), None),
    (UpsamplingBilinear2d(scale_factor=2), torch.nn.UpsamplingBilinear2d(scale_factor=2), None),
    (UpsamplingBilinear2d((3, 8)), torch.nn.UpsamplingBilinear2d((3, 8)), None),
    (PixelShuffle(2), torch.nn.PixelShuffle(2), (2, 8, 3, 4)),
    (PixelShuffle(3), torch.nn.PixelShuffle(3), (9, 2, 3)),
    (PixelUnshuffle(2), torch.nn.PixelUnshuffle(2), (2, 3, 4, 6)),
    (ChannelShuffle(2), torch.nn.ChannelShuffle(2), (2, 6, 3, 4)),
    (Unfold((2, 3), 1, 1, 2), torch.nn.Unfold((2, 3), 1, 1, 2), (2, 3, 5, 6)),
    (Unfold(2, dilation=2), torch.nn.Unfold(2, dilation=2), (3, 5, 6)),
    (Fold((5, 6), (2, 3), 1, 1, 2), torch.nn.Fold((5, 6), (2, 3), 1, 1, 2), (2, 18, 9)),
    (Fold(4, 2, stride=2), torch.nn.Fold(4, 2, stride=2), (12, 4)),
]


def _moves(layer: nnx.Module, rank_in: int, rank_out: int) -> tuple[Callable, Callable]:
    """torch's input and output arrays in our layout, by the axes the layer declares: the image
    side by ``torch_channel_axis``, Fold's input and Unfold's output by ``torch_patch_axis``."""
    axes_in = layer.torch_patch_axis if isinstance(layer, Fold) else layer.torch_channel_axis
    axes_out = layer.torch_patch_axis if isinstance(layer, Unfold) else layer.torch_channel_axis
    return (
        lambda a: np.moveaxis(a, axes_in[rank_in], -1),
        lambda a: np.moveaxis(a, axes_out[rank_out], -1),
    )


@pytest.mark.parametrize("dtype", DTYPES)
def test_layers_match_torch_layers(dtype):
    cases, models = [], []
    rng = np.random.default_rng(5)
    for ours, theirs, shape in LAYERS:
        x = rng.standard_normal(shape or (2, 3, 4, 5)).astype(dtype)
        rank_out = theirs(torch.from_numpy(x)).ndim
        nn.load_state_dict(ours, theirs.state_dict())  # stateless: both empty
        assert not nn.state_dict(ours)
        cases.append(
            Case(
                f"{type(ours).__name__}{x.shape}",
                lambda m, v: m(v),
                theirs,
                x,
                *_moves(ours, x.ndim, rank_out),
            )
        )
        models.append(ours)
    assert _run(cases, dtype, models) == len(LAYERS)


def test_layer_constructor_arguments_are_torchs():
    up = Upsample(None, [2, 3], "bilinear", True, None)
    assert (up.size, up.scale_factor, up.mode, up.align_corners) == (
        None,
        (2.0, 3.0),
        "bilinear",
        True,
    )
    assert Upsample(scale_factor=0).scale_factor is None  # torch: a falsy factor is none
    assert (Unfold(3).kernel_size, Fold(4, 2).output_size) == ((3, 3), (4, 4))
    with pytest.raises(ValueError, match="upscale_factor"):
        PixelShuffle(0)
    with pytest.raises(ValueError, match="groups"):
        ChannelShuffle(0)
    with pytest.raises(ValueError, match="padding"):
        Unfold(2, padding=-1)


# ----------------------------------------------------------------------------- errors

X3, X4, X5 = np.zeros((1, 1, 4)), np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 2, 2, 2))
ERRORS = [  # (torch's layout input, kwargs, our error, message) -- torch rejects each too
    (X4, {}, ValueError, "either size or scale_factor"),
    (X4, {"size": 2, "scale_factor": 2.0}, ValueError, "only one of size or scale_factor"),
    (X4, {"size": 2, "align_corners": True}, ValueError, "align_corners option"),
    (X4, {"size": 2, "mode": "area", "align_corners": False}, ValueError, "align_corners"),
    (X4, {"size": (2, 2, 2)}, ValueError, "same number of spatial dimensions"),
    (X4, {"scale_factor": (2.0,)}, ValueError, "same number of spatial dimensions"),
    (X4, {"size": (2.0, 2)}, TypeError, "expected size"),
    (X4, {"size": 2, "recompute_scale_factor": True}, ValueError, "recompute_scale_factor"),
    (X3, {"size": 2, "mode": "bilinear"}, NotImplementedError, "bilinear mode needs 4D"),
    (X4, {"size": 2, "mode": "trilinear"}, NotImplementedError, "trilinear mode needs 5D"),
    (X5, {"size": 2, "mode": "bicubic"}, NotImplementedError, "bicubic mode needs 4D"),
    (X4, {"size": 2, "mode": "cubic"}, NotImplementedError, "Only 3D, 4D and 5D"),
    (np.zeros((1, 4)), {"size": 2}, NotImplementedError, "Only 3D, 4D and 5D"),
    (X4, {"size": 2, "antialias": True}, ValueError, "Anti-alias"),
    (X5, {"size": 2, "mode": "trilinear", "antialias": True}, ValueError, "Anti-alias"),
    (X4, {"size": 2, "mode": "lanczos"}, ValueError, "requires antialias=True"),
    (
        X4,
        {"size": 2, "mode": "lanczos", "antialias": True, "align_corners": True},
        ValueError,
        "align_corners=True",
    ),
    (X3, {"size": 2, "mode": "lanczos", "antialias": True}, ValueError, "Anti-alias"),
    (np.zeros((1, 1, 1)), {"scale_factor": 0.6}, ValueError, "greater than 0"),
    (X4, {"size": (0, 2)}, ValueError, "greater than 0"),
]


@pytest.mark.parametrize("x, kwargs, error, match", ERRORS)
def test_interpolate_rejects_what_torch_rejects(x, kwargs, error, match):
    with pytest.raises(Exception):  # noqa: B017 - torch's types vary (RuntimeError for sizes)
        F.interpolate(torch.from_numpy(x), **kwargs)
    with pytest.raises(error, match=match):
        interpolate(x, **kwargs, layout="channels_first")


@pytest.mark.parametrize(
    "call, torch_call, match",
    [
        (
            lambda: pixel_shuffle(np.zeros((2, 3)), 2),
            lambda: F.pixel_shuffle(torch.zeros(2, 3), 2),
            "at least 3 dimensions",
        ),
        (
            lambda: pixel_shuffle(np.zeros((1, 2, 2, 3)), 2),
            lambda: F.pixel_shuffle(torch.zeros(1, 3, 2, 2), 2),
            "divisible by the square",
        ),
        (
            lambda: pixel_shuffle(np.zeros((1, 2, 2, 4)), 0),
            lambda: F.pixel_shuffle(torch.zeros(1, 4, 2, 2), 0),
            "positive upscale_factor",
        ),
        (
            lambda: pixel_unshuffle(np.zeros((1, 3, 4, 1)), 2),
            lambda: F.pixel_unshuffle(torch.zeros(1, 1, 3, 4), 2),
            "divisible by downscale_factor",
        ),
        (
            lambda: channel_shuffle(np.zeros((2, 6)), 2),
            lambda: F.channel_shuffle(torch.zeros(2, 6), 2),
            "> 2 dims",
        ),
        (
            lambda: channel_shuffle(np.zeros((2, 3, 6)), 4),
            lambda: F.channel_shuffle(torch.zeros(2, 6, 3), 4),
            "divisible by groups",
        ),
        (
            lambda: unfold(np.zeros((1, 3, 3, 2)), 4),
            lambda: F.unfold(torch.zeros(1, 2, 3, 3), 4),
            "at least one",
        ),
        (
            lambda: unfold(np.zeros((3, 3)), 2),
            lambda: F.unfold(torch.zeros(3, 3), 2),
            "Only 3D or 4D",
        ),
        (
            lambda: fold(np.zeros((1, 4, 5)), 3, 2),
            lambda: F.fold(torch.zeros(1, 5, 4), 3, 2),
            "divisible by the product of kernel_size",
        ),
        (
            lambda: fold(np.zeros((1, 3, 4)), 3, 2),
            lambda: F.fold(torch.zeros(1, 4, 3), 3, 2),
            r"expected 2 \* 2 = 4 blocks",
        ),
    ],
)
def test_shuffles_and_folds_reject_what_torch_rejects(call, torch_call, match):
    with pytest.raises(Exception):  # noqa: B017 - torch raises RuntimeError/IndexError
        torch_call()
    with pytest.raises(ValueError, match=match):
        call()


def test_channels_last_and_first_agree_and_a_scale_changes_values():
    """The scale factor itself, not in/out, enters the index formula unless recomputed."""
    x = np.random.default_rng(6).standard_normal((1, 7, 6, 2))
    first = np.moveaxis(x, -1, 1)
    kept = interpolate(x, scale_factor=1.7, mode="bilinear")
    recomputed = interpolate(x, scale_factor=1.7, mode="bilinear", recompute_scale_factor=True)
    assert kept.shape == recomputed.shape == (1, 11, 10, 2)
    assert np.max(np.abs(np.asarray(kept) - np.asarray(recomputed))) > 1e-3
    np.testing.assert_array_equal(
        np.moveaxis(
            np.asarray(
                interpolate(first, scale_factor=1.7, mode="bilinear", layout="channels_first")
            ),
            1,
            -1,
        ),
        kept,
    )
    with pytest.raises(ValueError, match="layout"):
        interpolate(x, size=2, layout="NHWC")
