"""``MaxUnpool1d/2d/3d`` on channels-last input, thin over
:mod:`jaxnets.nn.functional.unpooling`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import jax
from flax import nnx
from jax.typing import ArrayLike

from jaxnets.nn.functional import unpooling as F

__all__ = ["MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d"]


class _MaxUnpoolNd(nnx.Module):
    _function: ClassVar
    torch_channel_axis: ClassVar[dict[int, int]]

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
    ):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def __call__(
        self,
        input: ArrayLike,  # noqa: A002 - torch's name
        indices: ArrayLike,
        output_size: Sequence[int] | None = None,
    ) -> jax.Array:
        return type(self)._function(
            input, indices, self.kernel_size, self.stride, self.padding, output_size
        )


class MaxUnpool1d(_MaxUnpoolNd):
    """``torch.nn.MaxUnpool1d`` on ``(N, L, C)`` / ``(L, C)``: see ``max_unpool1d``."""

    torch_channel_axis = {3: 1, 2: 0}
    _function = F.max_unpool1d


class MaxUnpool2d(_MaxUnpoolNd):
    """``torch.nn.MaxUnpool2d`` on ``(N, H, W, C)`` / ``(H, W, C)``: see ``max_unpool2d``."""

    torch_channel_axis = {4: 1, 3: 0}
    _function = F.max_unpool2d


class MaxUnpool3d(_MaxUnpoolNd):
    """``torch.nn.MaxUnpool3d`` on ``(N, D, H, W, C)`` / ``(D, H, W, C)``."""

    torch_channel_axis = {5: 1, 4: 0}
    _function = F.max_unpool3d
