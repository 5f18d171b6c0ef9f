"""Argument handling shared by the losses: torch's reduction rules and its shape/dtype checks.

The checks run in Python before tracing, so a bad shape or option raises the error torch raises
even under ``jax.jit``. Checks on *values* (class indices in range, probabilities in [0, 1])
need concrete arrays and are skipped for tracers, see :func:`_is_concrete`.

The arithmetic of each loss lives in a jitted core whose static arguments are only the options
that change the computation's structure; numeric options (margins, eps, weights, the ignored
index) are traced. Eager calls then compile once per shape and structure, rather than once per
operation or per option value.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

_REDUCTIONS = ("none", "mean", "sum")


def _legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """torch's mapping of the deprecated ``size_average``/``reduce`` pair to a reduction."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        resolved = "mean"
    else:
        resolved = "sum" if reduce else "none"
    warnings.warn(
        "size_average and reduce args will be deprecated, "
        f"please use reduction='{resolved}' instead.",
        UserWarning,
        stacklevel=3,
    )
    return resolved


def _check_reduction(
    reduction: str, allowed: tuple[str, ...] = _REDUCTIONS, *, elementwise_mean: bool = True
) -> str:
    """Validate ``reduction`` like ``_Reduction.get_enum``.

    torch's C++-backed losses still accept the old spelling ``"elementwise_mean"`` (with a
    warning); the ones written in Python (``elementwise_mean=False``) reject it.
    """
    if elementwise_mean and reduction == "elementwise_mean":
        warnings.warn(
            "reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
            UserWarning,
            stacklevel=3,
        )
        return "mean"
    if reduction not in allowed:
        raise ValueError(
            f"{reduction} is not a valid value for reduction (expected one of {allowed})"
        )
    return reduction


def _reduce(loss: jax.Array, reduction: str) -> jax.Array:
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


def _is_concrete(*xs: object) -> bool:
    """True when every argument holds actual values (not a tracer under jit, vmap or grad)."""
    return not any(isinstance(x, jax.core.Tracer) for x in xs)


def _float_array(name: str, x: ArrayLike, what: str = "input") -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{name}: expected a floating point {what}, got dtype {x.dtype}")
    return x


def _index_array(name: str, x: ArrayLike, what: str = "target") -> jax.Array:
    """Integer class indices, widened to the canonical int so comparisons with -100 etc. work."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(
            f"{name}: expected {what} dtype to be an integer type (class indices), "
            f"but got {x.dtype}"
        )
    return x.astype(jax.dtypes.canonicalize_dtype(jnp.int64))


def _broadcast_shape(name: str, *arrays: ArrayLike) -> tuple[int, ...]:
    try:
        return tuple(jnp.broadcast_shapes(*(jnp.shape(a) for a in arrays)))
    except ValueError:
        shapes = ", ".join(str(jnp.shape(a)) for a in arrays)
        raise ValueError(f"{name}: shapes {shapes} cannot be broadcast together") from None


def _broadcast_check(name: str, x: ArrayLike, shape: tuple[int, ...], what: str) -> jax.Array:
    """``x`` as an array, after checking it broadcasts to exactly ``shape`` (torch's ``mul_``)."""
    x = jnp.asarray(x)
    try:
        ok = jnp.broadcast_shapes(x.shape, tuple(shape)) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name}: {what} of shape {x.shape} doesn't match the broadcast shape {tuple(shape)}"
        )
    return x


@jax.custom_jvp
def _abs(x: jax.Array) -> jax.Array:
    """``|x|`` whose derivative is ``sign(x)``: 0 at 0 like torch (``jnp.abs`` gives 1 there)."""
    return jnp.abs(x)


@_abs.defjvp
def _abs_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return jnp.abs(x), jnp.sign(x) * dx


def _clamp_min0(x: jax.Array) -> jax.Array:
    """``x.clamp_min(0)`` with torch's subgradient: the gradient passes at exactly 0.

    ``jnp.maximum(x, 0)`` would give 1/2 there and ``relu`` 0; torch's ``clamp_min`` backward is
    ``where(x >= 0, grad, 0)``. NaN passes through, as in torch.
    """
    return jnp.where(x < 0, jnp.zeros_like(x), x)


def _pointwise_inputs(
    name: str, input: ArrayLike, target: ArrayLike
) -> tuple[jax.Array, jax.Array, tuple[int, ...]]:
    """Input, target and their common shape, warning where torch warns about broadcasting.

    No array operation runs here: the jitted cores broadcast and cast.
    """
    input = _float_array(name, input)
    target = jnp.asarray(target)
    if input.shape != target.shape:
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )
    return input, target, _broadcast_shape(name, input, target)


def _pointwise_loss(
    name: str,
    core,
    input: jax.Array,
    target: jax.Array,
    shape: tuple[int, ...],
    weight: ArrayLike | None,
    reduction: str,
) -> jax.Array:
    """Run an elementwise ``core``; a ``weight`` makes ``"mean"`` the weighted mean, as in torch."""
    if weight is None:
        return _reduce(core(input, target, None, shape=shape), reduction)
    weight = jnp.asarray(weight)
    if weight.shape != input.shape:
        raise ValueError(
            f"{name}: Weights and input must have the same size "
            f"(weight {weight.shape}, input {input.shape})."
        )
    weighted = core(input, target, weight, shape=shape)
    if reduction == "mean":
        return jnp.sum(weighted) / jnp.sum(weight.astype(weighted.dtype))
    return _reduce(weighted, reduction)


def _cast_broadcast(x: jax.Array, ref: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Inside a core: ``x`` in ``ref``'s dtype, broadcast explicitly to ``shape``."""
    return jnp.broadcast_to(x.astype(ref.dtype), shape)
