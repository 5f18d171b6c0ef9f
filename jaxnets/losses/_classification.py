"""Classification losses: cross entropy, negative log likelihood and the binary cross entropies.

Each public function validates its arguments in Python, then runs one jitted core (options are
static arguments), so eager calls compile once per shape and option set, not once per operation.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxnets.losses._common import (
    _broadcast_check,
    _broadcast_shape,
    _check_reduction,
    _float_array,
    _index_array,
    _is_concrete,
    _legacy_reduction,
    _reduce,
)

# torch's BCE backward clamps the denominator with a float constant 1e-12, also in float64.
_BCE_EPS = float(np.float32(1e-12))


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _log_softmax(x: jax.Array, axis: int) -> jax.Array:
    shifted = x - jnp.max(x, axis=axis, keepdims=True)
    return shifted - jnp.log(jnp.sum(jnp.exp(shifted), axis=axis, keepdims=True))


@_log_softmax.defjvp
def _log_softmax_jvp(axis, primals, tangents):
    # Written from the output as torch's backward is (g - exp(out) * sum(g)), so that the
    # gradients agree to rounding, not just mathematically.
    (x,), (dx,) = primals, tangents
    out = _log_softmax(x, axis)
    return out, dx - jnp.sum(jnp.exp(out) * dx, axis=axis, keepdims=True)


def _class_weight(name: str, weight: ArrayLike | None, n_classes: int, dtype) -> jax.Array:
    # Ones stand in for no weight: the products and the weight sum are then exact, and one
    # compiled core serves both cases.
    if weight is None:
        return jnp.asarray(np.ones(n_classes, dtype=dtype))
    weight = jnp.asarray(weight)
    if weight.ndim != 1 or weight.size != n_classes:
        raise ValueError(
            f"{name}: weight tensor should be defined either for all {n_classes} classes or no "
            f"classes but got weight tensor of shape: {weight.shape}"
        )
    return weight


def _class_axis_view(w: jax.Array, ndim: int) -> jax.Array:
    """A (C,) weight shaped to broadcast along axis 1 (axis 0 for unbatched input)."""
    if ndim == 1:
        return w
    return w.reshape((1, w.shape[0]) + (1,) * (ndim - 2))


def _check_class_target(
    name: str,
    logp: jax.Array,
    target: ArrayLike,
    weight: ArrayLike | None,
    ignore_index: int,
) -> tuple[jax.Array, jax.Array | None]:
    """torch's ``nll_loss_nd`` checks of shapes, dtypes and (when concrete) index values."""
    if logp.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {logp.ndim})")
    target = jnp.asarray(target)
    if logp.ndim == 1:
        if target.ndim > 1:
            raise ValueError("0D or 1D target tensor expected, multi-target not supported")
        if target.ndim == 1 and target.shape[0] != 1:
            raise ValueError(
                f"For 1D input, 1D target must have size 1, but got target size: {target.shape[0]}"
            )
    elif target.ndim == 0 or logp.shape[0] != target.shape[0]:
        got = target.shape[0] if target.ndim else "a 0-d target"
        raise ValueError(
            f"Expected input batch_size ({logp.shape[0]}) to match target batch_size ({got})."
        )
    elif logp.ndim == 2 and target.ndim != 1:
        raise ValueError("0D or 1D target tensor expected, multi-target not supported")
    elif logp.ndim > 2 and target.shape[1:] != logp.shape[2:]:
        expected = (logp.shape[0], *logp.shape[2:])
        raise ValueError(f"Expected target size {expected}, got {target.shape}")
    if not jnp.issubdtype(target.dtype, jnp.integer):
        raise TypeError(
            f"{name}: expected target dtype to be an integer type (class indices), "
            f"but got {target.dtype}"
        )
    n_classes = logp.shape[-1] if logp.ndim == 1 else logp.shape[1]
    weight = _class_weight(name, weight, n_classes, logp.dtype)
    if _is_concrete(target):
        t = np.asarray(target).astype(np.int64)
        bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
        if bad.any():
            raise IndexError(f"Target {t[bad].flat[0]} is out of bounds.")
    return target, weight


def _ignorable(ignore_index: int) -> bool:
    """Whether a target (of the canonical int dtype) can equal ``ignore_index`` at all."""
    info = np.iinfo(jax.dtypes.canonicalize_dtype(jnp.int64))
    return bool(info.min <= ignore_index <= info.max)


def _nll_parts(logp, target, weight, ignore_index, ignorable: bool):
    """Per-element losses, weights and mask; losses and weights are 0 where target is ignored.

    Shaped like torch's unreduced output (a scalar for unbatched input).
    """
    unbatched = logp.ndim == 1
    if unbatched:
        logp, target = logp[None], target.reshape(1)
    target = _index_array("nll_loss", target)
    if ignorable:
        mask = target != ignore_index
    else:
        mask = jnp.ones(target.shape, dtype=bool)
    n_classes = logp.shape[1]
    in_range = (target >= 0) & (target < n_classes)
    safe = jnp.where(mask & in_range, target, jnp.zeros_like(target))
    picked = jnp.take_along_axis(logp, jnp.expand_dims(safe, 1), axis=1)[:, 0]
    w = jnp.take(weight.astype(logp.dtype), safe)
    # Indices out of range can only get here unchecked (traced): they make the result NaN.
    w = jnp.where(in_range, w, jnp.full_like(w, jnp.nan))
    w = jnp.where(mask, w, jnp.zeros_like(w))
    # A select, not a product with the mask: ignored entries get an exact zero gradient even when
    # the mean's denominator is 0 (all targets ignored), as in torch.
    losses = jnp.where(mask, -picked * w, jnp.zeros_like(picked))
    if unbatched:
        losses, w, mask = losses.reshape(()), w.reshape(()), mask.reshape(())
    return losses, w, mask


def _nll_reduce(losses: jax.Array, w: jax.Array, reduction: str) -> jax.Array:
    if reduction == "mean":
        return jnp.sum(losses) / jnp.sum(w)
    if reduction == "sum":
        return jnp.sum(losses)
    return losses


@partial(jax.jit, static_argnames=("ignorable",))
def _nll_core(logp, target, weight, ignore_index, ignorable):
    losses, w, _ = _nll_parts(logp, target, weight, ignore_index, ignorable)
    return losses, w


def nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Negative log likelihood of class indices, as ``torch.nn.functional.nll_loss``.

    Args:
      input: log-probabilities ``(N, C)``, ``(N, C, d1, ..., dK)`` or unbatched ``(C,)``.
      target: integer class indices ``(N,)``, ``(N, d1, ..., dK)`` or ``()``, each in ``[0, C)``
        or equal to ``ignore_index``. Any integer dtype is accepted (torch wants int64 or uint8).
      weight: optional ``(C,)`` rescaling weight per class.
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      ignore_index: target value that contributes neither to the loss nor to the gradient.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``. ``"mean"`` divides by the summed weights of
        the non-ignored targets, so it is NaN when every target is ignored (or the batch is empty).

    Returns:
      A scalar, or the target's shape for ``reduction="none"``. Out-of-range indices raise
      ``IndexError`` only when ``target`` is concrete; under ``jit``/``vmap``/``grad`` they
      cannot be checked and make their losses (and a mean) NaN.

    >>> logp = jnp.log(jnp.array([[0.5, 0.5], [0.1, 0.9]]))
    >>> round(float(nll_loss(logp, jnp.array([0, 1]))), 4)
    0.3993
    """
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    logp = _float_array("nll_loss", input)
    target, weight = _check_class_target("nll_loss", logp, target, weight, ignore_index)
    ignorable = _ignorable(ignore_index)
    losses, w = _nll_core(logp, target, weight, ignore_index if ignorable else 0, ignorable)
    return _nll_reduce(losses, w, reduction)


@partial(jax.jit, static_argnames=("ignorable", "smoothing"))
def _cross_entropy_core(x, target, weight, ignore_index, label_smoothing, ignorable, smoothing):
    """Per-element nll, weights and smoothing term, and (with smoothing) the unreduced loss."""
    class_axis = 0 if x.ndim == 1 else 1
    logp = _log_softmax(x, class_axis)
    losses, w, mask = _nll_parts(logp, target, weight, ignore_index, ignorable)
    if not smoothing:
        return losses, w, None, None
    smooth = -jnp.sum(logp * _class_axis_view(weight.astype(x.dtype), x.ndim), axis=class_axis)
    smooth = jnp.where(mask.reshape(smooth.shape), smooth, jnp.zeros_like(smooth))
    unreduced = (1 - label_smoothing) * losses + smooth * (label_smoothing / x.shape[class_axis])
    return losses, w, smooth, unreduced


@partial(jax.jit, static_argnames=("smoothing",))
def _cross_entropy_probs_core(x, target, weight, label_smoothing, smoothing):
    class_axis = 0 if x.ndim == 1 else 1
    logp = _log_softmax(x, class_axis)
    target = target.astype(x.dtype)
    if smoothing:
        target = target * (1 - label_smoothing) + (label_smoothing / x.shape[class_axis])
    prod = logp * target * _class_axis_view(weight.astype(x.dtype), x.ndim)
    return -jnp.sum(prod, axis=class_axis)


def cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> jax.Array:
    """Cross entropy between logits and class indices or probabilities, as
    ``torch.nn.functional.cross_entropy``.

    Args:
      input: logits ``(N, C)``, ``(N, C, d1, ..., dK)`` or unbatched ``(C,)``; the class axis
        is 1 (0 when unbatched).
      target: either integer class indices shaped like ``input`` without the class axis, or
        class probabilities of exactly ``input``'s shape (a floating dtype is then required).
      weight: optional ``(C,)`` rescaling weight per class.
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      ignore_index: class-index target value that is skipped (not allowed, if non-negative, with
        probability targets).
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``. With class indices, ``"mean"`` divides by
        the summed weights of the non-ignored targets (NaN if all are ignored); with
        probabilities, by the number of samples ``input.size // C`` (NaN if empty).
      label_smoothing: in ``[0, 1]``; mixes the target with the uniform distribution. Values
        ``<= 0`` mean no smoothing, as in torch.

    Returns:
      A scalar, or ``input``'s shape without the class axis for ``reduction="none"``.
      Out-of-range class indices raise ``IndexError`` only when ``target`` is concrete; under
      ``jit``/``vmap``/``grad`` they cannot be checked and make their losses NaN. The
      log-softmax is stable for logits of any size.

    >>> logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    >>> round(float(cross_entropy(logits, jnp.array([0, 2]))), 4)
    0.6342
    >>> round(float(cross_entropy(logits, jnp.array([0, 2]), label_smoothing=0.1)), 4)
    0.7176
    """
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    x = _float_array("cross_entropy", input)
    if x.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {x.ndim})")
    target = jnp.asarray(target)
    n_classes = x.shape[0 if x.ndim == 1 else 1]
    if label_smoothing > 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    # torch treats smoothing <= 0 as none.
    smoothing = label_smoothing > 0.0
    if x.shape == target.shape:
        if not jnp.issubdtype(target.dtype, jnp.floating):
            raise TypeError(
                "Expected floating point type for target with class probabilities, "
                f"got {target.dtype}"
            )
        if ignore_index >= 0:
            raise ValueError("ignore_index is not supported for floating point target")
        weight = _class_weight("cross_entropy", weight, n_classes, x.dtype)
        per_sample = _cross_entropy_probs_core(
            x, target, weight, float(label_smoothing), smoothing=smoothing
        )
        if reduction == "mean":
            if x.size == 0:
                return jnp.full((), jnp.nan, dtype=x.dtype)
            return jnp.sum(per_sample) / (x.size // n_classes)
        return _reduce(per_sample, reduction)
    target, weight = _check_class_target("cross_entropy", x, target, weight, ignore_index)
    ignorable = _ignorable(ignore_index)
    index = ignore_index if ignorable else 0
    losses, w, smooth, unreduced = _cross_entropy_core(
        x, target, weight, index, float(label_smoothing), ignorable=ignorable, smoothing=smoothing
    )
    if smooth is None:
        return _nll_reduce(losses, w, reduction)
    if reduction == "none":
        return unreduced
    # As torch: each term reduced on its own ("mean": by the summed weights), then mixed.
    nll = _nll_reduce(losses, w, reduction)
    smooth = jnp.sum(smooth) / jnp.sum(w) if reduction == "mean" else jnp.sum(smooth)
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / n_classes)


@jax.custom_vjp
def _bce(x: jax.Array, y: jax.Array) -> jax.Array:
    return (y - 1) * jnp.maximum(jnp.log1p(-x), -100.0) - y * jnp.maximum(jnp.log(x), -100.0)


def _bce_fwd(x, y):
    return _bce(x, y), (x, y)


def _bce_bwd(res, g):
    # torch's hand-written backward, not the derivative of the clamped logs: finite (large) at
    # x in {0, 1} where the clamp would give 0.
    x, y = res
    dx = g * (x - y) / jnp.maximum((1 - x) * x, _BCE_EPS)
    dy = -jnp.log(x / (1 - x)) * g
    return dx, dy


_bce.defvjp(_bce_fwd, _bce_bwd)


def _weighted(loss: jax.Array, weight: jax.Array | None) -> jax.Array:
    if weight is None:
        return loss
    return loss * jnp.broadcast_to(weight.astype(loss.dtype), loss.shape)


@jax.jit
def _bce_core(x, y, weight):
    return _weighted(_bce(x, y.astype(x.dtype)), weight)


def binary_cross_entropy(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Binary cross entropy of probabilities, as ``torch.nn.functional.binary_cross_entropy``.

    Elementwise ``-(target * max(log(input), -100) + (1 - target) * max(log(1 - input), -100))``.
    The gradient is torch's hand-written one, ``(input - target) / max(input * (1 - input),
    1e-12)``, not the derivative of the clamped forward.

    Args:
      input: probabilities in ``[0, 1]``, any shape.
      target: floating targets in ``[0, 1]`` of exactly ``input``'s shape.
      weight: optional weight broadcastable to ``input``'s shape.
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` is the plain mean of the
        weighted losses.

    Returns:
      A scalar, or ``input``'s shape for ``reduction="none"``. Values outside ``[0, 1]`` raise
      ``ValueError`` only when the arrays are concrete; traced (under ``jit``/``vmap``/``grad``)
      they are not checked, and an input outside ``[0, 1]`` gives NaN.

    >>> round(float(binary_cross_entropy(jnp.array([0.8, 0.4]), jnp.array([1.0, 0.0]))), 4)
    0.367
    """
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    name = "binary_cross_entropy"
    x = _float_array(name, input)
    y = jnp.asarray(target)
    if y.shape != x.shape:
        raise ValueError(
            f"Using a target size ({y.shape}) that is different to the input size ({x.shape}) "
            "is deprecated. Please ensure they have the same size."
        )
    if not jnp.issubdtype(y.dtype, jnp.floating):
        raise TypeError(f"{name}: expected a floating point target, got {y.dtype}")
    for what, v in (("input", x), ("target", y)):
        if _is_concrete(v) and not bool(np.all((np.asarray(v) >= 0) & (np.asarray(v) <= 1))):
            raise ValueError(f"all elements of {what} should be between 0 and 1")
    if weight is not None:
        weight = _broadcast_check(name, weight, x.shape, "weight")
    return _reduce(_bce_core(x, y, weight), reduction)


@jax.custom_vjp
def _bce_logits(x: jax.Array, y: jax.Array) -> jax.Array:
    return (1 - y) * x - jax.nn.log_sigmoid(x)


def _bce_logits_fwd(x, y):
    return _bce_logits(x, y), (x, y)


def _bce_logits_bwd(res, g):
    x, y = res
    return (jax.nn.sigmoid(x) - y) * g, -x * g


_bce_logits.defvjp(_bce_logits_fwd, _bce_logits_bwd)


@jax.custom_vjp
def _bce_logits_pw(x: jax.Array, y: jax.Array, pw: jax.Array) -> jax.Array:
    return (1 - y) * x - jax.nn.log_sigmoid(x) * ((pw - 1) * y + 1)


def _bce_logits_pw_fwd(x, y, pw):
    return _bce_logits_pw(x, y, pw), (x, y, pw)


def _bce_logits_pw_bwd(res, g):
    x, y, pw = res
    t = pw * y
    dx = ((t + 1 - y) * jax.nn.sigmoid(x) - t) * g
    dy = (jax.nn.log_sigmoid(-x) - jax.nn.log_sigmoid(x) * pw) * g
    dpw = -jax.nn.log_sigmoid(x) * y * g
    return dx, dy, dpw


_bce_logits_pw.defvjp(_bce_logits_pw_fwd, _bce_logits_pw_bwd)


@jax.jit
def _bce_logits_core(x, y, weight, pos_weight):
    y = y.astype(x.dtype)
    if pos_weight is None:
        loss = _bce_logits(x, y)
    else:
        loss = _bce_logits_pw(x, y, jnp.broadcast_to(pos_weight.astype(x.dtype), x.shape))
    return _weighted(loss, weight)


def binary_cross_entropy_with_logits(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: ArrayLike | None = None,
) -> jax.Array:
    """Binary cross entropy of logits, as ``torch.nn.functional.binary_cross_entropy_with_logits``.

    Elementwise ``(1 - target) * input - log_sigmoid(input) * (1 + (pos_weight - 1) * target)``,
    evaluated stably (finite for logits of any size). Gradients follow torch's explicit backward
    ``sigmoid(input) - target`` (with ``pos_weight``: ``(p*t + 1 - t) * sigmoid(input) - p*t``).

    Args:
      input: logits, any shape.
      target: targets (usually in ``[0, 1]``) of exactly ``input``'s shape.
      weight: optional weight broadcastable to ``input``'s shape.
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``; ``"mean"`` is the plain mean of the
        weighted losses.
      pos_weight: optional weight of the positive term, broadcastable to ``input``'s shape
        (e.g. ``(C,)`` for ``(N, C)`` input).

    Returns:
      A scalar, or ``input``'s shape for ``reduction="none"``.

    >>> x = jnp.array([2.0, -1.0])
    >>> round(float(binary_cross_entropy_with_logits(x, jnp.array([1.0, 0.0]))), 4)
    0.2201
    """
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    name = "binary_cross_entropy_with_logits"
    x = _float_array(name, input)
    y = jnp.asarray(target)
    if y.shape != x.shape:
        raise ValueError(f"Target size ({y.shape}) must be the same as input size ({x.shape})")
    if pos_weight is not None:
        pos_weight = _broadcast_check(name, pos_weight, x.shape, "pos_weight")
    if weight is not None:
        weight = _broadcast_check(name, weight, x.shape, "weight")
    return _reduce(_bce_logits_core(x, y, weight, pos_weight), reduction)


@partial(jax.jit, static_argnames=("shape",))
def _multilabel_soft_margin_core(x, y, weight, shape):
    xb = jnp.broadcast_to(x, shape)
    yb = jnp.broadcast_to(y.astype(x.dtype), shape)
    loss = -(yb * jax.nn.log_sigmoid(xb) + (1 - yb) * jax.nn.log_sigmoid(-xb))
    if weight is not None:
        loss = loss * jnp.broadcast_to(weight.astype(x.dtype), shape)
    # torch sums over input's last axis counted from the front, even if the target added axes.
    return jnp.sum(loss, axis=x.ndim - 1) / x.shape[-1]


def multilabel_soft_margin_loss(
    input: ArrayLike,
    target: ArrayLike,
    weight: ArrayLike | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Multi-label one-versus-all logistic loss, as
    ``torch.nn.functional.multilabel_soft_margin_loss``.

    Per sample, ``-mean_c(w_c * (y_c * log_sigmoid(x_c) + (1 - y_c) * log_sigmoid(-x_c)))`` over
    the last axis.

    Args:
      input: logits ``(..., C)`` (at least 1-D).
      target: 0/1 (or soft) labels broadcastable with ``input``.
      weight: optional weight broadcastable with the elementwise loss (e.g. ``(C,)``).
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
      A scalar, or the shape without the class axis for ``reduction="none"``.

    >>> x = jnp.array([[2.0, -1.0]])
    >>> round(float(multilabel_soft_margin_loss(x, jnp.array([[1.0, 0.0]]))), 4)
    0.2201
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    reduction = _check_reduction(reduction, elementwise_mean=False)
    name = "multilabel_soft_margin_loss"
    x = _float_array(name, input)
    if x.ndim == 0:
        raise ValueError(f"{name}: expected input with a class dimension, got a 0-d input")
    y = jnp.asarray(target)
    shape = _broadcast_shape(name, x, y)
    if weight is not None:
        weight = jnp.asarray(weight)
        shape = _broadcast_shape(name, np.empty(shape), weight)
    return _reduce(_multilabel_soft_margin_core(x, y, weight, shape=shape), reduction)
