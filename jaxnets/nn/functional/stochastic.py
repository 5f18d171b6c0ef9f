"""torch.nn.functional's dropouts: element, channel (``dropout1d/2d/3d``) and alpha variants.

Masks come from :mod:`jaxnets.nn.random` (``key=``: a key, an ``nnx.Rngs`` whose ``dropout``
stream is used, or a stream); torch's and JAX's random streams differ, so only ``training=False``,
``p`` in ``{0, 1}``, or a replay of torch's draws (``parity.check_port``) is torch-exact. The
arithmetic is torch's: the kept
values are multiplied by the scaled mask (``mask / (1 - p)``), and the alpha variants apply
``a * x * mask + b`` with torch's constants so that a SELU network keeps zero mean and unit
variance.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnets.nn import random
from jaxnets.nn._args import probability

__all__ = [
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "alpha_dropout",
    "feature_alpha_dropout",
]

# SELU's negative saturation value -scale * alpha, as torch's _dropout_impl spells it.
_ALPHA = 1.7580993408473766


_DRAW_LAYOUT = {"auto": "auto", "channels_last": "channels_last", "channels_first": "torch"}


def _draw_layout(layout: str) -> str:
    if layout not in _DRAW_LAYOUT:
        raise ValueError(f"layout must be one of {tuple(_DRAW_LAYOUT)}, got {layout!r}")
    return _DRAW_LAYOUT[layout]


def _apply(
    x: jax.Array,
    p: float,
    key: random.RngSource,
    mask_shape: tuple[int, ...],
    alpha: bool,
    layout: str,
) -> jax.Array:
    if p == 1.0:
        return x * jnp.zeros((), x.dtype)
    if key is None and random.active() is None:
        raise ValueError("dropout in training mode needs a random key: pass key=")
    keep = random.bernoulli(1.0 - p, mask_shape, rngs=key, layout=_draw_layout(layout))
    noise = jnp.broadcast_to(keep.astype(x.dtype), x.shape)
    if not alpha:
        return x * (noise * jnp.asarray(1.0 / (1.0 - p), x.dtype))
    a = 1.0 / math.sqrt((_ALPHA * _ALPHA * p + 1) * (1 - p))
    b = (noise - 1) * jnp.asarray(_ALPHA * a, x.dtype) + jnp.asarray(_ALPHA * a * p, x.dtype)
    return x * (noise * jnp.asarray(a, x.dtype)) + b


def dropout(
    input: ArrayLike,  # noqa: A002 - torch's name
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    key: random.RngSource = None,
    layout: str = "auto",
) -> jax.Array:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    ``layout`` only places a replayed torch mask (see :mod:`jaxnets.nn.random`): ``"auto"``
    follows the check, ``"channels_first"`` says ``input`` has torch's axes, ``"channels_last"``
    that torch's axis 1 is last here.

    >>> dropout(jnp.ones(3), 0.5, training=False).tolist()
    [1.0, 1.0, 1.0]
    """
    x = jnp.asarray(input)
    p = probability("dropout", p)
    if not training or p == 0.0:
        return x
    return _apply(x, p, key, x.shape, alpha=False, layout=layout)


def alpha_dropout(
    input: ArrayLike,  # noqa: A002
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    *,
    key: random.RngSource = None,
    layout: str = "auto",
) -> jax.Array:
    """torch's alpha dropout (for SELU networks), element by element (``layout``: see
    :func:`dropout`)."""
    x = jnp.asarray(input)
    p = probability("dropout", p)
    if not training or p == 0.0:
        return x
    return _apply(x, p, key, x.shape, alpha=True, layout=layout)


def _channel_mask(x: jax.Array, spatial: int | None, layout: str, name: str) -> tuple[int, ...]:
    """One draw per (sample, channel): the spatial axes of the mask are 1."""
    if spatial is not None and x.ndim not in (spatial + 1, spatial + 2):
        raise ValueError(
            f"{name}: expected {spatial + 1}-D or {spatial + 2}-D input, got shape {x.shape}"
        )
    if x.ndim < 2:
        raise ValueError(f"{name}: expected at least a (C, *spatial) input, got {x.shape}")
    batched = spatial is None or x.ndim == spatial + 2
    shape = [1] * x.ndim
    if batched:
        shape[0] = x.shape[0]
    if layout == "channels_last":
        shape[-1] = x.shape[-1]
    elif layout == "channels_first":
        channel = 1 if batched else 0
        shape[channel] = x.shape[channel]
    else:
        raise ValueError(f"layout must be 'channels_last' or 'channels_first', got {layout!r}")
    return tuple(shape)


def _feature(
    input: ArrayLike, p: float, training: bool, key, spatial, layout, name, alpha
) -> jax.Array:
    x = jnp.asarray(input)
    p = probability("dropout", p)
    if not training or p == 0.0:
        return x
    mask = _channel_mask(x, spatial, layout, name)
    return _apply(x, p, key, mask, alpha=alpha, layout=layout)


def dropout1d(
    input: ArrayLike,  # noqa: A002
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    key: random.RngSource = None,
    layout: str = "channels_last",
) -> jax.Array:
    """Zero whole channels of ``(N, L, C)`` / ``(L, C)`` input (``channels_first``: torch's)."""
    return _feature(input, p, training, key, 1, layout, "dropout1d", alpha=False)


def dropout2d(
    input: ArrayLike,  # noqa: A002
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    key: random.RngSource = None,
    layout: str = "channels_last",
) -> jax.Array:
    """Zero whole channels of ``(N, H, W, C)`` input.

    A 3-D input is torch's ``(N, C, L)`` (``(N, L, C)`` channels-last), not an unbatched image:
    torch's ``dropout2d`` zeroes whole channels of each sample there, as ``dropout1d`` does.
    """
    spatial = 1 if jnp.ndim(input) == 3 else 2
    return _feature(input, p, training, key, spatial, layout, "dropout2d", alpha=False)


def dropout3d(
    input: ArrayLike,  # noqa: A002
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    key: random.RngSource = None,
    layout: str = "channels_last",
) -> jax.Array:
    """Zero whole channels of ``(N, D, H, W, C)`` / ``(D, H, W, C)`` input."""
    return _feature(input, p, training, key, 3, layout, "dropout3d", alpha=False)


def feature_alpha_dropout(
    input: ArrayLike,  # noqa: A002
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    *,
    key: random.RngSource = None,
    layout: str = "channels_last",
) -> jax.Array:
    """Alpha dropout of whole channels (one draw per sample and channel)."""
    return _feature(input, p, training, key, None, layout, "feature_alpha_dropout", alpha=True)
