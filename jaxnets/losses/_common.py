"""Argument handling shared by the losses: torch's reduction rules and its shape/dtype checks.

Everything here runs in Python before tracing, so a bad shape or option raises the error torch
raises even under ``jax.jit``. Checks on *values* (class indices in range, probabilities in
[0, 1]) need concrete arrays and are skipped for tracers, see :func:`_is_concrete`.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
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


def _like(x: ArrayLike, ref: jax.Array) -> jax.Array:
    """``x`` in ``ref``'s dtype: the result dtype follows the input's."""
    return jnp.asarray(x).astype(ref.dtype)


def _index_array(name: str, x: ArrayLike, what: str = "target") -> jax.Array:
    """Integer class indices, widened to the canonical int so comparisons with -100 etc. work."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(
            f"{name}: expected {what} dtype to be an integer type (class indices), "
            f"but got {x.dtype}"
        )
    return x.astype(jax.dtypes.canonicalize_dtype(jnp.int64))


def _broadcast(name: str, *arrays: jax.Array) -> list[jax.Array]:
    """Broadcast explicitly (the rank-promotion guard forbids implicit broadcasting)."""
    try:
        shape = jnp.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise ValueError(f"{name}: shapes {shapes} cannot be broadcast together") from None
    return [jnp.broadcast_to(a, shape) for a in arrays]


def _broadcast_into(name: str, x: jax.Array, shape: tuple[int, ...], what: str) -> jax.Array:
    """Broadcast ``x`` to exactly ``shape``, as torch's in-place ``mul_`` requires."""
    try:
        if jnp.broadcast_shapes(x.shape, shape) != tuple(shape):
            raise ValueError
    except ValueError:
        raise ValueError(
            f"{name}: {what} of shape {x.shape} doesn't match the broadcast shape {tuple(shape)}"
        ) from None
    return jnp.broadcast_to(x, shape)


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
) -> tuple[jax.Array, jax.Array]:
    """Broadcast input and target the way torch's pointwise losses do, warning where torch warns."""
    input = _float_array(name, input)
    target = _like(target, input)
    if input.shape != target.shape:
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )
        input, target = _broadcast(name, input, target)
    return input, target


def _pointwise_loss(
    name: str,
    elementwise: jax.Array,
    input_shape: tuple[int, ...],
    weight: ArrayLike | None,
    reduction: str,
) -> jax.Array:
    """Reduce an elementwise loss; a ``weight`` makes ``"mean"`` the weighted mean, as in torch."""
    if weight is None:
        return _reduce(elementwise, reduction)
    weight = _like(weight, elementwise)
    if weight.shape != tuple(input_shape):
        raise ValueError(
            f"{name}: Weights and input must have the same size "
            f"(weight {weight.shape}, input {tuple(input_shape)})."
        )
    weight = jnp.broadcast_to(weight, elementwise.shape)
    weighted = elementwise * weight
    if reduction == "mean":
        return jnp.sum(weighted) / jnp.sum(weight)
    return _reduce(weighted, reduction)


def _np(x: jax.Array) -> np.ndarray:
    return np.asarray(x)
