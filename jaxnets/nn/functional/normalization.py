"""torch.nn.functional's normalisations: batch, instance, layer, group, RMS, local response,
and ``normalize``.

Statistics follow torch: the normalisation divides by the biased variance
``mean((x - mean)**2)``; running variances take the unbiased one (``n / (n - 1)`` times it, ``n``
values per channel). The functions are pure: where torch's ``F.batch_norm`` and
``F.instance_norm`` update ``running_mean``/``running_var`` in place, these return the updated
statistics when asked (``return_running=True``) and the layers store them.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxnets.nn.functional.padding import spatial_axes

__all__ = [
    "batch_norm",
    "instance_norm",
    "layer_norm",
    "group_norm",
    "rms_norm",
    "local_response_norm",
    "normalize",
]


def _channel_axis(ndim: int, layout: str) -> int:
    spatial_axes(ndim, 0, layout)  # validates the layout
    return ndim - 1 if layout == "channels_last" else min(1, ndim - 1)


def _per_channel(values: jax.Array | None, ndim: int, axis: int) -> jax.Array | None:
    """A ``(C,)`` vector shaped to broadcast along ``axis`` of a rank-``ndim`` array."""
    if values is None:
        return None
    shape = [1] * ndim
    shape[axis] = values.shape[0]
    return values.reshape(shape)


def _affine(y: jax.Array, weight: ArrayLike | None, bias: ArrayLike | None, axis: int):
    if weight is not None:
        y = y * jnp.broadcast_to(_per_channel(jnp.asarray(weight, y.dtype), y.ndim, axis), y.shape)
    if bias is not None:
        y = y + jnp.broadcast_to(_per_channel(jnp.asarray(bias, y.dtype), y.ndim, axis), y.shape)
    return y


def _standardise(x: jax.Array, mean: jax.Array, var: jax.Array, eps: float) -> jax.Array:
    return (x - mean) * lax.rsqrt(var + jnp.asarray(eps, x.dtype))


def _moments(x: jax.Array, axes: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    mean = jnp.mean(x, axis=axes, keepdims=True)
    return mean, jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)


def _running(
    old: jax.Array, new: jax.Array, momentum: float | jax.Array
) -> jax.Array:  # torch updates statistics outside autograd
    factor = jnp.asarray(momentum, old.dtype)
    return lax.stop_gradient((1 - factor) * old + factor * new.astype(old.dtype))


def batch_norm(
    input: ArrayLike,  # noqa: A002 - torch's name
    running_mean: ArrayLike | None,
    running_var: ArrayLike | None,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    training: bool = False,
    momentum: float | jax.Array = 0.1,
    eps: float = 1e-5,
    *,
    layout: str = "channels_last",
    return_running: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array | None, jax.Array | None]:
    """``torch.nn.functional.batch_norm`` over every axis but the channels.

    In training (or without running statistics) the batch's mean and biased variance
    normalise; else the running ones. With ``return_running``, returns ``(y, running_mean,
    running_var)`` with the statistics torch would have written in place (training mode:
    ``(1 - momentum) * old + momentum * batch``, the unbiased batch variance; unchanged
    otherwise, and for an empty batch, as torch).

    >>> x = jnp.asarray([[1.0], [3.0]])
    >>> batch_norm(x, None, None, training=True, eps=0.0).tolist()
    [[-1.0], [1.0]]
    """
    x = jnp.asarray(input)
    axis = _channel_axis(x.ndim, layout)
    channels = x.shape[axis]
    axes = tuple(a for a in range(x.ndim) if a != axis)
    count = x.size // max(channels, 1)
    use_batch = training or running_mean is None or running_var is None
    if training and count == 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {x.shape}"
        )
    if use_batch:
        mean, var = _moments(x, axes)
    else:
        mean = _per_channel(jnp.asarray(running_mean, x.dtype), x.ndim, axis)
        var = _per_channel(jnp.asarray(running_var, x.dtype), x.ndim, axis)
    y = _affine(_standardise(x, mean, var, eps), weight, bias, axis)
    if not return_running:
        return y
    new_mean, new_var = running_mean, running_var
    if training and running_mean is not None and count > 0:
        new_mean = _running(jnp.asarray(running_mean), mean.reshape(-1), momentum)
        unbiased = var.reshape(-1) * (count / (count - 1))
        new_var = _running(jnp.asarray(running_var), unbiased, momentum)
    return y, new_mean, new_var


def instance_norm(
    input: ArrayLike,  # noqa: A002
    running_mean: ArrayLike | None = None,
    running_var: ArrayLike | None = None,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
    *,
    layout: str = "channels_last",
    return_running: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array | None, jax.Array | None]:
    """``torch.nn.functional.instance_norm``: each sample's channel over its spatial axes.

    ``input`` is batched ``(N, *spatial, C)``; an unbatched layer adds the batch axis first.
    With ``use_input_stats`` the instance's mean and biased variance normalise and, given
    running statistics, ``return_running`` gives them updated with the batch averages of the
    instance means and unbiased variances (torch's rule); without, the running ones normalise.
    """
    x = jnp.asarray(input)
    if x.ndim < 3:
        raise ValueError(f"instance_norm expects a batched (N, *spatial, C) input, got {x.shape}")
    axis = _channel_axis(x.ndim, layout)
    axes = tuple(a for a in range(1, x.ndim) if a != axis)
    count = 1
    for a in axes:
        count *= x.shape[a]
    if use_input_stats:
        if count <= 1:
            raise ValueError(
                f"Expected more than 1 spatial element when training, got input size {x.shape}"
            )
        mean, var = _moments(x, axes)
    else:
        mean = _per_channel(jnp.asarray(running_mean, x.dtype), x.ndim, axis)
        var = _per_channel(jnp.asarray(running_var, x.dtype), x.ndim, axis)
    y = _affine(_standardise(x, mean, var, eps), weight, bias, axis)
    if not return_running:
        return y
    new_mean, new_var = running_mean, running_var
    if use_input_stats and running_mean is not None:
        channel = 1 if layout == "channels_first" else x.ndim - 1
        batch_mean = jnp.mean(jnp.moveaxis(mean, channel, -1).reshape(-1, x.shape[axis]), axis=0)
        unbiased = jnp.moveaxis(var, channel, -1).reshape(-1, x.shape[axis]) * (count / (count - 1))
        new_mean = _running(jnp.asarray(running_mean), batch_mean, momentum)
        new_var = _running(jnp.asarray(running_var), jnp.mean(unbiased, axis=0), momentum)
    return y, new_mean, new_var


def _trailing(x: jax.Array, normalized_shape: int | Sequence[int], name: str) -> tuple[int, ...]:
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k :]) != shape:
        raise ValueError(f"{name}: expected input ending in {shape}, got shape {x.shape}")
    return tuple(range(x.ndim - k, x.ndim))


def layer_norm(
    input: ArrayLike,  # noqa: A002
    normalized_shape: int | Sequence[int],
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    eps: float = 1e-5,
) -> jax.Array:
    """``torch.nn.functional.layer_norm`` over the trailing ``normalized_shape`` axes of the
    array as it is (not a spatial function: no layout)."""
    x = jnp.asarray(input)
    axes = _trailing(x, normalized_shape, "layer_norm")
    mean, var = _moments(x, axes)
    y = _standardise(x, mean, var, eps)
    if weight is not None:
        y = y * jnp.broadcast_to(jnp.asarray(weight, x.dtype), y.shape)
    if bias is not None:
        y = y + jnp.broadcast_to(jnp.asarray(bias, x.dtype), y.shape)
    return y


def rms_norm(
    input: ArrayLike,  # noqa: A002
    normalized_shape: int | Sequence[int],
    weight: ArrayLike | None = None,
    eps: float | None = None,
) -> jax.Array:
    """``torch.nn.functional.rms_norm``: ``x / sqrt(mean(x**2) + eps) * weight`` over the
    trailing ``normalized_shape`` axes; ``eps=None`` is the dtype's machine epsilon, as torch."""
    x = jnp.asarray(input)
    axes = _trailing(x, normalized_shape, "rms_norm")
    if eps is None:
        eps = float(jnp.finfo(x.dtype).eps)
    y = x * lax.rsqrt(jnp.mean(jnp.square(x), axis=axes, keepdims=True) + jnp.asarray(eps, x.dtype))
    if weight is not None:
        y = y * jnp.broadcast_to(jnp.asarray(weight, x.dtype), y.shape)
    return y


def group_norm(
    input: ArrayLike,  # noqa: A002
    num_groups: int,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    eps: float = 1e-5,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.group_norm``: each sample's block of ``C / num_groups``
    consecutive channels normalised over its channels and spatial positions."""
    x = jnp.asarray(input)
    if x.ndim < 2:
        raise ValueError(f"group_norm expects an (N, *spatial, C) input, got shape {x.shape}")
    axis = _channel_axis(x.ndim, layout)
    channels = x.shape[axis]
    if channels % num_groups:
        raise ValueError(
            f"Expected number of channels in input to be divisible by num_groups, but got "
            f"input of shape {x.shape} and num_groups={num_groups}"
        )
    split = (*x.shape[:axis], num_groups, channels // num_groups, *x.shape[axis + 1 :])
    groups = x.reshape(split)
    axes = tuple(a for a in range(1, groups.ndim) if a != axis)
    mean, var = _moments(groups, axes)
    y = _standardise(groups, mean, var, eps).reshape(x.shape)
    return _affine(y, weight, bias, axis)


def local_response_norm(
    input: ArrayLike,  # noqa: A002
    size: int,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 1.0,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.local_response_norm``: ``x / (k + alpha * avg)**beta``, ``avg``
    the mean of ``x**2`` over ``size`` neighbouring channels (``size // 2`` before,
    ``(size - 1) // 2`` after, zeros beyond the ends counted)."""
    x = jnp.asarray(input)
    if x.ndim < 3:
        raise ValueError(
            f"Expected 3D or higher dimensionality input (got {x.ndim} dimensions: {x.shape})"
        )
    if x.size == 0:
        return x
    axis = _channel_axis(x.ndim, layout)
    squares = jnp.moveaxis(jnp.square(x), axis, -1)
    channels = squares.shape[-1]
    config = [(0, 0, 0)] * (x.ndim - 1) + [(size // 2, (size - 1) // 2, 0)]
    padded = lax.pad(squares, jnp.zeros((), x.dtype), config)
    window = sum(
        lax.slice_in_dim(padded, i, i + channels, axis=padded.ndim - 1) for i in range(size)
    )
    div = jnp.moveaxis(window, -1, axis) * jnp.asarray(alpha / size, x.dtype)
    return x / (div + jnp.asarray(k, x.dtype)) ** jnp.asarray(beta, x.dtype)


def normalize(
    input: ArrayLike,  # noqa: A002
    p: float = 2.0,
    dim: int = 1,
    eps: float = 1e-12,
) -> jax.Array:
    """``torch.nn.functional.normalize``: ``x / max(||x||_p, eps)`` along ``dim`` (an axis
    of the array as it is)."""
    x = jnp.asarray(input)
    if x.ndim == 0:  # torch treats a 0-d tensor as one element along dim 0
        return normalize(x.reshape(1), p, 0, eps).reshape(())
    if p == 2:
        norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=dim, keepdims=True))
    else:
        norm = jnp.linalg.norm(x, ord=p, axis=dim, keepdims=True)
    # torch's clamp_min(eps): the norm keeps its gradient at the boundary
    denominator = jnp.where(norm >= eps, norm, jnp.asarray(eps, x.dtype))
    return x / jnp.broadcast_to(denominator, x.shape)
