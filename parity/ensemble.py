"""The float64 ensemble of the float32 rule: starts perturbed at float32's rounding level.

A float32 result is right when it is the exact result for inputs and parameters perturbed at
float32's unit roundoff (backward stability). :func:`perturbed` stacks ``members + 1`` copies of a
pytree on a new leading axis: copy 0 as it is (the centre), the others with their floating leaves
multiplied by ``1 + u r``, ``u = 2**-24`` and ``r`` uniform in ``[-1, 1]``. The float64 runs of the
port from them (vmapped into one program) measure how far the result moves under such perturbations:
the spread of the perturbed runs around the centre, which ``parity.compare`` adds to the float32
bound. The spread is measured around the port's own unperturbed run, not torch's, so a port that is
wrong does not widen its own bound. Integer leaves (class labels, random keys) are repeated
unchanged. JAX only: no torch here.
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
        factors = jnp.concatenate([jnp.ones((1, *array.shape), array.dtype), 1 + scale * noise])
        return array[None] * factors
    if jax.dtypes.issubdtype(array.dtype, jax.dtypes.prng_key):
        return jnp.stack([array] * (members + 1))
    return jnp.broadcast_to(array[None], (members + 1, *array.shape))


def perturbed(
    tree: Any, key: jax.Array, members: int = MEMBERS, *, scale: float = UNIT_ROUNDOFF
) -> Any:
    """``tree`` stacked ``members + 1`` times on a new leading axis: copy 0 unchanged, the
    others with floating leaves perturbed by relative noise of at most ``scale``.

    >>> import numpy as np
    >>> out = perturbed({"w": jnp.ones(3, jnp.float64), "y": jnp.arange(3)}, jax.random.key(0))
    >>> out["w"].shape, out["y"].shape
    ((9, 3), (9, 3))
    >>> w = np.asarray(out["w"])
    >>> bool(np.all(w[0] == 1)), bool(np.all(np.abs(w[1:] - 1) <= 2.0**-24))
    (True, True)
    """
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(key, max(len(leaves), 1))
    out = [_perturb_leaf(leaf, k, members, scale) for leaf, k in zip(leaves, keys, strict=False)]
    return jax.tree.unflatten(treedef, out)


def member(tree: Any, index: int) -> Any:
    """Member ``index`` of a stacked tree (the leading axis removed)."""
    return jax.tree.map(lambda leaf: leaf[index], tree)
