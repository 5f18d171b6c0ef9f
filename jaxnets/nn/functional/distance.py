"""``torch.nn.functional.cosine_similarity`` and ``pairwise_distance``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["cosine_similarity", "pairwise_distance"]


def cosine_similarity(x1: ArrayLike, x2: ArrayLike, dim: int = 1, eps: float = 1e-8) -> jax.Array:
    """``x1 . x2 / (max(||x1||, eps) * max(||x2||, eps))`` along ``dim`` after broadcasting,
    each norm clamped separately as torch (since 1.12) does.

    >>> x1, x2 = jnp.asarray([[1.0, 0.0]]), jnp.asarray([[1.0, 1.0]])
    >>> [round(v, 4) for v in cosine_similarity(x1, x2).tolist()]
    [0.7071]
    """
    a, b = jnp.asarray(x1), jnp.asarray(x2)
    shape = jnp.broadcast_shapes(a.shape, b.shape)
    a, b = jnp.broadcast_to(a, shape), jnp.broadcast_to(b, shape)
    if a.ndim == 0:  # torch treats 0-d tensors as one element along dim 0
        a, b = a.reshape(1), b.reshape(1)
    eps_ = jnp.asarray(eps, a.dtype)

    def norm(v: jax.Array) -> jax.Array:
        n = jnp.sqrt(jnp.sum(v * v, axis=dim))
        return jnp.where(n >= eps_, n, eps_)  # torch's clamp_min keeps the boundary's gradient

    return jnp.sum(a * b, axis=dim) / (norm(a) * norm(b))


def pairwise_distance(
    x1: ArrayLike,
    x2: ArrayLike,
    p: float = 2.0,
    eps: float = 1e-6,
    keepdim: bool = False,
) -> jax.Array:
    """``||x1 - x2 + eps||_p`` over the last axis, as torch (``eps`` added to the difference).

    >>> pairwise_distance(jnp.asarray([[3.0, 0.0]]), jnp.asarray([[0.0, 4.0]]), eps=0.0).tolist()
    [5.0]
    """
    a, b = jnp.asarray(x1), jnp.asarray(x2)
    diff = a - b + jnp.asarray(eps, a.dtype)
    if p == 0:
        return jnp.sum((diff != 0).astype(a.dtype), axis=-1, keepdims=keepdim)
    if p == jnp.inf:
        return jnp.max(jnp.abs(diff), axis=-1, keepdims=keepdim)
    if p == -jnp.inf:
        return jnp.min(jnp.abs(diff), axis=-1, keepdims=keepdim)
    return jnp.sum(jnp.abs(diff) ** p, axis=-1, keepdims=keepdim) ** (1.0 / p)
