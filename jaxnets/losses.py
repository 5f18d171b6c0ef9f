"""Losses with ``torch.nn.functional`` names, argument order, defaults and semantics.

Every function is pure and jit/vmap compatible. Argument checks that depend only on shapes and
options run in Python before tracing, so they raise the error torch raises.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["l1_loss", "mse_loss"]

_REDUCTIONS = ("none", "mean", "sum")


def _legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """torch's rule for the deprecated ``size_average``/``reduce`` pair (``_Reduction.legacy_get_string``)."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn(
        "size_average and reduce args will be deprecated, please use reduction instead.",
        UserWarning,
        stacklevel=3,
    )
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        return "mean"
    return "sum" if reduce else "none"


def _check_reduction(reduction: str, allowed: tuple[str, ...] = _REDUCTIONS) -> str:
    if reduction not in allowed:
        raise ValueError(f"{reduction} is not a valid value for reduction (expected one of {allowed})")
    return reduction


def _reduce(loss: jax.Array, reduction: str) -> jax.Array:
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


def _pointwise_inputs(name: str, input: ArrayLike, target: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Broadcast input and target the way torch's pointwise losses do, warning where torch warns."""
    input, target = jnp.asarray(input), jnp.asarray(target)
    if input.shape != target.shape:
        warnings.warn(
            f"Using a target size ({target.shape}) that is different to the input size "
            f"({input.shape}). This will likely lead to incorrect results due to broadcasting. "
            "Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )
        try:
            shape = jnp.broadcast_shapes(input.shape, target.shape)
        except ValueError:
            raise ValueError(
                f"{name}: the size of input {input.shape} and target {target.shape} "
                "cannot be broadcast together"
            ) from None
        input, target = jnp.broadcast_to(input, shape), jnp.broadcast_to(target, shape)
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
    weight = jnp.asarray(weight)
    if weight.shape != input_shape:
        raise ValueError(
            f"{name}: Weights and input must have the same size "
            f"(weight {weight.shape}, input {input_shape})."
        )
    weighted = elementwise * weight
    if reduction == "mean":
        return jnp.sum(weighted) / jnp.sum(weight)
    return _reduce(weighted, reduction)


def l1_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: ArrayLike | None = None,
) -> jax.Array:
    """Mean absolute error, as ``torch.nn.functional.l1_loss``.

    Args:
      input: predictions, any shape.
      target: same shape as ``input`` (other broadcastable shapes warn, as in torch).
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
      weight: optional per-element weight of ``input``'s shape; ``"mean"`` then divides by its sum.

    Returns:
      A scalar, or the broadcast shape of ``input`` and ``target`` for ``reduction="none"``.
      The gradient at ``input == target`` is 0, torch's subgradient of ``|x|``.

    >>> float(l1_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0])))
    1.5
    """
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    shape = jnp.shape(input)
    input, target = _pointwise_inputs("l1_loss", input, target)
    # jnp.abs differentiates to sign(x), which is 0 at x == 0 exactly like torch's abs backward.
    return _pointwise_loss("l1_loss", jnp.abs(input - target), shape, weight, reduction)


def mse_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: ArrayLike | None = None,
) -> jax.Array:
    """Mean squared error, as ``torch.nn.functional.mse_loss``.

    Args:
      input: predictions, any shape.
      target: same shape as ``input`` (other broadcastable shapes warn, as in torch).
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
      weight: optional per-element weight of ``input``'s shape; ``"mean"`` then divides by its sum.

    Returns:
      A scalar, or the broadcast shape of ``input`` and ``target`` for ``reduction="none"``.

    >>> float(mse_loss(jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]), reduction="sum"))
    5.0
    """
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    shape = jnp.shape(input)
    input, target = _pointwise_inputs("mse_loss", input, target)
    return _pointwise_loss("mse_loss", jnp.square(input - target), shape, weight, reduction)
