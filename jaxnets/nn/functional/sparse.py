"""``torch.nn.functional.embedding``, ``embedding_bag`` and ``one_hot``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

__all__ = ["embedding", "embedding_bag", "one_hot"]


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
    raise ``IndexError`` on concrete input; under ``jit`` they cannot raise and give NaN rows
    instead of JAX's silent clamping;
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
    _check_range(input, jnp.shape(weight)[0])
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


def _concrete(value: ArrayLike) -> np.ndarray | None:
    """``value`` on the host if it is known now (NumPy, a Python list, a concrete array), else
    ``None``; read before ``jnp.asarray``, which under a trace may turn NumPy into a tracer."""
    if isinstance(value, jax.core.Tracer):
        return None
    return np.asarray(value)


def _check_range(indices: ArrayLike, rows: int) -> None:
    values = _concrete(indices)
    if values is not None and values.size:
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= rows:
            raise IndexError(f"index out of range [0, {rows}): got min {low}, max {high}")


def embedding_bag(
    input: ArrayLike,  # noqa: A002
    weight: ArrayLike,
    offsets: ArrayLike | None = None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: ArrayLike | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> jax.Array:
    """Sums, means or maxima of bags of embeddings, without materialising the looked-up rows'
    bags as a padded array: ``(B, embedding_dim)``.

    A 2-D ``input`` ``(B, L)`` holds ``B`` bags of ``L`` indices; a 1-D one is split into bags
    at ``offsets`` (``B`` starts, or ``B + 1`` boundaries with ``include_last_offset``).
    ``per_sample_weights`` (``mode="sum"`` only) scales each looked-up row; entries equal to
    ``padding_idx`` are left out of their bag (and of a mean's count). An empty bag gives zeros,
    as torch. ``max_norm`` and ``scale_grad_by_freq`` raise ``NotImplementedError``.

    >>> weight = jnp.arange(6.0).reshape(3, 2)
    >>> embedding_bag(jnp.asarray([[0, 2], [1, 1]]), weight, mode="sum").tolist()
    [[4.0, 6.0], [4.0, 6.0]]
    """
    del norm_type, sparse
    if max_norm is not None or scale_grad_by_freq:
        raise NotImplementedError(
            "embedding_bag(max_norm=..., scale_grad_by_freq=True) is not supported"
        )
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
    _check_range(input, jnp.shape(weight)[0])
    indices, weight = jnp.asarray(input), jnp.asarray(weight)
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"embedding_bag expects integer indices, got {indices.dtype}")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(
            f"embedding_bag: per_sample_weights was not None. per_sample_weights is only "
            f"supported for mode='sum' (got mode={mode!r})."
        )
    if indices.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None")
        bags = indices.shape[0]
        bag_of = jnp.repeat(jnp.arange(bags), indices.shape[1])
        flat = indices.reshape(-1)
    elif indices.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        starts = jnp.asarray(offsets)
        if starts.ndim != 1:
            raise ValueError(f"offsets has to be a 1D Tensor, got shape {starts.shape}")
        bags = starts.shape[0] - (1 if include_last_offset else 0)
        starts = starts[:bags]
        positions = jnp.arange(indices.shape[0]).reshape(-1, 1)
        bag_of = jnp.sum(positions >= starts.reshape(1, -1), axis=1) - 1
        flat = indices
    else:
        raise ValueError(
            f"input has to be 1D or 2D Tensor, but got Tensor of dimension {indices.ndim}"
        )
    rows = jnp.take(weight, flat, axis=0, mode="fill", fill_value=jnp.nan)
    keep = (
        jnp.ones(flat.shape, bool) if padding_idx is None else flat != padding_idx % weight.shape[0]
    )
    keep = keep & (bag_of >= 0)  # indices before the first offset belong to no bag
    bag_of = jnp.where(keep, bag_of, bags)  # a spare segment collects what is left out
    if per_sample_weights is not None:
        scale = jnp.asarray(per_sample_weights, weight.dtype).reshape(-1)
        rows = rows * jnp.broadcast_to(scale.reshape(-1, 1), rows.shape)
    zeros = jnp.zeros((), weight.dtype)
    counts = jax.ops.segment_sum(keep.astype(weight.dtype), bag_of, num_segments=bags + 1)[:bags]
    if mode == "max":
        best = jax.ops.segment_max(rows, bag_of, num_segments=bags + 1)[:bags]
        return jnp.where(jnp.broadcast_to(counts.reshape(-1, 1) > 0, best.shape), best, zeros)
    sums = jax.ops.segment_sum(rows, bag_of, num_segments=bags + 1)[:bags]
    if mode == "sum":
        return sums
    return sums / jnp.broadcast_to(jnp.maximum(counts, 1).reshape(-1, 1), sums.shape)


def one_hot(tensor: ArrayLike, num_classes: int = -1) -> jax.Array:
    """``(...) -> (..., num_classes)`` integer one-hot codes, as torch (int64 when
    ``jax_enable_x64`` is on, else int32); ``num_classes=-1`` takes ``max + 1`` (concrete input).

    >>> one_hot(jnp.asarray([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    values = _concrete(tensor)
    indices = jnp.asarray(tensor)
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"one_hot is only applicable to index tensors, got {indices.dtype}")
    if num_classes == -1:
        if values is None:
            raise ValueError("one_hot(num_classes=-1) needs concrete input: give num_classes")
        num_classes = int(values.max()) + 1 if values.size else 0
    if values is not None and values.size:
        if int(values.min()) < 0:
            raise ValueError("Class values must be non-negative.")
        if int(values.max()) >= num_classes:
            raise ValueError("Class values must be smaller than num_classes.")
    classes = jnp.arange(num_classes, dtype=indices.dtype).reshape((1,) * indices.ndim + (-1,))
    codes = indices[..., None] == classes
    return codes.astype(jnp.int64 if jax.config.jax_enable_x64 else jnp.int32)
