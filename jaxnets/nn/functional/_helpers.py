"""torch's ``clamp(min=)`` gradient, and NNX modules as pure functions."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

if TYPE_CHECKING:
    from flax import nnx

__all__ = ["clamp_min", "abstract", "apply_pure"]


def clamp_min(x: ArrayLike, min: float = 0.0) -> jax.Array:  # noqa: A002 - torch's keyword
    """``x.clamp(min=min)`` with torch's gradient: 1 where ``x >= min`` (ties included), else 0.

    ``jax.nn.relu`` has gradient 0 at 0 and ``jnp.maximum`` splits ties 0.5/0.5; torch's clamp
    passes the gradient through at the boundary, so the MLP port needs this form to match it.

    Args:
      x: an array of any shape.
      min: the lower bound.

    Returns:
      The clamped array, the shape and dtype of ``x``.

    >>> x = jnp.asarray([-1.0, 0.0, 2.0], jnp.float32)
    >>> clamp_min(x).tolist(), jax.grad(lambda v: jnp.sum(clamp_min(v)))(x).tolist()
    ([0.0, 0.0, 2.0], [0.0, 1.0, 1.0])
    """
    x = jnp.asarray(x)
    return jnp.where(x >= min, x, jnp.asarray(min, x.dtype))


@functools.cache
def abstract(module_type: type[nnx.Module]) -> tuple[nnx.GraphDef, dict[str, Any]]:
    """The graph definition and parameter shapes of ``module_type(rngs=...)``, traced once.

    Nothing is allocated: the module is built under ``nnx.eval_shape``. The graph definition is
    what ``nnx.merge`` needs to turn a pure parameter dict back into the module.

    Args:
      module_type: an NNX module class whose constructor takes ``rngs`` (and defaults otherwise).

    Returns:
      ``(graphdef, params)`` with ``params`` a pure dict of ``jax.ShapeDtypeStruct``.

    >>> from flax import nnx
    >>> from jaxnets.nn import Linear
    >>> class Tiny(nnx.Module):
    ...     def __init__(self, rngs):
    ...         self.fc = Linear(3, 2, rngs=rngs)
    ...     def __call__(self, x):
    ...         return self.fc(x)
    >>> jax.tree.map(lambda leaf: leaf.shape, abstract(Tiny)[1])
    {'fc': {'bias': (2,), 'kernel': (3, 2)}}
    >>> fc = {"kernel": jnp.ones((3, 2), jnp.float32), "bias": jnp.zeros(2, jnp.float32)}
    >>> params = {"fc": fc}
    >>> apply_pure(Tiny, params, jnp.ones((1, 3), jnp.float32)).tolist()
    [[3.0, 3.0]]
    """
    # Imported here: clamp_min's users (the raw-tensor MLP) need no Flax.
    from flax import nnx

    graphdef, state = nnx.split(nnx.eval_shape(lambda: module_type(rngs=nnx.Rngs(0))))
    return graphdef, nnx.to_pure_dict(state)


def apply_pure(module_type: type[nnx.Module], params: dict[str, Any], *args: Any) -> Any:
    """Call ``module_type`` with a pure parameter dict: the functional form of an NNX module.

    Args:
      module_type: the NNX module class (constructor takes ``rngs``).
      params: a pure dict shaped like ``abstract(module_type)[1]``.
      *args: the module's call arguments.

    Returns:
      Whatever the module returns.
    """
    from flax import nnx

    return nnx.merge(abstract(module_type)[0], params)(*args)
