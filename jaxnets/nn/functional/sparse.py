"""``torch.nn.functional.embedding`` and ``one_hot``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

__all__ = ["embedding", "one_hot"]


def embedding(
    input: ArrayLike,  # noqa: A002 - torch's name
    weight: ArrayLike,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> jax.Array:
    """Rows of ``weight`` at the integer ``input`` indices: ``(...) -> (..., embedding_dim)``.

    ``padding_idx``'s row is read but receives no gradient, as torch. Out-of-range indices
    give NaN rows (JAX cannot raise under ``jit``) instead of JAX's silent clamping;
    ``max_norm`` (an in-place renormalisation of ``weight`` in torch) and
    ``scale_grad_by_freq`` raise ``NotImplementedError``; ``sparse`` only changes the format
    of torch's gradient.

    >>> embedding(jnp.asarray([1, 0]), jnp.asarray([[0.0, 1.0], [2.0, 3.0]])).tolist()
    [[2.0, 3.0], [0.0, 1.0]]
    """
    del norm_type, sparse
    if max_norm is not None:
        raise NotImplementedError(
            "embedding(max_norm=...) is not supported: torch renormalises the looked-up rows "
            "of the weight in place during the forward pass"
        )
    if scale_grad_by_freq:
        raise NotImplementedError("embedding(scale_grad_by_freq=True) is not supported")
    indices, weight = jnp.asarray(input), jnp.asarray(weight)
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"embedding expects integer indices, got {indices.dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D, got shape {weight.shape}")
    if padding_idx is not None:
        rows = weight.shape[0]
        if not -rows <= padding_idx < rows:
            raise ValueError(f"padding_idx must be within num_embeddings ({rows})")
        row = padding_idx % rows
        # The padding row is read but never trained: cut its gradient, keep its value.
        weight = weight.at[row].set(lax.stop_gradient(weight[row]))
    fill = jnp.nan if jnp.issubdtype(weight.dtype, jnp.inexact) else 0
    return jnp.take(weight, indices, axis=0, mode="fill", fill_value=fill)


def one_hot(tensor: ArrayLike, num_classes: int = -1) -> jax.Array:
    """``(...) -> (..., num_classes)`` integer one-hot codes, as torch (int64 when
    ``jax_enable_x64`` is on, else int32); ``num_classes=-1`` takes ``max + 1`` (concrete input).

    >>> one_hot(jnp.asarray([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    indices = jnp.asarray(tensor)
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"one_hot is only applicable to index tensors, got {indices.dtype}")
    if num_classes == -1:
        if isinstance(indices, jax.core.Tracer):
            raise ValueError("one_hot(num_classes=-1) needs concrete input: give num_classes")
        num_classes = int(indices.max()) + 1 if indices.size else 0
    if not isinstance(indices, jax.core.Tracer) and indices.size:
        if int(indices.min()) < 0:
            raise ValueError("Class values must be non-negative.")
        if int(indices.max()) >= num_classes:
            raise ValueError("Class values must be smaller than num_classes.")
    classes = jnp.arange(num_classes, dtype=indices.dtype).reshape((1,) * indices.ndim + (-1,))
    codes = indices[..., None] == classes
    return codes.astype(jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
