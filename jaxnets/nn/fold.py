"""``Unfold`` (im2col) and ``Fold`` (col2im): channels-last images, patches ``(N, L, C*kh*kw)``.

The patch side is not an image: torch's ``(N, C*kh*kw, L)`` is kept with its last two axes
swapped, ``(N, L, C*kh*kw)`` (unbatched ``(L, C*kh*kw)``), so that each block is a row and the
patch axis is last, where a matmul wants it; within that axis the order is torch's,
channel-major (entry ``c*kh*kw + i*kw + j`` is channel ``c`` at kernel tap ``(i, j)``) and the
blocks ``l = bh * Bw + bw`` are row-major, as torch's. Besides ``torch_channel_axis`` (the image
side), each layer declares ``torch_patch_axis = {3: 1, 2: 0}``: the axis of torch's patch array,
by rank, that is moved last here.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jaxnets.nn._args import ntuple
from jaxnets.nn.functional.vision import fold, unfold

__all__ = ["Unfold", "Fold"]


class Unfold(nnx.Module):
    """``torch.nn.Unfold``: every sliding ``kernel_size`` block of a zero-padded image.

    ``(N, H, W, C)`` (or ``(H, W, C)``) to ``(N, L, C*kh*kw)`` (or ``(L, C*kh*kw)``), the
    transpose of torch's ``(N, C*kh*kw, L)`` in its last two axes (see the module docstring).

    >>> Unfold(2, stride=2)(jnp.zeros((3, 4, 6, 5))).shape
    (3, 6, 20)
    """

    torch_channel_axis = {4: 1, 3: 0}
    torch_patch_axis = {3: 1, 2: 0}

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        dilation: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        stride: int | Sequence[int] = 1,
    ):
        self.kernel_size = ntuple("kernel_size", kernel_size, 2)
        self.dilation = ntuple("dilation", dilation, 2)
        self.padding = ntuple("padding", padding, 2, minimum=0)
        self.stride = ntuple("stride", stride, 2)

    def __call__(self, x: ArrayLike) -> jax.Array:
        return unfold(jnp.asarray(x), self.kernel_size, self.dilation, self.padding, self.stride)


class Fold(nnx.Module):
    """``torch.nn.Fold``: sum sliding blocks back into an ``output_size`` image, the adjoint of
    :class:`Unfold` (overlaps add up, taps in the padding are dropped).

    ``(N, L, C*kh*kw)`` (or ``(L, C*kh*kw)``) to ``(N, H, W, C)`` (or ``(H, W, C)``);
    ``torch_channel_axis`` describes the image output, ``torch_patch_axis`` the input.

    >>> Fold((4, 6), 2, stride=2)(jnp.zeros((3, 6, 20))).shape
    (3, 4, 6, 5)
    """

    torch_channel_axis = {4: 1, 3: 0}
    torch_patch_axis = {3: 1, 2: 0}

    def __init__(
        self,
        output_size: int | Sequence[int],
        kernel_size: int | Sequence[int],
        dilation: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        stride: int | Sequence[int] = 1,
    ):
        self.output_size = ntuple("output_size", output_size, 2)
        self.kernel_size = ntuple("kernel_size", kernel_size, 2)
        self.dilation = ntuple("dilation", dilation, 2)
        self.padding = ntuple("padding", padding, 2, minimum=0)
        self.stride = ntuple("stride", stride, 2)

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x)
        return fold(x, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)
