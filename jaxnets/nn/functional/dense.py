"""``torch.nn.functional.linear`` and ``bilinear``, with torch's weight layouts."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["linear", "bilinear", "matmul_bias"]


def matmul_bias(x: jax.Array, kernel: jax.Array, bias: jax.Array | None) -> jax.Array:
    """``x @ kernel + bias`` with an ``(in, out)`` kernel: the form :class:`~jaxnets.nn.Linear`
    stores, which XLA runs without a transpose."""
    y = x @ kernel
    # Explicit broadcast: the library stays valid under jax_numpy_rank_promotion="raise".
    return y if bias is None else y + jnp.broadcast_to(bias, y.shape)


def linear(
    input: ArrayLike,  # noqa: A002 - torch's name
    weight: ArrayLike,
    bias: ArrayLike | None = None,
) -> jax.Array:
    """``input @ weight.T + bias`` with torch's ``(out, in)`` weight.

    >>> linear(jnp.ones((2, 3)), jnp.ones((4, 3))).shape
    (2, 4)
    """
    x, weight = jnp.asarray(input), jnp.asarray(weight)
    if weight.ndim not in (1, 2) or x.shape[-1:] != weight.shape[-1:]:
        raise ValueError(f"linear: input {x.shape} and weight {weight.shape} do not fit")
    return matmul_bias(x, weight.T, None if bias is None else jnp.asarray(bias))


def bilinear(
    input1: ArrayLike,
    input2: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
) -> jax.Array:
    """``y[..., o] = sum_ij x1[..., i] weight[o, i, j] x2[..., j] + bias[o]``, torch's layout.

    >>> bilinear(jnp.ones((5, 2)), jnp.ones((5, 3)), jnp.ones((4, 2, 3))).shape
    (5, 4)
    """
    x1, x2, weight = jnp.asarray(input1), jnp.asarray(input2), jnp.asarray(weight)
    if weight.ndim != 3 or x1.shape[-1] != weight.shape[1] or x2.shape[-1] != weight.shape[2]:
        raise ValueError(
            f"bilinear: inputs {x1.shape}, {x2.shape} do not fit weight {weight.shape} "
            f"(out, in1, in2)"
        )
    if x1.shape[:-1] != x2.shape[:-1]:
        raise ValueError(f"bilinear: input batch shapes differ: {x1.shape} vs {x2.shape}")
    y = jnp.einsum("...i,oij,...j->...o", x1, weight, x2)
    return y if bias is None else y + jnp.broadcast_to(jnp.asarray(bias), y.shape)
