"""Argument checks that run before tracing, so bad input fails with a message, not an XLA error."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import jax.numpy as jnp

__all__ = ["learning_rate", "positive_int", "shapes", "floating"]


def learning_rate(value: Any, name: str = "learning_rate") -> float:
    """Return ``value`` as a float after checking it is a finite number greater than zero.

    Args:
      value: the candidate learning rate.
      name: the argument name used in error messages.

    Returns:
      ``float(value)``; raises ``TypeError`` (not a number) or ``ValueError``.

    >>> learning_rate(0.01)
    0.01
    >>> try:
    ...     learning_rate(0)
    ... except ValueError as err:
    ...     print(err)
    learning_rate must be finite and > 0, got 0
    """
    try:
        lr = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(lr) or lr <= 0.0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return lr


def positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an int after checking it is an integer >= 1 (bools are rejected).

    Args:
      value: the candidate.
      name: the argument name used in error messages.

    Returns:
      ``int(value)``; raises ``TypeError`` (not an integer) or ``ValueError`` (below 1).

    >>> positive_int(3, "steps")
    3
    >>> try:
    ...     positive_int(True, "steps")
    ... except TypeError as err:
    ...     print(err)
    steps must be an integer >= 1, got True
    """
    if isinstance(value, bool) or not isinstance(value, int | jnp.integer):
        raise TypeError(f"{name} must be an integer >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def shapes(spec: Mapping[str, tuple[Any, Sequence[str | int]]]) -> dict[str, int]:
    """Check array shapes against symbolic dimensions shared between arguments.

    ``spec`` maps an argument name to ``(array, dims)`` where each dim is a fixed int or a symbol;
    a symbol must take the same size everywhere it appears. All mismatches are reported at once.

    Args:
      spec: ``{name: (array, dims)}``.

    Returns:
      ``{symbol: size}``; raises ``ValueError`` listing every mismatch.

    >>> X, W = jnp.zeros((4, 3), jnp.float32), jnp.zeros((3, 2), jnp.float32)
    >>> shapes({"X": (X, ("N", "D")), "W": (W, ("D", 2))})
    {'N': 4, 'D': 3}
    >>> try:
    ...     shapes({"X": (X, ("N", "D")), "W": (W, ("D", 3))})
    ... except ValueError as err:
    ...     print(err)
    shape mismatch: W: expected shape (D=3, 3), got (3, 2) (dimension 3 is 3 elsewhere)
    """
    bound: dict[str, int] = {}
    errors: list[str] = []
    for name, (array, dims) in spec.items():
        shape = tuple(jnp.shape(array))
        if len(shape) != len(dims):
            errors.append(f"{name}: expected {len(dims)} dims {_fmt(dims)}, got shape {shape}")
            continue
        for dim, size in zip(dims, shape, strict=True):
            if isinstance(dim, int):
                expected = dim
            else:
                expected = bound.setdefault(dim, size)
            if size != expected:
                errors.append(
                    f"{name}: expected shape {_fmt(dims, bound)}, got {shape} "
                    f"(dimension {dim!r} is {expected} elsewhere)"
                )
                break
    if errors:
        raise ValueError("shape mismatch: " + "; ".join(errors))
    return bound


def floating(arrays: Mapping[str, Any]) -> jnp.dtype:
    """Check every array is floating point and all share one dtype; return it.

    Args:
      arrays: ``{name: array}``.

    Returns:
      The shared dtype; raises ``TypeError`` naming the offending arrays.

    >>> floating({"x": jnp.zeros((2,), jnp.float32), "y": jnp.ones((2, 3), jnp.float32)})
    dtype('float32')
    >>> try:
    ...     floating({"x": jnp.zeros((2,), jnp.float32), "labels": jnp.zeros((2,), jnp.int32)})
    ... except TypeError as err:
    ...     print(err)
    expected floating-point arrays, got labels (int32)
    """
    dtypes = {name: jnp.result_type(array) for name, array in arrays.items()}
    bad = [f"{n} ({d})" for n, d in dtypes.items() if not jnp.issubdtype(d, jnp.floating)]
    if bad:
        raise TypeError("expected floating-point arrays, got " + ", ".join(bad))
    if len(set(dtypes.values())) > 1:
        listing = ", ".join(f"{n}: {d}" for n, d in dtypes.items())
        raise TypeError(f"arrays must share one dtype, got {listing}")
    return next(iter(dtypes.values()))


def _fmt(dims: Sequence[str | int], bound: Mapping[str, int] | None = None) -> str:
    bound = bound or {}
    return "(" + ", ".join(f"{d}={bound[d]}" if d in bound else str(d) for d in dims) + ")"
