"""``Upsample`` and its two fixed-mode forms on channels-last ``(N, *spatial, C)`` batches."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jaxnets.nn.functional.vision import interpolate

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]


class Upsample(nnx.Module):
    """``torch.nn.Upsample``: :func:`jaxnets.nn.functional.vision.interpolate` with fixed
    arguments, on channels-last input.

    Input ``(N, W, C)``, ``(N, H, W, C)`` or ``(N, D, H, W, C)`` (torch's ``(N, C, *spatial)``
    with the channels moved last; torch has no unbatched form). Either ``size`` or
    ``scale_factor``; modes ``nearest``, ``nearest-exact``, ``linear``, ``bilinear``,
    ``bicubic``, ``trilinear``, ``area``; ``align_corners`` for the linear modes; with a
    ``scale_factor`` and ``recompute_scale_factor`` not True, the scale itself enters torch's
    source-index formula. No parameters, no training mode.

    >>> up = Upsample(scale_factor=2, mode="nearest")
    >>> up(jnp.asarray([[[1.0], [2.0]]]))[0, :, 0].tolist()
    [1.0, 1.0, 2.0, 2.0]
    """

    torch_channel_axis = {3: 1, 4: 1, 5: 1}

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ):
        self.size = tuple(size) if isinstance(size, Sequence) else size
        # As torch: a falsy scale factor (0 or None) is no scale factor.
        if isinstance(scale_factor, Sequence):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def __call__(self, x: ArrayLike) -> jax.Array:
        return interpolate(
            jnp.asarray(x),
            self.size,
            self.scale_factor,
            self.mode,
            self.align_corners,
            recompute_scale_factor=self.recompute_scale_factor,
        )


class UpsamplingNearest2d(Upsample):
    """``torch.nn.UpsamplingNearest2d``: ``Upsample(size, scale_factor, mode="nearest")`` on
    ``(N, H, W, C)``.

    >>> UpsamplingNearest2d(scale_factor=2)(jnp.ones((1, 2, 3, 4))).shape
    (1, 4, 6, 4)
    """

    torch_channel_axis = {4: 1}

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
    ):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``torch.nn.UpsamplingBilinear2d``: ``Upsample(size, scale_factor, mode="bilinear",
    align_corners=True)`` on ``(N, H, W, C)``: the corner pixels stay where they are.

    >>> x = jnp.asarray([0.0, 3.0]).reshape(1, 1, 2, 1)
    >>> UpsamplingBilinear2d(size=(1, 4))(x)[0, 0, :, 0].tolist()
    [0.0, 1.0, 2.0, 3.0]
    """

    torch_channel_axis = {4: 1}

    def __init__(
        self,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
    ):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
