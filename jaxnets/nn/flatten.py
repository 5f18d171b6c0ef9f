"""``Flatten`` in torch's channels-first order, so the next ``Linear`` matches torch's."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

__all__ = ["Flatten"]


class Flatten(nnx.Module):
    """``torch.nn.Flatten(start_dim=1, end_dim=-1)`` on channels-last input, in torch's order.

    A channels-last input of rank >= 3, ``(N, *spatial, C)``, is first put in torch's layout
    ``(N, C, *spatial)`` (one transpose), and ``start_dim``/``end_dim`` count torch's axes; so
    ``(N, H, W, C)`` becomes ``(N, C*H*W)`` with entries in torch's ``(C, H, W)`` order and the
    next ``Linear``'s kernel is exactly torch's ``weight.T``, no row permutation. Input of rank
    <= 2 is flattened as is. ``channels_last=False`` flattens the array's own axes for inputs
    that are not feature maps (e.g. ``(N, T, F)`` sequences).

    >>> x = jnp.arange(8.0, dtype=jnp.float32).reshape(1, 2, 2, 2)  # NHWC: channel 0 is even
    >>> Flatten()(x).tolist()
    [[0.0, 2.0, 4.0, 6.0, 1.0, 3.0, 5.0, 7.0]]
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1, *, channels_last: bool = True):
        self.start_dim = start_dim
        self.end_dim = end_dim
        self.channels_last = channels_last

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x)
        if self.channels_last and x.ndim >= 3:
            x = jnp.moveaxis(x, -1, 1)
        rank = max(x.ndim, 1)
        start = self.start_dim + rank if self.start_dim < 0 else self.start_dim
        end = self.end_dim + rank if self.end_dim < 0 else self.end_dim
        if not (0 <= start < rank and 0 <= end < rank) or start > end:
            raise ValueError(
                f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} do not fit "
                f"an input of shape {x.shape}"
            )
        return x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])
