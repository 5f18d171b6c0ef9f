"""The float64 ensemble of the float32 rule: starts perturbed at float32's rounding level.

A float32 result is right when it is the exact result for inputs and parameters perturbed at
float32's unit roundoff (backward stability). :func:`perturbed` gives ``members`` copies of a
pytree whose floating leaves are multiplied by ``1 + u r``, ``u = 2**-24`` and ``r`` uniform in
``[-1, 1]``, stacked on a new leading axis; the float64 runs from them (vmapped in a port check,
one after another for a built-in experiment) measure how far a correct float32 result may lie
from the float64 run, which ``parity.compare`` adds to the float32 bound. Integer leaves (class
labels, random keys) are repeated unchanged. JAX only: no torch here.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["UNIT_ROUNDOFF", "MEMBERS", "perturbed", "member"]

UNIT_ROUNDOFF = 2.0**-24  # float32's, relative
MEMBERS = 8  # a kink within rounding reach flips in about half the members: 8 miss one 1 in 256


def _perturb_leaf(leaf: Any, key: jax.Array, members: int, scale: float) -> Any:
    try:
        array = jnp.asarray(leaf)
    except TypeError:  # not an array (a string, an object): the same in every member
        return leaf
    if jnp.issubdtype(array.dtype, jnp.floating):
        noise = jax.random.uniform(key, (members, *array.shape), array.dtype, -1.0, 1.0)
        return array[None] * (1 + scale * noise)
    if jax.dtypes.issubdtype(array.dtype, jax.dtypes.prng_key):
        return jnp.stack([array] * members)
    return jnp.broadcast_to(array[None], (members, *array.shape))


def perturbed(
    tree: Any, key: jax.Array, members: int = MEMBERS, *, scale: float = UNIT_ROUNDOFF
) -> Any:
    """``tree`` stacked ``members`` times on a new leading axis, floating leaves each perturbed
    by relative noise of at most ``scale``.

    >>> import numpy as np
    >>> out = perturbed({"w": jnp.ones(3, jnp.float64), "y": jnp.arange(3)}, jax.random.key(0))
    >>> out["w"].shape, out["y"].shape
    ((8, 3), (8, 3))
    >>> bool(np.all(np.abs(np.asarray(out["w"]) - 1) <= 2.0**-24))
    True
    """
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, max(len(leaves), 1))
    out = [_perturb_leaf(leaf, k, members, scale) for leaf, k in zip(leaves, keys, strict=False)]
    return jax.tree.unflatten(treedef, out)


def member(tree: Any, index: int) -> Any:
    """Member ``index`` of a stacked tree (the leading axis removed)."""
    return jax.tree.map(lambda leaf: leaf[index], tree)
