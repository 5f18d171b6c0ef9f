"""``Linear`` with a ``(in, out)`` kernel, and ``Identity``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from jaxnets.nn._args import positive
from jaxnets.nn.init import bias_bound, kaiming_uniform, torch_uniform
from jaxnets.nn.state import TorchEntry, same, transposed

__all__ = ["Identity", "Linear"]


class Identity(nnx.Module):
    """``torch.nn.Identity``: returns its input; constructor arguments are accepted and ignored."""

    def __init__(self, *args: Any, **kwargs: Any):
        del args, kwargs

    def __call__(self, x: ArrayLike) -> jax.Array:
        return jnp.asarray(x)


class Linear(nnx.Module):
    """``torch.nn.Linear`` with a ``(in_features, out_features)`` kernel: ``y = x @ kernel + bias``.

    Maps ``(..., in_features)`` inputs to ``(..., out_features)``. torch's ``weight`` ``(out, in)``
    is ``kernel.T``; the bias is the same. Initialised as torch: both ``U(±1/sqrt(in_features))``.

    Args:
      in_features: size of the last input axis.
      out_features: size of the last output axis.
      bias: learn an additive bias.
      dtype: parameter dtype.
      rngs: NNX random streams (``params`` is used).

    >>> layer = Linear(3, 2, rngs=nnx.Rngs(0))
    >>> layer(jnp.ones((4, 3), jnp.float32)).shape
    (4, 2)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.in_features = positive("in_features", in_features)
        self.out_features = positive("out_features", out_features)
        self.kernel = nnx.Param(
            kaiming_uniform(in_features)(rngs.params(), (in_features, out_features), dtype)
        )
        self.bias = (
            nnx.Param(torch_uniform(bias_bound(in_features))(rngs.params(), (out_features,), dtype))
            if bias
            else None
        )

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight`` (out, in) <-> ``kernel`` (in, out); ``bias`` as is."""
        entries = {"weight": transposed("kernel", (1, 0))}
        if self.bias is not None:
            entries["bias"] = same("bias")
        return entries

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(
                f"Linear expected input with last dimension {self.in_features}, got shape {x.shape}"
            )
        y = x @ self.kernel[...]
        # Explicit broadcast: the library stays valid under jax_numpy_rank_promotion="raise".
        return y if self.bias is None else y + jnp.broadcast_to(self.bias[...], y.shape)
