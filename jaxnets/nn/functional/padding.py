"""``torch.nn.functional.pad`` with every mode, on channels-last or channels-first arrays."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

__all__ = ["pad", "spatial_axes"]

_MODES = {"constant": None, "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def spatial_axes(ndim: int, count: int, layout: str) -> list[int]:
    """The ``count`` trailing spatial axes of a rank-``ndim`` array, first to last.

    Channels-last arrays keep the channels on the last axis, so their spatial axes end one
    before it; channels-first (torch's) arrays end with them.

    >>> spatial_axes(4, 2, "channels_last"), spatial_axes(4, 2, "channels_first")
    ([1, 2], [2, 3])
    """
    if layout == "channels_last":
        end = ndim - 1
    elif layout == "channels_first":
        end = ndim
    else:
        raise ValueError(f"layout must be 'channels_last' or 'channels_first', got {layout!r}")
    return list(range(end - count, end))


def pad(
    input: ArrayLike,  # noqa: A002 - torch's name
    pad: Sequence[int],
    mode: str = "constant",
    value: float | None = None,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """Pad (or, with negative sizes, crop) the trailing spatial axes, as torch's ``F.pad``.

    ``pad`` lists ``(before, after)`` pairs starting from the last spatial axis, as torch:
    ``(left, right)`` pads the width, ``(left, right, top, bottom)`` width then height. With
    ``layout="channels_last"`` (the default) the spatial axes are those before the last (the
    channels), so ``(left, right)`` pads axis ``-2``; ``layout="channels_first"`` is torch's
    own ``F.pad``, which pads the array's last axes (use it for arrays that are not images).

    Modes: ``"constant"`` (``value``, default 0; any rank, negative sizes crop),
    ``"reflect"`` (mirror without the edge; each size below the axis length),
    ``"replicate"`` (repeat the edge) and ``"circular"`` (wrap; each size at most the axis
    length). The last three pad 1 to 3 spatial axes of a batched or unbatched array, as torch
    requires, and take negative sizes as crops too. Gradients of the reflected, replicated and
    wrapped copies add up into their sources, as torch's backward does.

    >>> x = jnp.arange(3.0).reshape(1, 3, 1)  # (N, W, C)
    >>> pad(x, (1, 2), mode="reflect")[0, :, 0].tolist()
    [1.0, 0.0, 1.0, 2.0, 1.0, 0.0]
    """
    x = jnp.asarray(input)
    widths = [int(p) for p in pad]
    if len(widths) % 2:
        raise ValueError(f"Padding length must be divisible by 2, got {len(widths)}")
    if mode not in _MODES:
        raise NotImplementedError(
            f"Unsupported padding mode: {mode!r} (one of {', '.join(map(repr, _MODES))})"
        )
    count = len(widths) // 2
    channel = 1 if layout == "channels_last" else 0
    if count + channel > x.ndim:
        raise ValueError(
            f"Padding length {len(widths)} is too large for an input of shape {x.shape} ({layout})"
        )
    axes = spatial_axes(x.ndim, count, layout)
    # pad lists the last spatial axis first
    pairs = {axis: (widths[2 * i], widths[2 * i + 1]) for i, axis in enumerate(reversed(axes))}
    if mode == "constant":
        fill = jnp.asarray(0 if value is None else value, x.dtype)
        config = [(*pairs.get(axis, (0, 0)), 0) for axis in range(x.ndim)]
        return lax.pad(x, fill, config)
    if value is not None and value != 0:
        raise ValueError(f"Padding mode {mode!r} doesn't take in value argument")
    if not 1 <= count <= 3 or x.ndim not in (count + 1, count + 2):
        raise NotImplementedError(
            f"Only 2D, 3D, 4D, 5D padding with non-constant padding are supported for now: "
            f"{mode} padding of {count} axes needs a {count + 1}-D or {count + 2}-D input, "
            f"got shape {x.shape}"
        )
    for axis, (before, after) in pairs.items():
        size = x.shape[axis]
        for width in (before, after):
            if mode == "reflect" and width >= size:
                raise ValueError(
                    f"Argument #4: Padding size should be less than the corresponding input "
                    f"dimension, but got: padding ({before}, {after}) at axis {axis} of input "
                    f"of shape {x.shape}"
                )
            if mode == "circular" and width > size:
                raise ValueError(
                    f"Padding value causes wrapping around more than once: padding "
                    f"({before}, {after}) at axis {axis} of input of shape {x.shape}"
                )
            if mode == "replicate" and size == 0:
                raise ValueError(f"replicate padding of an empty axis {axis} of {x.shape}")
    grow = [(max(p[0], 0), max(p[1], 0)) if (p := pairs.get(a)) else (0, 0) for a in range(x.ndim)]
    if mode == "circular":
        # torch wraps the already-cropped array: crop first, then pad.
        x = _crop(x, pairs)
        return jnp.pad(x, grow, mode="wrap")
    return _crop(jnp.pad(x, grow, mode=_MODES[mode]), pairs)


def _crop(x: jax.Array, pairs: dict[int, tuple[int, int]]) -> jax.Array:
    """Remove ``-width`` entries where a width is negative."""
    config = [(*(min(w, 0) for w in pairs.get(axis, (0, 0))), 0) for axis in range(x.ndim)]
    if all(lo == 0 and hi == 0 for lo, hi, _ in config):
        return x
    return lax.pad(x, jnp.zeros((), x.dtype), config)
