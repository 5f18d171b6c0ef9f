"""Argument checks shared by the layers: torch's accepted forms, clear errors before tracing."""

from __future__ import annotations

from collections.abc import Sequence

import jax


def positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def non_negative(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def ntuple(name: str, value: int | Sequence[int], n: int, *, minimum: int = 1) -> tuple[int, ...]:
    """``value`` as an ``n``-tuple of ints ``>= minimum`` (torch's ``_pair``/``_single``)."""
    values = (value,) * n if isinstance(value, int) else tuple(value)
    check = positive if minimum == 1 else non_negative
    if len(values) != n:
        raise ValueError(f"{name} must be an int or {n} ints, got {value!r}")
    return tuple(check(name, v) for v in values)


def probability(name: str, p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} probability has to be between 0 and 1, but got {p}")
    return float(p)


def expect_rank(layer: str, x: jax.Array, ranks: Sequence[int], layout: str) -> None:
    if x.ndim not in ranks:
        wanted = " or ".join(f"{r}-D" for r in ranks)
        raise ValueError(f"{layer} expected {wanted} input {layout}, got shape {x.shape}")


def expect_channels(layer: str, x: jax.Array, channels: int) -> None:
    if x.shape[-1] != channels:
        raise ValueError(
            f"{layer} expected {channels} channels on the last axis (channels-last), "
            f"got shape {x.shape}"
        )


def channel_view(values: jax.Array, ndim: int) -> jax.Array:
    """A ``(C,)`` vector shaped ``(1, ..., 1, C)`` to broadcast against a channels-last array.

    The explicit rank keeps the layers valid under ``jax_numpy_rank_promotion="raise"``.
    """
    return values.reshape((1,) * (ndim - 1) + values.shape)
