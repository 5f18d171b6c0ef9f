"""``Dropout`` with torch's scaling, switched by ``model.train()`` / ``model.eval()``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jaxnets.nn._args import probability

__all__ = ["Dropout"]


class Dropout(nnx.Module):
    """``torch.nn.Dropout(p)``: in training mode zero each element with probability ``p`` and
    scale the rest by ``1 / (1 - p)``; in eval mode the identity.

    Training mode is the default (torch modules start in it) and is the attribute
    ``deterministic=False``; ``model.eval()`` sets ``deterministic=True`` and ``model.train()``
    back. The mask is drawn from the ``dropout`` stream of ``rngs`` (given here, or at call time);
    JAX's and torch's random streams differ, so outputs match torch only in eval mode or with
    ``p=0`` (``p=1`` gives zeros, as torch). ``inplace`` is accepted and has no effect.

    >>> drop = Dropout(0.5, rngs=nnx.Rngs(dropout=0))
    >>> y = drop(jnp.ones((1000,), jnp.float32))
    >>> sorted(set(y.tolist()))
    [0.0, 2.0]
    >>> drop.eval()
    >>> drop(jnp.ones((3,), jnp.float32)).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rngs: nnx.Rngs | None = None):
        del inplace
        self.p = probability("dropout", p)
        self.deterministic = False
        self.rngs = nnx.data(None) if rngs is None else rngs.dropout.fork()

    def set_view(self, deterministic: bool | None = None) -> None:
        """``nnx.view(model, deterministic=...)`` support."""
        if deterministic is not None:
            self.deterministic = deterministic

    def __call__(
        self, x: ArrayLike, *, rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None
    ) -> jax.Array:
        """Apply dropout; ``rngs`` (a ``Rngs``, a stream or a key) overrides the layer's own."""
        x = jnp.asarray(x)
        if self.deterministic or self.p == 0.0:
            return x
        if self.p == 1.0:
            return jnp.zeros_like(x)
        source = self.rngs if rngs is None else rngs
        if source is None:
            raise ValueError(
                "Dropout in training mode needs random numbers: build it with "
                "rngs=nnx.Rngs(dropout=...), pass rngs= when calling, or call model.eval()"
            )
        if isinstance(source, nnx.Rngs):
            key = source.dropout()
        elif isinstance(source, nnx.RngStream):
            key = source()
        else:
            key = source
        keep = jax.random.bernoulli(key, 1.0 - self.p, x.shape)
        # torch multiplies by the scaled mask (mask / (1 - p)) rather than dividing x.
        scale = jnp.asarray(1.0 / (1.0 - self.p), x.dtype)
        return x * jnp.where(keep, scale, jnp.zeros((), x.dtype))
