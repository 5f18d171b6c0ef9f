"""``torch.nn.functional``'s vision functions: ``interpolate``, pixel and channel shuffles,
``unfold``/``fold``; channels-last by default (``layout="channels_first"``: torch's layout).

Interpolation is separable: each spatial axis is resampled on its own, the last one first (the
order of ATen's CPU kernels), as ``out[o] = sum_k weights[o, k] * x[taps[o, k]]``: one gather
of every tap, then the weighted sum (nearest on several axes is a single gather). The taps and
weights are computed once per shape on the host, in the input's precision, by ATen's formulas
(``UpSample.h``, ``UpSampleKernel.cpp``): the source index ``scale * (o + 0.5) - 0.5`` (or
``scale * o`` with ``align_corners``), where ``scale`` is ``1 / scale_factor`` when a scale factor
is given and not recomputed, else ``in / out`` (or ``(in - 1) / (out - 1)``); torch's float32
index arithmetic for the nearest modes; its antialiasing filters, stretched by the downscale
factor and cut at the borders. A gathered pixel times a weight is exact, so float64 results
equal torch's to rounding, and the gradient (a scatter-add of the same weights) is torch's.

Where torch's backward kernel is not the derivative of its forward kernel, the gradient here is
torch's backward (a ``jax.custom_vjp``, so no forward-mode derivative there). That happens only
with a ``scale_factor`` whose scale is used (``recompute_scale_factor`` not True) and an axis
whose output size is its input size (or twice it): the 1-D and 3-D ``nearest`` forward kernels
apply the scale where the backward copies (halves); ``bicubic`` resamples an image of unchanged
size where the backward copies it; the ``antialias`` forward copies an axis of unchanged size
where the backward resamples it.

One torch forward is not followed: with ``antialias`` and an output one pixel wide, torch's
contiguous-NCHW CPU kernel (torch 2.13) gives every output row the first row's value when the
height changes; the values here are those of its channels-last kernel (and of its backward).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

__all__ = [
    "interpolate",
    "resample",
    "pixel_shuffle",
    "pixel_unshuffle",
    "channel_shuffle",
    "unfold",
    "fold",
    "upsample",
    "upsample_nearest",
    "upsample_bilinear",
]

# mode -> the input rank it needs (None: 3-D, 4-D or 5-D)
_MODE_RANK = {
    "nearest": None,
    "nearest-exact": None,
    "area": None,
    "linear": 3,
    "bilinear": 4,
    "bicubic": 4,
    "trilinear": 5,
    "lanczos": 4,
}
# mode -> the per-axis resampling kind
_KIND = {
    "nearest": "nearest",
    "nearest-exact": "nearest-exact",
    "area": "area",
    "linear": "linear",
    "bilinear": "linear",
    "trilinear": "linear",
    "bicubic": "cubic",
    "lanczos": "lanczos",
}
_LAYOUTS = ("channels_last", "channels_first")


def _check_layout(layout: str) -> None:
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be 'channels_last' or 'channels_first', got {layout!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


# ----------------------------------------------------------------------------- taps and weights


def _scale(
    in_size: int, out_size: int, align_corners: bool, scale: float | None, dt: np.dtype
) -> np.generic:
    """ATen's ``area_pixel_compute_scale`` in ``dt``: the step in input pixels per output pixel."""
    f = dt.type
    if align_corners:
        return f(in_size - 1) / f(out_size - 1) if out_size > 1 else f(0)
    if scale is not None and scale > 0:
        return f(1.0 / scale)
    return f(in_size) / f(out_size)


def _floor_index(src: np.ndarray, in_size: int) -> np.ndarray:
    # ATen floors with floorf: a double index is rounded to float first.
    return np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), in_size - 1)


def _nearest(
    in_size: int, out_size: int, scale: float | None, exact: bool, shortcut: bool
) -> np.ndarray | None:
    """``nearest_idx`` / ``nearest_exact_idx``: one source index per output, in float32;
    ``shortcut``: ``nearest_idx``'s copy of an unchanged size and halving of a doubled one."""
    if shortcut and not exact and out_size == in_size:
        return None
    if shortcut and not exact and out_size == 2 * in_size:
        return (np.arange(out_size) >> 1)[:, None]
    step = _scale(in_size, out_size, False, scale, np.dtype(np.float32))
    if exact:  # (o + 0.5) is a double, so is the product, which floorf rounds to float
        src = (np.arange(out_size) + 0.5) * np.float64(step)
    else:  # o * scale in float
        src = np.arange(out_size).astype(np.float32) * step
    return _floor_index(src, in_size)[:, None]


def _linear(
    in_size: int, out_size: int, align_corners: bool, scale: float | None, dt: np.dtype
) -> tuple[np.ndarray, np.ndarray] | None:
    """``compute_source_index_and_lambda``: two taps, the first clamped source index and the
    next one (the same at the last pixel); an unchanged size is a copy whatever the scale."""
    if out_size == in_size:
        return None
    f = dt.type
    step = _scale(in_size, out_size, align_corners, scale, dt)
    o = np.arange(out_size).astype(dt)
    if align_corners:
        src = step * o
    else:
        src = step * (o + f(0.5)) - f(0.5)
        src = np.where(src < 0, f(0), src).astype(dt)
    index0 = _floor_index(src, in_size)
    lambda1 = np.clip(src - index0.astype(dt), f(0), f(1)).astype(dt)
    index1 = index0 + (index0 < in_size - 1)
    taps = np.stack([index0, index1], axis=1)
    return taps, np.stack([f(1) - lambda1, lambda1], axis=1).astype(dt)


def _cubic_coefficients(t: np.ndarray, a: float, dt: np.dtype) -> list[np.ndarray]:
    """``get_cubic_upsample_coefficients``: Keys' kernel at ``t + 1, t, 1 - t, 2 - t``."""
    f = dt.type
    a = f(a)

    def near(x: np.ndarray) -> np.ndarray:  # cubic_convolution1, |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x: np.ndarray) -> np.ndarray:  # cubic_convolution2, 1 <= |x| <= 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    t = t.astype(dt)
    s = (f(1) - t).astype(dt)
    return [far(t + f(1)), near(t), near(s), far(s + f(1))]


def _cubic(
    in_size: int, out_size: int, align_corners: bool, scale: float | None, dt: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """``upsample_bicubic2d``'s four taps per output (A = -0.75), the source index not clamped
    and the taps clamped to the border pixels."""
    f = dt.type
    step = _scale(in_size, out_size, align_corners, scale, dt)
    o = np.arange(out_size).astype(dt)
    src = step * o if align_corners else step * (o + f(0.5)) - f(0.5)
    src = src.astype(dt)
    index = _floor_index(src, in_size)
    t = np.clip(src - index.astype(dt), f(0), f(1))
    taps = np.clip(index[:, None] + np.arange(-1, 3)[None, :], 0, in_size - 1)
    return taps, np.stack(_cubic_coefficients(t, -0.75, dt), axis=1).astype(dt)


def _area(in_size: int, out_size: int, dt: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive average pooling's bins ``[floor(o*in/out), ceil((o+1)*in/out))``, each tap
    weighted ``1 / len``; shorter bins repeat their first tap with weight 0."""
    starts = np.asarray([(o * in_size) // out_size for o in range(out_size)])
    # Integer ceil: a float division could round (o+1)*in/out across an integer.
    ends = np.asarray([-(-((o + 1) * in_size) // out_size) for o in range(out_size)])
    lengths = ends - starts
    width = int(lengths.max())
    k = np.arange(width)[None, :]
    inside = k < lengths[:, None]
    taps = np.where(inside, starts[:, None] + k, starts[:, None])
    weights = np.where(inside, 1.0 / lengths[:, None], 0.0).astype(dt)
    return taps, weights


def _linear_filter(x: Any, dt: np.dtype) -> Any:
    return dt.type(1.0 - x) if x < 1 else dt.type(0)


def _cubic_filter(x: Any, dt: np.dtype) -> Any:
    # The antialiasing bicubic filter is Keys' with a = -0.5 (PIL's), not the -0.75 above.
    f, a = dt.type, dt.type(-0.5)
    if x < 1:
        return ((a + 2) * x - (a + 3)) * x * x + f(1)
    if x < 2:
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return f(0)


def _lanczos_filter(x: Any, dt: np.dtype) -> Any:
    # Lanczos-3: sinc(x) * sinc(x / 3) on |x| < 3.
    if x == 0:
        return dt.type(1)
    if x >= 3:
        return dt.type(0)
    angle = math.pi * float(x)
    return dt.type(3 * math.sin(angle) * math.sin(angle / 3) / (angle * angle))


# kind -> (twice the filter's support at scale 1, the filter)
_FILTERS = {
    "linear": (2, _linear_filter),
    "cubic": (4, _cubic_filter),
    "lanczos": (6, _lanczos_filter),
}


def _antialias(
    in_size: int,
    out_size: int,
    align_corners: bool,
    scale: float | None,
    dt: np.dtype,
    kind: str,
) -> tuple[np.ndarray, np.ndarray]:
    """``_upsample_{bilinear,bicubic,lanczos}2d_aa``'s taps: the filter (triangle, cubic
    a = -0.5 or Lanczos-3) stretched by the downscale factor, cut at the border and normalised
    to sum 1.

    ATen mixes precisions here and this follows it: sums of two ``dt`` values are rounded to
    ``dt``, their products with Python constants are doubles until stored. Unused taps get
    weight 0 and repeat the first tap's index.
    """
    f = dt.type
    interp_size, filter_fn = _FILTERS[kind]
    step = _scale(in_size, out_size, align_corners, scale, dt)
    support = f(interp_size * 0.5 * float(step)) if step >= 1 else f(interp_size * 0.5)
    most = math.ceil(float(support)) * 2 + 1
    invscale = f(1.0 / float(step)) if step >= 1 else f(1)
    rows = []
    for i in range(out_size):
        center = f(float(step) * (i + 0.5))
        low = max(int(float(f(center - support)) + 0.5), 0)
        size = min(int(float(f(center + support)) + 0.5), in_size) - low
        size = min(max(size, 0), most)
        filtered = []
        for j in range(size):
            x = abs(f((float(f(j + low) - center) + 0.5) * float(invscale)))
            filtered.append(filter_fn(x, dt))
        total = f(0)
        for value in filtered:
            total = f(total + value)
        if total != 0:
            filtered = [f(value / total) for value in filtered]
        rows.append((low, filtered))
    width = max(max(len(filtered) for _, filtered in rows), 1)
    taps = np.zeros((out_size, width), np.int64)
    weights = np.zeros((out_size, width), dt)
    for i, (low, filtered) in enumerate(rows):
        taps[i] = low + np.minimum(np.arange(width), max(len(filtered) - 1, 0))
        weights[i, : len(filtered)] = filtered
    return taps, weights


Plan = tuple[np.ndarray, np.ndarray | None] | None


@functools.lru_cache(maxsize=512)
def _axis_plan(
    kind: str,
    in_size: int,
    out_size: int,
    align_corners: bool,
    scale: float | None,
    antialias: bool,
    dtype: str,
    backward: bool = False,
    nearest_shortcut: bool = True,
) -> Plan:
    """Taps ``(out, K)`` and weights ``(out, K)`` (``None`` for nearest) of one axis, or
    ``None`` where the axis is copied; ``backward`` gives the plan of torch's backward kernel
    where it differs from its forward's."""
    dt = np.dtype(dtype)
    if antialias:
        # The separable forward skips an axis of unchanged size; the backward never does.
        if out_size == in_size and not backward:
            return None
        plan = _antialias(in_size, out_size, align_corners, scale, dt, kind)
    elif kind in ("nearest", "nearest-exact"):
        shortcut = nearest_shortcut or backward
        taps = _nearest(in_size, out_size, scale, kind == "nearest-exact", shortcut)
        plan = None if taps is None else (taps, None)
    elif kind == "linear":
        plan = _linear(in_size, out_size, align_corners, scale, dt)
    elif kind == "cubic":
        plan = _cubic(in_size, out_size, align_corners, scale, dt)
    elif kind == "area":
        plan = None if out_size == in_size else _area(in_size, out_size, dt)
    else:
        raise ValueError(f"unknown resampling kind {kind!r}")
    if plan is not None and _is_identity(plan, in_size):
        return None
    if plan is not None:
        for array in plan:
            if array is not None:
                array.setflags(write=False)  # cached: shared by every later call
    return plan


def _is_identity(plan: tuple[np.ndarray, np.ndarray | None], in_size: int) -> bool:
    """Whether every output ``o`` is input ``o`` times 1 (the other taps weighing 0)."""
    taps, weights = plan
    if taps.shape[0] != in_size:
        return False
    on = taps == np.arange(in_size)[:, None]
    if weights is None:
        return bool(on[:, 0].all())
    zero = np.zeros((), weights.dtype)
    own = np.where(on, weights, zero).sum(axis=1)
    return bool((own == 1).all() and (np.where(on, zero, weights) == 0).all())


def _same_plan(a: Plan, b: Plan) -> bool:
    if a is None or b is None:
        return a is b
    return all(
        (u is None and v is None) or (u is not None and v is not None and np.array_equal(u, v))
        for u, v in zip(a, b, strict=True)
    )


def _take(x: jax.Array, index: np.ndarray, axis: int) -> jax.Array:
    """``jnp.take(x, index, axis)`` for indices known to be in bounds: one ``gather``."""
    dims = lax.GatherDimensionNumbers(
        offset_dims=tuple(d for d in range(x.ndim) if d != axis),
        collapsed_slice_dims=(axis,),
        start_index_map=(axis,),
    )
    return lax.gather(
        x,
        jnp.asarray(index.reshape(-1, 1), jnp.int32),
        dims,
        tuple(1 if d == axis else size for d, size in enumerate(x.shape)),
        mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    )


def _gather_sum(x: jax.Array, axis: int, taps: np.ndarray, weights: np.ndarray | None):
    """``out[o] = sum_k weights[o, k] * x[taps[o, k]]`` along ``axis``, summed over ``k``.

    One gather of all taps (and one scatter-add in the gradient), whatever their number: XLA
    compiles a kernel per gather, and the antialiasing filters have many taps.
    """
    if weights is None:
        return _take(x, taps[:, 0], axis)
    out_size, width = taps.shape
    gathered = _take(x, taps.T, axis)
    gathered = gathered.reshape(*x.shape[:axis], width, out_size, *x.shape[axis + 1 :])
    shape = (1,) * axis + (width, out_size) + (1,) * (x.ndim - axis - 1)
    terms = gathered * jnp.asarray(weights.T.reshape(shape), x.dtype)
    return lax.reduce(terms, np.zeros((), x.dtype), lax.add, (axis,))


def _apply(x: jax.Array, axes: Sequence[int], plans: Sequence[Plan]) -> jax.Array:
    if len(axes) > 1 and all(plan is None or plan[1] is None for plan in plans):
        # Nearest on several axes: one gather (and one scatter-add in the gradient).
        indices = []
        for n, (axis, plan) in enumerate(zip(axes, plans, strict=True)):
            index = np.arange(x.shape[axis]) if plan is None else plan[0][:, 0]
            shape = [1] * len(axes)
            shape[n] = index.size
            indices.append(jnp.asarray(index.reshape(shape), jnp.int32))
        # the spatial axes are adjacent, so the gathered axes stay where they were
        return x[(slice(None),) * axes[0] + tuple(indices)]
    for axis, plan in reversed(list(zip(axes, plans, strict=True))):
        if plan is not None:
            x = _gather_sum(x, axis, *plan)
    return x


def _with_torch_backward(
    x: jax.Array, axes: Sequence[int], forward: Sequence[Plan], backward: Sequence[Plan]
) -> jax.Array:
    """The forward plans' output with the backward plans' transpose as its gradient: torch's
    pair where its backward kernel is not its forward's derivative."""

    @jax.custom_vjp
    def run(v: jax.Array) -> jax.Array:
        return _apply(v, axes, forward)

    def run_fwd(v: jax.Array) -> tuple[jax.Array, None]:
        return run(v), None

    def run_bwd(_: None, g: jax.Array) -> tuple[jax.Array]:
        spec = jax.ShapeDtypeStruct(x.shape, x.dtype)
        return jax.linear_transpose(lambda v: _apply(v, axes, backward), spec)(g)

    run.defvjp(run_fwd, run_bwd)
    return run(x)


def resample(
    x: ArrayLike,
    axes: Sequence[int],
    sizes: Sequence[int],
    mode: str = "linear",
    *,
    align_corners: bool = False,
    scales: Sequence[float | None] | None = None,
    antialias: bool = False,
) -> jax.Array:
    """The separable kernel under :func:`interpolate`: resample each of ``axes`` to ``sizes``.

    The axes are resampled last to first, each only where ATen's kernel does (a ``linear`` axis
    of unchanged size is copied whatever the scale). This is ATen's ``upsample_*`` /
    ``_upsample_*_aa`` with the output size and the scales already settled, including the
    gradients of torch's backward kernels where they differ from its forward's (see the
    module's docstring).

    Args:
      x: floating array (any integer dtype for the ``nearest`` modes), any layout.
      axes: the spatial axes, in order (first = torch's first spatial axis).
      sizes: the output size of each axis.
      mode: ``"nearest"``, ``"nearest-exact"``, ``"linear"`` (also ``"bilinear"``,
        ``"trilinear"``: the kernel is the same per axis), ``"bicubic"``, ``"area"`` or
        ``"lanczos"`` (with ``antialias`` only).
      align_corners: as :func:`interpolate`.
      scales: per axis, the scale factor ATen uses in its source-index formula (``None``:
        ``in / out``), as the ``scale_factors`` argument of torch's ``upsample_*`` ops.
      antialias: torch's antialiasing filters (``"linear"``/``"bicubic"``/``"lanczos"``).

    Returns:
      ``x`` with ``x.shape[axes[i]] == sizes[i]``, same dtype.
    """
    x = jnp.asarray(x)
    kind = _KIND.get(mode)
    if kind is None:
        raise ValueError(f"mode must be one of {sorted(_KIND)}, got {mode!r}")
    if antialias and kind not in ("linear", "cubic", "lanczos"):
        raise ValueError(f"antialias needs mode 'bilinear', 'bicubic' or 'lanczos', got {mode!r}")
    if kind == "lanczos" and not antialias:
        raise ValueError("Lanczos mode requires antialias=True")
    floating = jnp.issubdtype(x.dtype, jnp.floating)
    if kind not in ("nearest", "nearest-exact") and not floating:
        raise NotImplementedError(
            f"interpolate(mode={mode!r}) is implemented for floating input only (torch's "
            f"integer kernels round differently), got dtype {x.dtype}"
        )
    scales = [None] * len(axes) if scales is None else list(scales)
    if not len(axes) == len(sizes) == len(scales):
        raise ValueError(
            f"axes, sizes and scales must have one entry per axis, got {axes}, {sizes}, {scales}"
        )
    axes = [axis % x.ndim for axis in axes]
    # ATen computes weights in the input's type (float for the reduced precisions).
    dtype = "float64" if x.dtype == jnp.float64 else "float32"
    args = [
        (kind, x.shape[axis], int(size), bool(align_corners), scale, bool(antialias), dtype)
        for axis, size, scale in zip(axes, sizes, scales, strict=True)
    ]
    # ATen's 2-D nearest kernel copies an axis of unchanged size and halves indices of a doubled
    # one whatever the scale; its 1-D and 3-D forward kernels apply the scale (their backward
    # kernels take the shortcuts).
    shortcut = len(axes) == 2
    forward = [_axis_plan(*a, nearest_shortcut=shortcut) for a in args]
    backward = [_axis_plan(*a, backward=True) for a in args]
    unresized = all(x.shape[a] == s for a, s in zip(axes, sizes, strict=True))
    if kind == "cubic" and not antialias and unresized:
        backward = [None] * len(axes)  # upsample_bicubic2d_backward copies an unresized image
    if not floating or all(_same_plan(f, b) for f, b in zip(forward, backward, strict=True)):
        return _apply(x, axes, forward)
    return _with_torch_backward(x, axes, forward, backward)


# ----------------------------------------------------------------------------- interpolate


def interpolate(
    input: ArrayLike,  # noqa: A002 - torch's name
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.interpolate``: resample the spatial axes of a batch.

    Modes: ``nearest`` (torch's legacy ``floor(o * scale)``), ``nearest-exact``
    (``floor((o + 0.5) * scale)``), ``linear`` (3-D input), ``bilinear`` and ``bicubic``
    (4-D; Keys' cubic with A = -0.75, border pixels repeated), ``trilinear`` (5-D), ``area``
    (adaptive average pooling: bins ``[floor(o*in/out), ceil((o+1)*in/out))``), ``lanczos``
    (4-D, Lanczos-3; torch requires ``antialias=True`` with it). ``align_corners`` (linear
    modes) maps the corner pixels' centres onto each other; ``antialias`` (bilinear, bicubic,
    lanczos) widens the filter by the downscale factor and normalises it at the borders (its
    bicubic filter has A = -0.5, PIL's). A ``scale_factor`` gives the output size
    ``floor(in * scale_factor)`` and, unless ``recompute_scale_factor=True``, is also the scale
    in the source-index formula (not ``in / out``), as torch.

    Args:
      input: ``(N, *spatial, C)`` with 1 to 3 spatial axes (``layout="channels_first"``:
        torch's ``(N, C, *spatial)``).
      size: the output spatial size, an int for every axis or one per axis.
      scale_factor: a float for every axis or one per axis; exactly one of ``size`` and
        ``scale_factor`` is given.
      mode: as above.
      align_corners: ``linear``/``bilinear``/``bicubic``/``trilinear`` only (``lanczos``
        takes False); default False.
      recompute_scale_factor: with ``scale_factor``, use ``in / out`` as the scale.
      antialias: bilinear/bicubic/lanczos on 4-D input only.
      layout: ``"channels_last"`` or ``"channels_first"``.

    Returns:
      The resampled array in the input's layout and dtype.

    >>> x = jnp.asarray([0.0, 1.0, 2.0, 3.0]).reshape(1, 4, 1)
    >>> interpolate(x, size=2, mode="linear")[0, :, 0].tolist()
    [0.5, 2.5]
    >>> interpolate(x, scale_factor=0.5, mode="nearest")[0, :, 0].tolist()
    [0.0, 2.0]
    """
    _check_layout(layout)
    x = jnp.asarray(input)
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(
                "align_corners option can only be set with the interpolating modes: "
                "linear | bilinear | bicubic | trilinear"
            )
    else:
        align_corners = False if align_corners is None else bool(align_corners)
    if mode not in _MODE_RANK or x.ndim not in (3, 4, 5):
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input arrays supported (got {x.ndim}D) for the "
            f"modes: nearest | linear | bilinear | bicubic | trilinear | lanczos | area | "
            f"nearest-exact "
            f"(got {mode!r})"
        )
    dim = x.ndim - 2
    axes = list(range(1, 1 + dim)) if layout == "channels_last" else list(range(2, 2 + dim))
    in_sizes = [x.shape[a] for a in axes]
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    scales: list[float | None]
    if size is not None:
        if isinstance(size, Sequence):
            if len(size) != dim:
                raise ValueError(
                    "Input and output must have the same number of spatial dimensions, but got "
                    f"input with spatial dimensions of {in_sizes} and output size of "
                    f"{list(size)}."
                )
            if not all(_is_int(s) for s in size):
                raise TypeError(
                    "expected size to be one of int or Tuple[int] or Tuple[int, int] or "
                    f"Tuple[int, int, int], but got size with types {[type(s) for s in size]}"
                )
            out_sizes = [int(s) for s in size]
        elif _is_int(size):
            out_sizes = [int(size)] * dim
        else:
            raise TypeError(f"size must be an int or a sequence of ints, got {size!r}")
        scales = [None] * dim
    elif scale_factor is not None:
        if isinstance(scale_factor, Sequence):
            if len(scale_factor) != dim:
                raise ValueError(
                    "Input and scale_factor must have the same number of spatial dimensions, "
                    f"but got input with spatial dimensions of {in_sizes} and scale_factor of "
                    f"shape {list(scale_factor)}."
                )
            scales = [float(s) for s in scale_factor]
        else:
            scales = [float(scale_factor)] * dim
        out_sizes = [int(s * f) for s, f in zip(in_sizes, scales, strict=True)]
    else:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    # "area" takes its output size from the scale factor and never uses the scale itself.
    if recompute_scale_factor or mode == "area":
        scales = [None] * dim
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and x.ndim == 4):
        raise ValueError(
            "Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and requires "
            "a 4-D input"
        )
    wanted = _MODE_RANK[mode]
    if wanted is not None and x.ndim != wanted:
        raise NotImplementedError(f"Got {x.ndim}D input, but {mode} mode needs {wanted}D input")
    if mode == "lanczos":
        if align_corners:
            raise ValueError("Lanczos mode does not support align_corners=True")
        if not antialias:
            raise ValueError("Lanczos mode requires antialias=True")
    if min(in_sizes) < 1 or min(out_sizes) < 1:
        raise ValueError(
            f"Input and output sizes should be greater than 0, but got input {in_sizes} and "
            f"output {out_sizes}"
        )
    return resample(
        x,
        axes,
        out_sizes,
        mode,
        align_corners=bool(align_corners),
        scales=scales,
        antialias=antialias,
    )


# ----------------------------------------------------------------------------- shuffles


def _positive(name: str, value: Any, what: str) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{what} expects a positive {name}, but got {value!r}")
    return int(value)


def pixel_shuffle(
    input: ArrayLike,  # noqa: A002 - torch's name
    upscale_factor: int,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.pixel_shuffle``: ``(*, H, W, C*r*r)`` to ``(*, H*r, W*r, C)``.

    torch's channel ``c*r*r + i*r + j`` of pixel ``(h, w)`` becomes channel ``c`` of pixel
    ``(h*r + i, w*r + j)``, so a channels-last sub-pixel convolution ported from torch (its
    output channels in torch's order) shuffles to torch's image. ``layout="channels_first"``
    maps torch's ``(*, C*r*r, H, W)`` to ``(*, C, H*r, W*r)``.

    >>> x = jnp.arange(4.0).reshape(1, 1, 1, 4)
    >>> pixel_shuffle(x, 2)[0, ..., 0].tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """
    _check_layout(layout)
    x = jnp.asarray(input)
    r = _positive("upscale_factor", upscale_factor, "pixel_shuffle")
    if x.ndim < 3:
        raise ValueError(
            "pixel_shuffle expects input to have at least 3 dimensions, but got input with "
            f"{x.ndim} dimension(s)"
        )
    lead = x.shape[:-3]
    if layout == "channels_last":
        h, w, c = x.shape[-3:]
    else:
        c, h, w = x.shape[-3:]
    if c % (r * r):
        raise ValueError(
            "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square "
            f"of upscale_factor, but the channel size {c} (shape {x.shape}, layout {layout!r}) "
            f"is not divisible by {r * r}"
        )
    n = len(lead)
    if layout == "channels_last":
        y = x.reshape(*lead, h, w, c // (r * r), r, r)
        y = y.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)
        return y.reshape(*lead, h * r, w * r, c // (r * r))
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    y = y.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(
    input: ArrayLike,  # noqa: A002 - torch's name
    downscale_factor: int,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.pixel_unshuffle``, the inverse of :func:`pixel_shuffle`:
    ``(*, H*r, W*r, C)`` to ``(*, H, W, C*r*r)``, pixel ``(h*r + i, w*r + j)`` channel ``c``
    going to channel ``c*r*r + i*r + j`` (torch's order).

    >>> x = jnp.arange(4.0).reshape(1, 2, 2, 1)
    >>> pixel_unshuffle(x, 2)[0, 0, 0].tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    _check_layout(layout)
    x = jnp.asarray(input)
    r = _positive("downscale_factor", downscale_factor, "pixel_unshuffle")
    if x.ndim < 3:
        raise ValueError(
            "pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
            f"{x.ndim} dimension(s)"
        )
    lead = x.shape[:-3]
    if layout == "channels_last":
        h, w, c = x.shape[-3:]
    else:
        c, h, w = x.shape[-3:]
    if h % r or w % r:
        raise ValueError(
            "pixel_unshuffle expects height and width to be divisible by downscale_factor, but "
            f"got height {h} and width {w} (shape {x.shape}, layout {layout!r}) for "
            f"downscale_factor={r}"
        )
    n = len(lead)
    if layout == "channels_last":
        y = x.reshape(*lead, h // r, r, w // r, r, c)
        y = y.transpose(*range(n), n, n + 2, n + 4, n + 1, n + 3)
        return y.reshape(*lead, h // r, w // r, c * r * r)
    y = x.reshape(*lead, c, h // r, r, w // r, r)
    y = y.transpose(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return y.reshape(*lead, c * r * r, h // r, w // r)


def channel_shuffle(
    input: ArrayLike,  # noqa: A002 - torch's name
    groups: int,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.channel_shuffle``: channel ``g*(C/groups) + k`` goes to
    ``k*groups + g`` (ShuffleNet's transpose of the group axis).

    The channels are the last axis (``layout="channels_first"``: axis 1, torch's, which needs
    rank >= 3 as torch does; channels-last also needs rank >= 3: a batch of feature maps).

    >>> channel_shuffle(jnp.arange(6.0).reshape(1, 1, 6), 2)[0, 0].tolist()
    [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    """
    _check_layout(layout)
    x = jnp.asarray(input)
    if x.ndim < 3:
        raise ValueError(
            f"channel_shuffle expects input with > 2 dims, but got input with shape {x.shape}"
        )
    if not _is_int(groups) or groups < 1:
        raise ValueError(
            f"Number of groups to divide channels in must be positive. Value of groups:{groups!r}"
        )
    axis = x.ndim - 1 if layout == "channels_last" else 1
    c = x.shape[axis]
    if c % groups:
        raise ValueError(
            f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups."
        )
    shape = x.shape
    y = x.reshape(*shape[:axis], groups, c // groups, *shape[axis + 1 :])
    return jnp.swapaxes(y, axis, axis + 1).reshape(shape)


# ----------------------------------------------------------------------------- fold / unfold


def _pair(name: str, value: Any, minimum: int, what: str) -> tuple[int, int]:
    values = (value, value) if _is_int(value) else tuple(value)
    if len(values) != 2 or not all(_is_int(v) and v >= minimum for v in values):
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{what}: {name} must be a {kind} int or a pair of them, got {value!r}")
    return int(values[0]), int(values[1])


def _blocks(
    what: str,
    spatial: tuple[int, int],
    kernel: tuple[int, int],
    dilation: tuple[int, int],
    padding: tuple[int, int],
    stride: tuple[int, int],
) -> tuple[int, int]:
    blocks = tuple(
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, k, d, p, st in zip(spatial, kernel, dilation, padding, stride, strict=True)
    )
    if min(blocks) < 1:
        raise ValueError(
            f"{what}: given spatial size {spatial}, kernel_size={kernel}, dilation={dilation}, "
            f"padding={padding}, stride={stride}, the array of sliding blocks has shape "
            f"{blocks}, but its components must be at least one."
        )
    return blocks  # type: ignore[return-value]


def unfold(
    input: ArrayLike,  # noqa: A002 - torch's name
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    stride: int | Sequence[int] = 1,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.unfold`` (im2col): every sliding block of a zero-padded image.

    Channels-last, ``(N, H, W, C)`` (or unbatched ``(H, W, C)``) gives ``(N, L, C*kh*kw)``
    (``(L, C*kh*kw)``): torch's ``(N, C*kh*kw, L)`` with its last two axes swapped. ``L`` counts
    the blocks row-major (``l = bh * Bw + bw``) and the patch axis is torch's order,
    channel-major: entry ``c*kh*kw + i*kw + j`` is channel ``c`` at kernel tap ``(i, j)``. So
    ``unfold(x) @ torch_weight.reshape(out, -1).T`` is a convolution. ``layout="channels_first"``
    takes and gives torch's layouts.

    >>> x = jnp.arange(9.0).reshape(1, 3, 3, 1)
    >>> unfold(x, 2).shape, unfold(x, 2)[0, 0].tolist()
    ((1, 4, 4), [0.0, 1.0, 3.0, 4.0])
    """
    _check_layout(layout)
    x = jnp.asarray(input)
    if x.ndim not in (3, 4):
        raise ValueError(
            f"unfold: Only 3D or 4D input arrays are supported (got {x.ndim}D, shape {x.shape})"
        )
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    if layout == "channels_first":
        x = jnp.moveaxis(x, 1, -1)
    kernel = _pair("kernel_size", kernel_size, 1, "unfold")
    dil = _pair("dilation", dilation, 1, "unfold")
    pad = _pair("padding", padding, 0, "unfold")
    step = _pair("stride", stride, 1, "unfold")
    n, h, w, c = x.shape
    blocks = _blocks("unfold", (h, w), kernel, dil, pad, step)
    zero = np.zeros((), x.dtype)
    x = lax.pad(x, zero, [(0, 0, 0), (pad[0], pad[0], 0), (pad[1], pad[1], 0), (0, 0, 0)])
    # One strided slice per kernel tap: cheaper to compile than a gather (and its scatter-add
    # gradient), and each block reads only its own pixels.
    taps = [
        lax.slice(
            x,
            (0, i * dil[0], j * dil[1], 0),
            (
                n,
                i * dil[0] + (blocks[0] - 1) * step[0] + 1,
                j * dil[1] + (blocks[1] - 1) * step[1] + 1,
                c,
            ),
            (1, step[0], step[1], 1),
        )
        for i in range(kernel[0])
        for j in range(kernel[1])
    ]
    # (N, Bh, Bw, C, kh*kw): torch's channel-major order
    patches = lax.concatenate([lax.expand_dims(tap, (4,)) for tap in taps], 4)
    patches = patches.reshape(n, blocks[0] * blocks[1], c * kernel[0] * kernel[1])
    if layout == "channels_first":
        patches = jnp.swapaxes(patches, 1, 2)
    return patches[0] if unbatched else patches


def fold(
    input: ArrayLike,  # noqa: A002 - torch's name
    output_size: int | Sequence[int],
    kernel_size: int | Sequence[int],
    dilation: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    stride: int | Sequence[int] = 1,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.fold`` (col2im): sum sliding blocks back into an image.

    The adjoint of :func:`unfold`: channels-last input ``(N, L, C*kh*kw)`` (or ``(L, C*kh*kw)``,
    laid out as :func:`unfold` gives it) becomes ``(N, H, W, C)`` (``(H, W, C)``) with
    ``(H, W) = output_size``; overlapping taps add up and taps in the padding are dropped.
    ``layout="channels_first"`` takes torch's ``(N, C*kh*kw, L)`` and gives ``(N, C, H, W)``.

    >>> patches = jnp.ones((1, 4, 4))  # 4 blocks of 2x2 in a 3x3 image, one channel
    >>> fold(patches, 3, 2)[0, ..., 0].tolist()
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    _check_layout(layout)
    x = jnp.asarray(input)
    if x.ndim not in (2, 3):
        raise ValueError(
            f"fold: Only 2D or 3D input arrays are supported (got {x.ndim}D, shape {x.shape})"
        )
    unbatched = x.ndim == 2
    if unbatched:
        x = x[None]
    if layout == "channels_first":
        x = jnp.swapaxes(x, 1, 2)
    size = _pair("output_size", output_size, 1, "fold")
    kernel = _pair("kernel_size", kernel_size, 1, "fold")
    dil = _pair("dilation", dilation, 1, "fold")
    pad = _pair("padding", padding, 0, "fold")
    step = _pair("stride", stride, 1, "fold")
    n, length, depth = x.shape
    taps = kernel[0] * kernel[1]
    if depth % taps:
        raise ValueError(
            f"fold: expected the patch axis (size {depth}, shape {x.shape}, layout {layout!r}) "
            f"to be divisible by the product of kernel_size={kernel}"
        )
    blocks = _blocks("fold", size, kernel, dil, pad, step)
    if length != blocks[0] * blocks[1]:
        raise ValueError(
            f"fold: given output_size={size}, kernel_size={kernel}, dilation={dil}, "
            f"padding={pad}, stride={step}, expected {blocks[0]} * {blocks[1]} = "
            f"{blocks[0] * blocks[1]} blocks, but the input (shape {x.shape}, layout "
            f"{layout!r}) has {length}"
        )
    c = depth // taps
    patches = x.reshape(n, blocks[0], blocks[1], c, taps)
    padded = (size[0] + 2 * pad[0], size[1] + 2 * pad[1])
    image = None
    # Each kernel tap's values spread to their pixels by a strided (interior) pad: the
    # transpose of unfold's strided slice.
    for t in range(taps):
        i, j = divmod(t, kernel[1])
        placement = [(0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0)]
        for axis, offset in ((1, i * dil[0]), (2, j * dil[1])):
            span = (blocks[axis - 1] - 1) * step[axis - 1] + 1
            placement[axis] = (offset, padded[axis - 1] - offset - span, step[axis - 1] - 1)
        placed = lax.pad(patches[..., t], np.zeros((), x.dtype), placement)
        image = placed if image is None else image + placed
    image = image[:, pad[0] : pad[0] + size[0], pad[1] : pad[1] + size[1], :]
    if layout == "channels_first":
        image = jnp.moveaxis(image, -1, 1)
    return image[0] if unbatched else image


def upsample(
    input: ArrayLike,  # noqa: A002 - torch's name
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.upsample`` (deprecated there): :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners, layout=layout)


def upsample_nearest(
    input: ArrayLike,  # noqa: A002
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.upsample_nearest`` (deprecated there): nearest :func:`interpolate`."""
    return interpolate(input, size, scale_factor, "nearest", layout=layout)


def upsample_bilinear(
    input: ArrayLike,  # noqa: A002
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.upsample_bilinear`` (deprecated there): bilinear
    :func:`interpolate` with ``align_corners=True``."""
    return interpolate(input, size, scale_factor, "bilinear", True, layout=layout)
