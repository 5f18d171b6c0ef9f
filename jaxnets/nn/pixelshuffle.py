"""``PixelShuffle``, ``PixelUnshuffle`` and ``ChannelShuffle`` on channels-last input, in torch's
channel order."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jaxnets.nn._args import positive
from jaxnets.nn.functional.vision import channel_shuffle, pixel_shuffle, pixel_unshuffle

__all__ = ["PixelShuffle", "PixelUnshuffle", "ChannelShuffle"]


class PixelShuffle(nnx.Module):
    """``torch.nn.PixelShuffle(upscale_factor)``: ``(*, H, W, C*r*r)`` to ``(*, H*r, W*r, C)``.

    torch's channel ``c*r*r + i*r + j`` of pixel ``(h, w)`` becomes channel ``c`` of pixel
    ``(h*r + i, w*r + j)``: a sub-pixel convolution loaded from torch (output channels in torch's
    order) shuffles to torch's image, channels last. Any number of leading axes, as torch.

    >>> PixelShuffle(3)(jnp.zeros((2, 4, 5, 18))).shape
    (2, 12, 15, 2)
    """

    torch_channel_axis = {3: 0, 4: 1, 5: 2}

    def __init__(self, upscale_factor: int):
        self.upscale_factor = positive("upscale_factor", upscale_factor)

    def __call__(self, x: ArrayLike) -> jax.Array:
        return pixel_shuffle(jnp.asarray(x), self.upscale_factor)


class PixelUnshuffle(nnx.Module):
    """``torch.nn.PixelUnshuffle(downscale_factor)``, the inverse of :class:`PixelShuffle`:
    ``(*, H*r, W*r, C)`` to ``(*, H, W, C*r*r)`` in torch's channel order.

    >>> PixelUnshuffle(2)(jnp.zeros((1, 4, 6, 3))).shape
    (1, 2, 3, 12)
    """

    torch_channel_axis = {3: 0, 4: 1, 5: 2}

    def __init__(self, downscale_factor: int):
        self.downscale_factor = positive("downscale_factor", downscale_factor)

    def __call__(self, x: ArrayLike) -> jax.Array:
        return pixel_unshuffle(jnp.asarray(x), self.downscale_factor)


class ChannelShuffle(nnx.Module):
    """``torch.nn.ChannelShuffle(groups)``: the channels (last axis) viewed as
    ``(groups, C / groups)`` and transposed, as ShuffleNet mixes grouped convolutions' outputs.

    Input of rank >= 3, ``(N, *spatial, C)`` (torch's ``(N, C, *spatial)``).

    >>> ChannelShuffle(3)(jnp.arange(6.0).reshape(1, 1, 6))[0, 0].tolist()
    [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
    """

    torch_channel_axis = {3: 1, 4: 1, 5: 1}

    def __init__(self, groups: int):
        self.groups = positive("groups", groups)

    def __call__(self, x: ArrayLike) -> jax.Array:
        return channel_shuffle(jnp.asarray(x), self.groups)
