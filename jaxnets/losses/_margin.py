"""Margin and embedding losses: soft margin, hinge embedding, margin ranking, cosine embedding,
triplet margin (p-norm or any distance), multi-class and multi-label margin."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxnets.losses._common import (
    _broadcast_check,
    _broadcast_shape,
    _cast_broadcast,
    _check_reduction,
    _clamp_min0,
    _float_array,
    _index_array,
    _is_concrete,
    _legacy_reduction,
    _reduce,
)

# torch adds a float constant 1e-12 to the squared norms, also in float64.
_COSINE_EPS = float(np.float32(1e-12))
# torch.pairwise_distance's default eps, a double added in the inputs' dtype.
_PAIRWISE_EPS = 1e-6


def soft_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Two-class logistic loss, as ``torch.nn.functional.soft_margin_loss``.

    Elementwise ``log(1 + exp(-target * input))``, computed as a softplus so that it stays finite
    for large margins (torch's ``log1p(exp(.))`` overflows to ``inf`` with a NaN gradient there;
    elsewhere the two agree).

    Args:
      input: scores, any shape.
      target: labels (usually +-1) broadcastable to ``input``'s shape.
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
      A scalar, or ``input``'s shape for ``reduction="none"``.

    >>> round(float(soft_margin_loss(jnp.array([2.0, -1.0]), jnp.array([1.0, 1.0]))), 4)
    0.7201
    """
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    name = "soft_margin_loss"
    x = _float_array(name, input)
    y = _broadcast_check(name, target, x.shape, "target")
    return _reduce(_soft_margin_core(x, y), reduction)


@jax.jit
def _soft_margin_core(x, y):
    return jax.nn.softplus(-x * _cast_broadcast(y, x, x.shape))


def hinge_embedding_loss(
    input: ArrayLike,
    target: ArrayLike,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Hinge embedding loss, as ``torch.nn.functional.hinge_embedding_loss``.

    Elementwise ``input`` where ``target == 1`` and ``max(0, margin - input)`` where
    ``target == -1`` (other target values add both terms, as in torch).

    Args:
      input: distances, any shape.
      target: +-1 labels broadcastable with ``input``.
      margin: the hinge's margin.
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
      A scalar, or the broadcast shape for ``reduction="none"``. At ``input == margin`` the
      gradient of the hinge is -1, torch's ``clamp_min`` subgradient.

    >>> x = jnp.array([0.3, 0.3, 2.0])
    >>> round(float(hinge_embedding_loss(x, jnp.array([1, -1, -1]), reduction="sum")), 4)
    1.0
    """
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    name = "hinge_embedding_loss"
    x = _float_array(name, input)
    t = jnp.asarray(target)
    shape = _broadcast_shape(name, x, t)
    return _reduce(_hinge_embedding_core(x, t, float(margin), shape=shape), reduction)


@partial(jax.jit, static_argnames=("shape",))
def _hinge_embedding_core(x, t, margin, shape):
    x, t = jnp.broadcast_to(x, shape), jnp.broadcast_to(t, shape)
    zeros = jnp.zeros_like(x)
    hinge = _clamp_min0(margin - x)
    return jnp.where(t != 1, hinge, zeros) + jnp.where(t != -1, x, zeros)


def margin_ranking_loss(
    input1: ArrayLike,
    input2: ArrayLike,
    target: ArrayLike,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Margin ranking loss, as ``torch.nn.functional.margin_ranking_loss``.

    Elementwise ``max(0, -target * (input1 - input2) + margin)``.

    Args:
      input1: first scores.
      input2: second scores, same rank as ``input1`` (broadcastable).
      target: +-1 (which input should rank higher), same rank (broadcastable).
      margin: the margin.
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
      A scalar, or the broadcast shape for ``reduction="none"``. At the hinge the gradient passes
      (torch's ``clamp_min`` subgradient).

    >>> a, b = jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0])
    >>> round(float(margin_ranking_loss(a, b, jnp.array([1.0, 1.0]), margin=0.5)), 4)
    0.75
    """
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    name = "margin_ranking_loss"
    x1 = _float_array(name, input1)
    x2, t = jnp.asarray(input2), jnp.asarray(target)
    if x1.ndim != x2.ndim or x1.ndim != t.ndim:
        raise ValueError(
            f"margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            f"input1: {x1.shape}, input2: {x2.shape}, target: {t.shape} "
        )
    shape = _broadcast_shape(name, x1, x2, t)
    return _reduce(_margin_ranking_core(x1, x2, t, float(margin), shape=shape), reduction)


@partial(jax.jit, static_argnames=("shape",))
def _margin_ranking_core(x1, x2, t, margin, shape):
    x1, x2, t = (_cast_broadcast(a, x1, shape) for a in (x1, x2, t))
    return _clamp_min0(-t * (x1 - x2) + margin)


def cosine_embedding_loss(
    input1: ArrayLike,
    input2: ArrayLike,
    target: ArrayLike,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Cosine embedding loss, as ``torch.nn.functional.cosine_embedding_loss``.

    ``1 - cos(x1, x2)`` where ``target == 1`` and ``max(0, cos(x1, x2) - margin)`` where
    ``target == -1``; the cosine is ``<x1, x2> / sqrt((|x1|^2 + 1e-12) (|x2|^2 + 1e-12))``.

    Args:
      input1: ``(N, D)`` or unbatched ``(D,)``.
      input2: broadcastable with ``input1``, same rank.
      target: ``(N,)`` (``()`` when unbatched) of +-1.
      margin: margin for the dissimilar pairs.
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
      A scalar, or ``(N,)`` for ``reduction="none"``.

    >>> a, b = jnp.array([[1.0, 0.0], [1.0, 1.0]]), jnp.array([[0.0, 1.0], [1.0, 1.0]])
    >>> round(float(cosine_embedding_loss(a, b, jnp.array([1, -1]), reduction="sum")), 4)
    2.0
    """
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    name = "cosine_embedding_loss"
    x1 = _float_array(name, input1)
    x2 = jnp.asarray(input2)
    t = jnp.asarray(target)
    if t.ndim not in (0, 1):
        raise ValueError("0D or 1D target tensor expected, multi-target not supported")
    if t.ndim == 1 and not (x1.ndim == 2 and x2.ndim == 2):
        raise ValueError(
            "1D target tensor expects 2D input tensors, but found inputs with sizes "
            f"{x1.shape} and {x2.shape}."
        )
    if t.ndim == 0 and not (x1.ndim == 1 and x2.ndim == 1):
        raise ValueError(
            "0D target tensor expects 1D input tensors, but found inputs with sizes "
            f"{x1.shape} and {x2.shape}."
        )
    shape = _broadcast_shape(name, x1, x2)
    out_shape = _broadcast_shape(name, np.empty(shape[: t.ndim]), t)
    loss = _cosine_embedding_core(x1, x2, t, float(margin), shape=shape, out_shape=out_shape)
    return _reduce(loss, reduction)


@partial(jax.jit, static_argnames=("shape", "out_shape"))
def _cosine_embedding_core(x1, x2, t, margin, shape, out_shape):
    axis = t.ndim
    x1, x2 = jnp.broadcast_to(x1, shape), _cast_broadcast(x2, x1, shape)
    prod_sum = jnp.sum(x1 * x2, axis=axis)
    mag1 = jnp.sum(x1 * x1, axis=axis) + _COSINE_EPS
    mag2 = jnp.sum(x2 * x2, axis=axis) + _COSINE_EPS
    cos = jnp.broadcast_to(prod_sum / jnp.sqrt(mag1 * mag2), out_shape)
    t = jnp.broadcast_to(t, out_shape)
    zeros = jnp.zeros_like(cos)
    return jnp.where(t == 1, 1 - cos, zeros) + jnp.where(t == -1, _clamp_min0(cos - margin), zeros)


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _vector_norm(x: jax.Array, p: float) -> jax.Array:
    """p-norm over the last axis, with torch's ``norm_backward`` as its derivative."""
    a = jnp.abs(x)
    if p == 0:
        return jnp.sum(x != 0, axis=-1).astype(x.dtype)
    if p == 1:
        return jnp.sum(a, axis=-1)
    if p == 2:
        return jnp.sqrt(jnp.sum(x * x, axis=-1))
    if math.isinf(p):
        return jnp.max(a, axis=-1) if p > 0 else jnp.min(a, axis=-1)
    return jnp.sum(a**p, axis=-1) ** (1.0 / p)


@_vector_norm.defjvp
def _vector_norm_jvp(p, primals, tangents):
    # torch's subgradients: 0 where the norm is 0 (p > 1), sign(x) at x == 0 for p == 1, ties of
    # the inf-norm share the gradient equally.
    (x,), (dx,) = primals, tangents
    norm = _vector_norm(x, p)
    n = jnp.expand_dims(norm, -1)
    zero = jnp.zeros_like(norm)
    if p == 0:
        return norm, zero
    if p == 1:
        return norm, jnp.sum(jnp.sign(x) * dx, axis=-1)
    if p == 2:
        scale = jnp.where(n == 0, jnp.zeros_like(x), x / n)
        return norm, jnp.sum(scale * dx, axis=-1)
    a = jnp.abs(x)
    if math.isinf(p):
        mask = ((a == n) | jnp.isnan(a)).astype(x.dtype)
        count = jnp.sum(mask, axis=-1, keepdims=True)
        return norm, jnp.sum(jnp.sign(x) * (dx / count * mask), axis=-1)
    if p < 1:
        scaled = jnp.sign(x) * jnp.where(x == 0, jnp.zeros_like(a), a ** (p - 1))
        return norm, jnp.sum(scaled * dx, axis=-1) * norm ** (1 - p)
    scaled = jnp.sign(x) * a ** (p - 1) if p < 2 else x * a ** (p - 2)
    # A safe denominator keeps the transposed (reverse-mode) rule free of 0 * inf.
    denom = jnp.where(norm == 0, jnp.ones_like(norm), norm) ** (p - 1)
    return norm, jnp.where(norm == 0, zero, jnp.sum(scaled * dx, axis=-1) / denom)


def _pairwise_distance(x1: jax.Array, x2: jax.Array, p: float, eps: jax.Array) -> jax.Array:
    d = x1 - x2 + eps
    if d.ndim == 0:
        return _vector_norm(d.reshape(1), p).reshape(())
    return _vector_norm(d, p)


def triplet_margin_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Triplet margin loss, as ``torch.nn.functional.triplet_margin_loss``.

    ``max(0, margin + d(a, pos) - d(a, neg))`` with ``d(x, y) = ||x - y + eps||_p`` over the last
    axis; with ``swap``, ``d(a, neg)`` is replaced by ``min(d(a, neg), d(pos, neg))``.

    Args:
      anchor: ``(N, D)``, unbatched ``(D,)``, or more leading axes; the last axis is reduced.
      positive: same rank as ``anchor`` (broadcastable).
      negative: same rank as ``anchor`` (broadcastable).
      margin: positive margin.
      p: the norm's order (any float, ``inf`` included).
      eps: added to the differences before the norm.
      swap: use the distance swap.
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
      A scalar, or the broadcast shape without the last axis for ``reduction="none"``.
      The norm's gradient is torch's (0 where a distance is exactly 0).

    >>> a, pos, neg = jnp.array([[0.0, 0.0]]), jnp.array([[3.0, 4.0]]), jnp.array([[1.0, 0.0]])
    >>> round(float(triplet_margin_loss(a, pos, neg, eps=0.0)), 4)
    5.0
    """
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    name = "triplet_margin_loss"
    a = _float_array(name, anchor)
    pos, neg = jnp.asarray(positive), jnp.asarray(negative)
    if not a.ndim == pos.ndim == neg.ndim:
        raise ValueError(
            "The anchor, positive, and negative tensors are expected to have the same number of "
            f"dimensions, but got: anchor {a.ndim}D, positive {pos.ndim}D, and negative "
            f"{neg.ndim}D inputs"
        )
    shape = _broadcast_shape(name, a, pos, neg)
    loss = _triplet_margin_core(a, pos, neg, float(margin), float(eps), shape=shape, p=p, swap=swap)
    return _reduce(loss, reduction)


@partial(jax.jit, static_argnames=("shape", "p", "swap"))
def _triplet_margin_core(a, pos, neg, margin, eps, shape, p, swap):
    a, pos, neg = (_cast_broadcast(v, a, shape) for v in (a, pos, neg))
    d_pos = _pairwise_distance(a, pos, p, eps)
    d_neg = _pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = jnp.minimum(d_neg, _pairwise_distance(pos, neg, p, eps))
    return _clamp_min0(margin + d_pos - d_neg)


def triplet_margin_with_distance_loss(
    anchor: ArrayLike,
    positive: ArrayLike,
    negative: ArrayLike,
    *,
    distance_function: Callable[[jax.Array, jax.Array], jax.Array] | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> jax.Array:
    """Triplet margin loss with any distance, as ``torch.nn.functional.
    triplet_margin_with_distance_loss``.

    ``max(0, margin + d(a, pos) - d(a, neg))`` with ``d = distance_function``; with ``swap``,
    ``d(a, neg)`` is replaced by ``min(d(a, neg), d(pos, neg))``. The default distance is
    torch's ``pairwise_distance``, ``||x - y + 1e-6||_2`` over the last axis, which makes this
    :func:`triplet_margin_loss` with ``p=2, eps=1e-6``.

    Args:
      anchor: ``(N, D)``, unbatched ``(D,)``, or any shape ``distance_function`` takes.
      positive: same rank as ``anchor``.
      negative: same rank as ``anchor``.
      distance_function: ``(x1, x2) -> distances`` on JAX arrays (traced under ``jit``); it
        decides the shapes and dtypes. ``None`` for the pairwise 2-norm distance, which needs a
        floating ``anchor`` and casts the others to its dtype, as :func:`triplet_margin_loss`.
      margin: positive margin.
      swap: use the distance swap.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"`` (not ``"elementwise_mean"``: torch's
        Python-written losses reject it).

    Returns:
      A scalar, or the distances' broadcast shape for ``reduction="none"``. At the hinge the
      gradient passes (torch's ``clamp_min``), a tie under ``swap`` splits it in two (torch's
      ``minimum``), and the default distance's gradient is 0 where the distance is 0.

    Raises:
      ValueError: an unknown ``reduction``, ``margin <= 0``, or inputs of different ranks.
      TypeError: a ``distance_function`` that is not callable, or an integer ``anchor`` with
        the default distance.

    >>> a, pos, neg = jnp.array([[0.0, 0.0]]), jnp.array([[3.0, 4.0]]), jnp.array([[1.0, 0.0]])
    >>> l1 = lambda x, y: jnp.sum(jnp.abs(x - y), axis=-1)
    >>> float(triplet_margin_with_distance_loss(a, pos, neg, distance_function=l1))
    7.0
    >>> round(float(triplet_margin_with_distance_loss(a, pos, neg)), 4)  # 1 + 5 - 1
    5.0
    """
    reduction = _check_reduction(reduction, elementwise_mean=False)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    name = "triplet_margin_with_distance_loss"
    if distance_function is not None and not callable(distance_function):
        raise TypeError(
            f"{name}: distance_function must be a callable (x1, x2) -> distances or None, got "
            f"{type(distance_function).__name__}"
        )
    a = jnp.asarray(anchor) if distance_function is not None else _float_array(name, anchor)
    pos, neg = jnp.asarray(positive), jnp.asarray(negative)
    if not a.ndim == pos.ndim == neg.ndim:
        raise ValueError(
            "The anchor, positive, and negative tensors are expected to have the same number of "
            f"dimensions, but got: anchor {a.ndim}D, positive {pos.ndim}D, and negative "
            f"{neg.ndim}D inputs"
        )
    if distance_function is None:
        shape = _broadcast_shape(name, a, pos, neg)
        loss = _triplet_margin_core(
            a, pos, neg, float(margin), _PAIRWISE_EPS, shape=shape, p=2, swap=swap
        )
        return _reduce(loss, reduction)
    d_pos = distance_function(a, pos)
    d_neg = distance_function(a, neg)
    if swap:
        d_neg = jnp.minimum(d_neg, distance_function(pos, neg))
    return _reduce(_clamp_min0(margin + d_pos - d_neg), reduction)


def _margin_input(name: str, input: ArrayLike) -> jax.Array:
    x = _float_array(name, input)
    if not ((x.ndim == 2 and x.shape[1] != 0) or (x.ndim == 1 and x.shape[0] != 0) or x.ndim == 0):
        raise ValueError(
            "Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
            f"{x.shape}"
        )
    return x


def multi_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    p: int = 1,
    margin: float = 1.0,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Multi-class hinge loss, as ``torch.nn.functional.multi_margin_loss``.

    Per sample, ``sum_{j != y} w_y * max(0, margin - x_y + x_j)**p / C``.

    Args:
      input: scores ``(N, C)``, or unbatched ``(C,)`` (a 0-d input counts as one class).
      target: integer classes ``(N,)``; ``()`` or ``(1,)`` when unbatched.
      p: 1 or 2.
      margin: the margin.
      weight: optional ``(C,)`` weight, applied by the target's class.
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
      A scalar, or ``(N,)`` for ``reduction="none"`` (``()`` for a 0-d target). The hinge's
      gradient is 0 at exactly 0, as in torch. An empty batch gives NaN for ``"mean"`` (torch
      returns uninitialised memory there). Out-of-range targets raise only when concrete; under
      ``jit``/``vmap``/``grad`` they are clamped into ``[0, C)``.

    >>> x = jnp.array([[0.1, 0.2, 0.4, 0.8]])
    >>> round(float(multi_margin_loss(x, jnp.array([3]))), 4)
    0.325
    """
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    name = "multi_margin_loss"
    if p != 1 and p != 2:
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and jnp.ndim(weight) != 1:
        raise ValueError("weight must be one-dimensional")
    x = _margin_input(name, input)
    nframe = 1 if x.ndim <= 1 else x.shape[0]
    dim = 1 if x.ndim == 0 else x.shape[-1]
    t = jnp.asarray(target)
    if not (t.ndim <= 1 and t.size == nframe):
        raise ValueError(
            "multi_margin_loss: target tensor should be 1-D with size equal to the number of "
            f"input samples (batch size). Expected target size [{nframe}], but got {t.shape}. "
            f"Input has shape {x.shape}."
        )
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise TypeError(f"{name}: expected integer class indices, got {t.dtype}")
    if weight is not None:
        weight = jnp.asarray(weight)
        if weight.size != dim:
            raise ValueError(f"inconsistent weight size, expected {dim} but got {weight.shape}")
    if _is_concrete(t) and bool(np.any((np.asarray(t) < 0) | (np.asarray(t) >= dim))):
        raise ValueError("target out of range")
    return _reduce(_multi_margin_core(x, t, weight, float(margin), p=p), reduction)


@partial(jax.jit, static_argnames=("p",))
def _multi_margin_core(x, t, weight, margin, p):
    nframe = 1 if x.ndim <= 1 else x.shape[0]
    dim = 1 if x.ndim == 0 else x.shape[-1]
    x = x.reshape(nframe, dim)
    safe = jnp.clip(_index_array("multi_margin_loss", t).reshape(nframe), 0, dim - 1)[:, None]
    x_t = jnp.take_along_axis(x, safe, axis=1)
    z = margin - x_t + x
    # Strictly positive, as torch's kernel tests: the gradient at exactly 0 is 0.
    h = jnp.where(z > 0, z, jnp.zeros_like(z))
    if p == 2:
        h = h * h
    if weight is not None:
        h = h * jnp.take(weight.reshape(dim).astype(x.dtype), safe)
    others = jnp.arange(dim)[None, :] != safe
    loss = jnp.sum(jnp.where(others, h, jnp.zeros_like(h)), axis=1) / dim
    # torch's unreduced output has the target's shape: (N,), (1,) or ().
    return loss.reshape(t.shape)


@jax.jit
def _multilabel_margin_core(x: jax.Array, t: jax.Array) -> jax.Array:
    batched = x.ndim == 2
    nframe = 1 if x.ndim <= 1 else x.shape[0]
    dim = 1 if x.ndim == 0 else x.shape[-1]
    x = x.reshape(nframe, dim)
    t = _index_array("multilabel_margin_loss", t).reshape(nframe, dim)
    # torch walks each target row up to its first negative entry.
    listed = jnp.cumprod((t >= 0).astype(jnp.int32), axis=1).astype(bool)
    safe = jnp.where(listed, t, jnp.zeros_like(t))
    classes = jnp.arange(dim)
    is_target = jnp.any(listed[:, :, None] & (safe[:, :, None] == classes[None, None, :]), axis=1)
    x_t = jnp.take_along_axis(x, safe, axis=1)
    z = 1 - x_t[:, :, None] + x[:, None, :]
    use = listed[:, :, None] & ~is_target[:, None, :] & (z > 0)
    loss = jnp.sum(jnp.where(use, z, jnp.zeros_like(z)), axis=(1, 2)) / dim
    # Labels past the last class can only get here unchecked (traced): they make the loss NaN.
    loss = jnp.where(jnp.any(listed & (t >= dim), axis=1), jnp.full_like(loss, jnp.nan), loss)
    # torch's unreduced output is (N,) for batched input and a scalar otherwise.
    return loss if batched else loss.reshape(())


def multilabel_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Multi-label hinge loss, as ``torch.nn.functional.multilabel_margin_loss``.

    Per sample, ``sum_{j in T} sum_{i not in T} max(0, 1 - (x_j - x_i)) / C`` where ``T`` are
    the target classes listed before the first negative entry of the target row.

    Args:
      input: scores ``(N, C)`` or unbatched ``(C,)``.
      target: integer class lists of ``input``'s shape, padded with ``-1`` after the last class.
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
      A scalar, or ``(N,)`` for ``reduction="none"`` (``()`` when unbatched). The hinge's
      gradient is 0 at exactly 0, as in torch. An empty batch gives NaN for ``"mean"`` (torch
      returns uninitialised memory there). Entries outside ``[-1, C)`` raise only when concrete
      (traced, labels ``>= C`` make the loss NaN and
      other negative ones end the list, like ``-1``).

    >>> x = jnp.array([[0.1, 0.2, 0.4, 0.8]])
    >>> round(float(multilabel_margin_loss(x, jnp.array([[3, 0, -1, 1]]))), 4)
    0.85
    """
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    name = "multilabel_margin_loss"
    x = _margin_input(name, input)
    t = jnp.asarray(target)
    if x.ndim <= 1:
        dim = 1 if x.ndim == 0 else x.shape[0]
        ok = t.ndim <= 1 and t.size == dim
    else:
        dim = x.shape[1]
        ok = t.shape == x.shape
    if not ok:
        raise ValueError(f"inconsistent target size: {t.shape} for input of size: {x.shape}")
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise TypeError(f"{name}: expected integer class indices, got {t.dtype}")
    if _is_concrete(t) and bool(np.any((np.asarray(t) < -1) | (np.asarray(t) >= dim))):
        raise ValueError("argument #2 'target' is out of range")
    return _reduce(_multilabel_margin_core(x, t), reduction)
