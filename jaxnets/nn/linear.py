"""``Linear`` with a ``(in, out)`` kernel, ``Bilinear`` and ``Identity``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from jaxnets.nn._args import positive
from jaxnets.nn.functional.dense import bilinear, matmul_bias
from jaxnets.nn.init import bias_bound, kaiming_uniform, torch_uniform
from jaxnets.nn.state import TorchEntry, same, transposed

__all__ = ["Identity", "Linear", "Bilinear"]


class Identity(nnx.Module):
    """``torch.nn.Identity``: returns its input; constructor arguments are accepted and ignored."""

    def __init__(self, *args: Any, **kwargs: Any):
        del args, kwargs

    def __call__(self, input: ArrayLike) -> jax.Array:  # noqa: A002 - torch's keyword
        return jnp.asarray(input)


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

    def __call__(self, input: ArrayLike) -> jax.Array:  # noqa: A002 - torch's keyword
        x = jnp.asarray(input)
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(
                f"Linear expected input with last dimension {self.in_features}, got shape {x.shape}"
            )
        return matmul_bias(x, self.kernel[...], None if self.bias is None else self.bias[...])


class Bilinear(nnx.Module):
    """``torch.nn.Bilinear``: ``y = x1^T A x2 + b`` per output feature.

    ``weight`` is torch's ``(out_features, in1_features, in2_features)``, ``bias``
    ``(out_features,)``, both ``U(±1/sqrt(in1_features))`` as torch. Inputs ``(..., in1)`` and
    ``(..., in2)`` with the same leading shape (or unbatched vectors).

    >>> layer = Bilinear(2, 3, 4, rngs=nnx.Rngs(0))
    >>> layer(jnp.ones((5, 2), jnp.float32), jnp.ones((5, 3), jnp.float32)).shape
    (5, 4)
    """

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.in1_features = positive("in1_features", in1_features)
        self.in2_features = positive("in2_features", in2_features)
        self.out_features = positive("out_features", out_features)
        init = torch_uniform(bias_bound(in1_features))
        shape = (out_features, in1_features, in2_features)
        self.weight = nnx.Param(init(rngs.params(), shape, dtype))
        self.bias = nnx.Param(init(rngs.params(), (out_features,), dtype)) if bias else None

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight`` and ``bias`` as is."""
        entries = {"weight": same("weight")}
        if self.bias is not None:
            entries["bias"] = same("bias")
        return entries

    def __call__(self, input1: ArrayLike, input2: ArrayLike) -> jax.Array:
        bias = None if self.bias is None else self.bias[...]
        return bilinear(input1, input2, self.weight[...], bias)
