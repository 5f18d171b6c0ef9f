"""Elementwise activations and ``Softmax`` as modules, with torch's formulas and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

__all__ = ["ReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "Softmax"]


class ReLU(nnx.Module):
    """``torch.nn.ReLU``: ``max(x, 0)``, gradient 0 at 0 as torch's. ``inplace`` is accepted and
    has no effect (JAX arrays are immutable)."""

    def __init__(self, inplace: bool = False):
        del inplace

    def __call__(self, x: ArrayLike) -> jax.Array:
        return jax.nn.relu(jnp.asarray(x))


class GELU(nnx.Module):
    """``torch.nn.GELU``: ``x * Phi(x)`` (``approximate='none'``, with erf) or torch's tanh form.

    >>> [round(v, 4) for v in GELU("tanh")(jnp.asarray([0.0, 1.0], jnp.float32)).tolist()]
    [0.0, 0.8412]
    """

    def __init__(self, approximate: str = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def __call__(self, x: ArrayLike) -> jax.Array:
        return jax.nn.gelu(jnp.asarray(x), approximate=self.approximate == "tanh")


class SiLU(nnx.Module):
    """``torch.nn.SiLU``: ``x * sigmoid(x)``; ``inplace`` is accepted and has no effect."""

    def __init__(self, inplace: bool = False):
        del inplace

    def __call__(self, x: ArrayLike) -> jax.Array:
        return jax.nn.silu(jnp.asarray(x))


class Tanh(nnx.Module):
    """``torch.nn.Tanh``."""

    def __call__(self, x: ArrayLike) -> jax.Array:
        return jnp.tanh(jnp.asarray(x))


class Sigmoid(nnx.Module):
    """``torch.nn.Sigmoid``: ``1 / (1 + exp(-x))``."""

    def __call__(self, x: ArrayLike) -> jax.Array:
        return jax.nn.sigmoid(jnp.asarray(x))


class Softmax(nnx.Module):
    """``torch.nn.Softmax(dim)`` over axis ``dim`` of the JAX array.

    ``dim`` names an axis of the array as it is here: on a channels-last ``(N, H, W, C)`` feature
    map torch's ``Softmax(dim=1)`` (over channels of ``(N, C, H, W)``) is ``Softmax(dim=-1)``;
    on ``(N, features)`` the two agree. torch's implicit ``dim=None`` (a deprecated guess from the
    rank) is refused with a ``ValueError`` when called: the guess would pick a different axis
    on channels-last data.

    >>> Softmax(dim=-1)(jnp.zeros((2, 4), jnp.float32)).tolist()[0]
    [0.25, 0.25, 0.25, 0.25]
    """

    def __init__(self, dim: int | None = None):
        self.dim = dim

    def __call__(self, x: ArrayLike) -> jax.Array:
        if self.dim is None:
            raise ValueError("Softmax needs an explicit dim (an axis of the channels-last array)")
        x = jnp.asarray(x)
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"Softmax dim {self.dim} is out of range for shape {x.shape}")
        return jax.nn.softmax(x, axis=self.dim)
