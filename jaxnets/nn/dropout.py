"""torch's dropout layers, switched by ``model.train()`` / ``model.eval()``: ``Dropout``,
``Dropout1d/2d/3d`` (whole channels), ``AlphaDropout`` and ``FeatureAlphaDropout``.

The arithmetic is :mod:`jaxnets.nn.functional.dropout`'s. Training mode is the default (torch
modules start in it) and is the attribute ``deterministic=False``; ``model.eval()`` sets
``deterministic=True``. Masks come from :mod:`jaxnets.nn.random`, from the ``dropout`` stream of
``rngs`` (given at construction, or at call time); JAX's and torch's random streams differ, so
outputs match torch in eval mode, with ``p`` in ``{0, 1}``, or where torch's masks are replayed
(``parity.check_port`` does, so training with dropout on is compared). ``inplace`` is accepted
and has no effect.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jaxnets.nn import random
from jaxnets.nn._args import probability
from jaxnets.nn.functional import stochastic as F

__all__ = [
    "Dropout",
    "Dropout1d",
    "Dropout2d",
    "Dropout3d",
    "AlphaDropout",
    "FeatureAlphaDropout",
]

RngSource = random.RngSource


class _DropoutNd(nnx.Module):
    _function: ClassVar[Any]

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        del inplace
        self.p = probability("dropout", p)
        self.deterministic = False
        self.rngs = nnx.data(None) if rngs is None else rngs.dropout.fork()

    def set_view(self, deterministic: bool | None = None) -> None:
        """``nnx.view(model, deterministic=...)`` support."""
        if deterministic is not None:
            self.deterministic = deterministic

    def __call__(self, input: ArrayLike, *, rngs: RngSource = None) -> jax.Array:  # noqa: A002
        """Apply dropout; ``rngs`` (a ``Rngs``, a stream or a key) overrides the layer's own."""
        x = jnp.asarray(input)
        training = not self.deterministic
        key = self.rngs if rngs is None else rngs
        if training and 0.0 < self.p < 1.0 and key is None and random.active() is None:
            raise ValueError(
                f"{type(self).__name__} in training mode needs random numbers: build it with "
                "rngs=nnx.Rngs(dropout=...), pass rngs= when calling, or call model.eval()"
            )
        return type(self)._function(x, self.p, training, key=key)


class Dropout(_DropoutNd):
    """``torch.nn.Dropout(p)``: in training mode zero each element with probability ``p`` and
    scale the rest by ``1 / (1 - p)``; in eval mode the identity.

    >>> drop = Dropout(0.5, rngs=nnx.Rngs(dropout=0))
    >>> y = drop(jnp.ones((1000,), jnp.float32))
    >>> sorted(set(y.tolist()))
    [0.0, 2.0]
    >>> drop.eval()
    >>> drop(jnp.ones((3,), jnp.float32)).tolist()
    [1.0, 1.0, 1.0]
    """

    _function = F.dropout


class Dropout1d(_DropoutNd):
    """``torch.nn.Dropout1d``: zero whole channels of ``(N, L, C)`` or ``(L, C)``."""

    torch_channel_axis = {3: 1, 2: 0}
    _function = F.dropout1d


class Dropout2d(_DropoutNd):
    """``torch.nn.Dropout2d``: zero whole channels of ``(N, H, W, C)``; a 3-D input is torch's
    ``(N, C, L)`` (here ``(N, L, C)``), as torch's ``dropout2d`` reads it."""

    torch_channel_axis = {4: 1, 3: 1}
    _function = F.dropout2d


class Dropout3d(_DropoutNd):
    """``torch.nn.Dropout3d``: zero whole channels of ``(N, D, H, W, C)`` or ``(D, H, W, C)``."""

    torch_channel_axis = {5: 1, 4: 0}
    _function = F.dropout3d


class AlphaDropout(_DropoutNd):
    """``torch.nn.AlphaDropout``: dropout that keeps a SELU network's mean and variance."""

    _function = F.alpha_dropout


class FeatureAlphaDropout(_DropoutNd):
    """``torch.nn.FeatureAlphaDropout``: alpha dropout of whole channels (channels last)."""

    torch_channel_axis = {3: 1, 4: 1, 5: 1}
    _function = F.feature_alpha_dropout
