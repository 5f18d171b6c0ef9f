"""Regression and likelihood losses: L1, MSE, smooth L1, Huber, KL divergence, Poisson and
Gaussian negative log likelihood."""

from __future__ import annotations

import math
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy
from jax.typing import ArrayLike

from jaxnets.losses._common import (
    _REDUCTIONS,
    _abs,
    _broadcast_shape,
    _cast_broadcast,
    _check_reduction,
    _float_array,
    _is_concrete,
    _legacy_reduction,
    _pointwise_inputs,
    _pointwise_loss,
    _reduce,
)


def _weighted(loss: jax.Array, weight: jax.Array | None) -> jax.Array:
    if weight is None:
        return loss
    return loss * _cast_broadcast(weight, loss, loss.shape)


@partial(jax.jit, static_argnames=("shape",))
def _l1_core(x, y, weight, shape):
    x, y = jnp.broadcast_to(x, shape), _cast_broadcast(y, x, shape)
    return _weighted(_abs(x - y), weight)


@partial(jax.jit, static_argnames=("shape",))
def _mse_core(x, y, weight, shape):
    x, y = jnp.broadcast_to(x, shape), _cast_broadcast(y, x, shape)
    return _weighted(jnp.square(x - y), weight)


@partial(jax.jit, static_argnames=("shape", "linear"))
def _smooth_l1_core(x, y, beta, shape, linear):
    x, y = jnp.broadcast_to(x, shape), _cast_broadcast(y, x, shape)
    z = _abs(x - y)
    if linear:
        return z
    return jnp.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)


@partial(jax.jit, static_argnames=("shape",))
def _huber_core(x, y, weight, delta, shape):
    x, y = jnp.broadcast_to(x, shape), _cast_broadcast(y, x, shape)
    z = _abs(x - y)
    return _weighted(jnp.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta)), weight)


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
    reduction = _legacy_reduction(size_average, reduce, reduction)
    reduction = _check_reduction(reduction, elementwise_mean=weight is None)
    x, y, shape = _pointwise_inputs("l1_loss", input, target)
    return _pointwise_loss("l1_loss", _l1_core, x, y, shape, weight, reduction)


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
    reduction = _legacy_reduction(size_average, reduce, reduction)
    reduction = _check_reduction(reduction, elementwise_mean=weight is None)
    x, y, shape = _pointwise_inputs("mse_loss", input, target)
    return _pointwise_loss("mse_loss", _mse_core, x, y, shape, weight, reduction)


def smooth_l1_loss(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> jax.Array:
    """Smooth L1 loss, as ``torch.nn.functional.smooth_l1_loss``.

    Elementwise ``0.5 * d**2 / beta`` where ``|d| < beta`` and ``|d| - 0.5 * beta`` elsewhere,
    with ``d = input - target``; ``beta == 0`` is the L1 loss.

    Args:
      input: predictions, any shape.
      target: same shape as ``input`` (other broadcastable shapes warn, as in torch).
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
      beta: non-negative threshold between the squared and the linear part.

    Returns:
      A scalar, or the broadcast shape of ``input`` and ``target`` for ``reduction="none"``.
      The gradient is ``d / beta`` inside the threshold and ``sign(d)`` outside; at
      ``|d| == beta`` both give ``sign(d)``, torch's value.

    >>> round(float(smooth_l1_loss(jnp.array([0.5, 3.0]), jnp.array([0.0, 0.0]))), 4)
    1.3125
    """
    if beta < 0:
        raise ValueError("smooth_l1_loss does not support negative values for beta.")
    reduction = _check_reduction(_legacy_reduction(size_average, reduce, reduction))
    x, y, shape = _pointwise_inputs("smooth_l1_loss", input, target)
    loss = _smooth_l1_core(x, y, float(beta), shape=shape, linear=beta == 0)
    return _reduce(loss, reduction)


def huber_loss(
    input: ArrayLike,
    target: ArrayLike,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: ArrayLike | None = None,
) -> jax.Array:
    """Huber loss, as ``torch.nn.functional.huber_loss``.

    Elementwise ``0.5 * d**2`` where ``|d| < delta`` and ``delta * (|d| - 0.5 * delta)``
    elsewhere, with ``d = input - target``.

    Args:
      input: predictions, any shape.
      target: same shape as ``input`` (other broadcastable shapes warn, as in torch).
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.
      delta: positive threshold between the squared and the linear part.
      weight: optional per-element weight of ``input``'s shape. Unlike ``l1_loss`` and
        ``mse_loss``, torch's weighted ``"mean"`` here is the plain mean of the weighted losses.

    Returns:
      A scalar, or the broadcast shape of ``input`` and ``target`` for ``reduction="none"``.

    >>> round(float(huber_loss(jnp.array([0.5, 3.0]), jnp.array([0.0, 0.0]), delta=2.0)), 4)
    2.0625
    """
    reduction = _check_reduction(reduction, elementwise_mean=weight is None)
    if delta <= 0:
        raise ValueError("huber_loss does not support non-positive values for delta.")
    x, y, shape = _pointwise_inputs("huber_loss", input, target)
    if weight is not None:
        weight = jnp.asarray(weight)
        if weight.shape != x.shape:
            raise ValueError(
                f"huber_loss: Weights and input must have the same size "
                f"(weight {weight.shape}, input {x.shape})."
            )
    return _reduce(_huber_core(x, y, weight, float(delta), shape=shape), reduction)


@partial(jax.jit, static_argnames=("shape", "log_target"))
def _kl_div_core(x, t, shape, log_target):
    x, t = jnp.broadcast_to(x, shape), _cast_broadcast(t, x, shape)
    if log_target:
        return jnp.exp(t) * (t - x)
    return xlogy(t, t) - t * x


def kl_div(
    input: ArrayLike,
    target: ArrayLike,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> jax.Array:
    """Pointwise KL divergence, as ``torch.nn.functional.kl_div``.

    Elementwise ``target * (log(target) - input)`` (``0`` where ``target == 0``), or
    ``exp(target) * (target - input)`` with ``log_target=True``.

    Args:
      input: log-probabilities, any shape.
      target: probabilities (log-probabilities if ``log_target``), broadcastable with ``input``.
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"batchmean"`` | ``"sum"`` | ``"mean"``. ``"batchmean"`` divides
        the sum by ``input.shape[0]`` (the KL divergence per sample); ``"mean"`` divides by the
        number of elements and warns, as torch does.
      log_target: whether ``target`` is given in log space.

    Returns:
      A scalar, or the broadcast shape for ``reduction="none"``. Gradients with respect to
      ``input`` match torch's; with respect to ``target`` at ``target == 0`` they may differ
      (torch gives NaN there).

    >>> logp = jnp.log(jnp.array([[0.25, 0.75]]))
    >>> round(float(kl_div(logp, jnp.array([[0.5, 0.5]]), reduction="batchmean")), 4)
    0.1438
    """
    if size_average is not None or reduce is not None:
        enum = _legacy_reduction(size_average, reduce, reduction)
    else:
        if reduction == "mean":
            warnings.warn(
                "reduction: 'mean' divides the total loss by both the batch size and the support "
                "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
                "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
                "major release.",
                UserWarning,
                stacklevel=2,
            )
        if reduction == "batchmean":
            enum = "sum"
        else:
            enum = _check_reduction(reduction, (*_REDUCTIONS, "batchmean"))
    input = _float_array("kl_div", input)
    target = jnp.asarray(target)
    if not jnp.issubdtype(target.dtype, jnp.floating):
        raise TypeError("kl_div: Integral inputs not supported.")
    shape = _broadcast_shape("kl_div", input, target)
    reduced = _reduce(_kl_div_core(input, target, shape=shape, log_target=log_target), enum)
    # As in torch, the legacy arguments do not stop "batchmean" from dividing.
    if reduction == "batchmean" and input.ndim != 0:
        reduced = reduced / input.shape[0]
    return reduced


@partial(jax.jit, static_argnames=("shape", "log_input", "full"))
def _poisson_core(x, t, eps, shape, log_input, full):
    x, t = jnp.broadcast_to(x, shape), _cast_broadcast(t, x, shape)
    if log_input:
        loss = jnp.exp(x) - t * x
    else:
        loss = x - t * jnp.log(x + eps)
    if full:
        # Evaluate the masked-off entries at a safe point so no NaN reaches the target's gradient.
        big = t > 1
        ts = jnp.where(big, t, jnp.full_like(t, 2.0))
        stirling = ts * jnp.log(ts) - ts + 0.5 * jnp.log(2 * math.pi * ts)
        loss = loss + jnp.where(big, stirling, jnp.zeros_like(stirling))
    return loss


def poisson_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """Poisson negative log likelihood, as ``torch.nn.functional.poisson_nll_loss``.

    Elementwise ``exp(input) - target * input`` (``log_input=True``) or
    ``input - target * log(input + eps)``, plus with ``full`` the Stirling term
    ``target * log(target) - target + 0.5 * log(2 * pi * target)`` where ``target > 1``.

    Args:
      input: the rate (its log if ``log_input``), any shape.
      target: counts, broadcastable with ``input``.
      log_input: whether ``input`` is the log-rate.
      full: whether to add the Stirling approximation term.
      size_average: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      eps: added to ``input`` before the log when ``log_input=False``.
      reduce: deprecated torch argument, mapped to ``reduction`` as torch maps it.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
      A scalar, or the broadcast shape for ``reduction="none"``.

    >>> round(float(poisson_nll_loss(jnp.array([0.0, 1.0]), jnp.array([1.0, 2.0]))), 4)
    0.8591
    """
    reduction = _legacy_reduction(size_average, reduce, reduction)
    reduction = _check_reduction(reduction, elementwise_mean=False)
    input = _float_array("poisson_nll_loss", input)
    target = jnp.asarray(target)
    shape = _broadcast_shape("poisson_nll_loss", input, target)
    loss = _poisson_core(input, target, float(eps), shape=shape, log_input=log_input, full=full)
    return _reduce(loss, reduction)


@jax.custom_jvp
def _clamped_variance(var: jax.Array, eps: jax.Array) -> jax.Array:
    return jnp.maximum(var, eps)


@_clamped_variance.defjvp
def _clamped_variance_jvp(primals, tangents):
    # torch clamps a clone under no_grad, so the gradient reaches var as if nothing was clamped.
    var, eps = primals
    dvar, _ = tangents
    return _clamped_variance(var, eps), dvar


def gaussian_nll_loss(
    input: ArrayLike,
    target: ArrayLike,
    var: ArrayLike | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> jax.Array:
    """Gaussian negative log likelihood, as ``torch.nn.functional.gaussian_nll_loss``.

    Elementwise ``0.5 * (log(max(var, eps)) + (input - target)**2 / max(var, eps))``, plus
    ``0.5 * log(2 * pi)`` with ``full``.

    Args:
      input: the means, any shape.
      target: samples, broadcastable with ``input``.
      var: non-negative variances: ``input``'s shape, or one dimension short of it (trailing
        dimension dropped), or ``input``'s rank with exactly one dimension of size 1, or a float.
      full: whether to add the constant term.
      eps: lower clamp of ``var``. As in torch, the clamp is invisible to the gradient, which
        reaches ``var`` even where it was clamped.
      reduction: ``"none"`` | ``"mean"`` | ``"sum"``.

    Returns:
      A scalar, or the broadcast shape for ``reduction="none"``. Negative entries of an array
      ``var`` raise only when its values are concrete; traced (under ``jit``/``vmap``/``grad``)
      they are clamped to ``eps`` like any other small variance.

    >>> round(float(gaussian_nll_loss(jnp.array([0.0, 1.0]), jnp.array([1.0, 1.0]), 1.0)), 4)
    0.25
    """
    input = _float_array("gaussian_nll_loss", input)
    if isinstance(var, (int, float)) and not isinstance(var, bool):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = float(var)
        unsqueeze = False
    else:
        var = jnp.asarray(var)
        if _is_concrete(var) and bool(np.any(np.asarray(var) < 0)):
            raise ValueError("var has negative entry/entries")
        unsqueeze = var.shape != input.shape and input.shape[:-1] == var.shape
        if (
            var.shape != input.shape
            and not unsqueeze
            and not (
                input.ndim == var.ndim
                and sum(v for i, v in zip(input.shape, var.shape, strict=True) if i != v) == 1
            )
        ):
            raise ValueError("var is of incorrect size")
    reduction = _check_reduction(reduction, elementwise_mean=False)
    target = jnp.asarray(target)
    var_shape = (*jnp.shape(var), 1) if unsqueeze else jnp.shape(var)
    shape = _broadcast_shape("gaussian_nll_loss", input, target, np.empty(var_shape))
    loss = _gaussian_core(
        input, target, var, float(eps), bool(full), shape=shape, unsqueeze=unsqueeze
    )
    return _reduce(loss, reduction)


@partial(jax.jit, static_argnames=("shape", "unsqueeze"))
def _gaussian_core(x, t, var, eps, full, shape, unsqueeze):
    var = jnp.asarray(var)
    if unsqueeze:
        var = jnp.expand_dims(var, -1)
    x, t, var = (
        jnp.broadcast_to(x, shape),
        _cast_broadcast(t, x, shape),
        _cast_broadcast(var, x, shape),
    )
    var = _clamped_variance(var, eps)
    loss = 0.5 * (jnp.log(var) + (x - t) ** 2 / var)
    # Adding an exact 0.0 when not full keeps one compiled core for both.
    return loss + jnp.where(full, 0.5 * math.log(2 * math.pi), 0.0).astype(loss.dtype)
