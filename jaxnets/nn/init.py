"""torch's default initialisers, as ``nnx.Initializer`` functions.

torch initialises Linear and convolution weights with ``kaiming_uniform_(a=sqrt(5))``, which is
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and their biases with the same bound. Flax's defaults
(lecun_normal kernels, zero biases) differ, so a port that keeps them trains differently from the
original. The random streams of the two frameworks differ, so only the distributions match.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import DTypeLike

__all__ = ["torch_uniform", "kaiming_uniform", "bias_bound", "standard_normal"]


def torch_uniform(bound: float) -> nnx.Initializer:
    """Initialiser drawing ``U(-bound, bound)``, torch's ``init.uniform_(t, -bound, bound)``.

    Args:
      bound: half-width of the interval.

    Returns:
      ``init(key, shape, dtype=float32) -> array of shape``.

    >>> w = torch_uniform(0.5)(jax.random.key(0), (3, 4), jnp.float32)
    >>> w.shape, bool(jnp.all(jnp.abs(w) <= 0.5))
    ((3, 4), True)
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, tuple(shape), dtype, minval=-bound, maxval=bound)

    return init


def kaiming_uniform(fan_in: int, a: float = math.sqrt(5.0)) -> nnx.Initializer:
    """torch's ``init.kaiming_uniform_(w, a)`` for a weight with ``fan_in`` inputs.

    ``bound = gain * sqrt(3 / fan_in)`` with ``gain = sqrt(2 / (1 + a**2))``; torch's default
    ``a = sqrt(5)`` gives ``bound = 1 / sqrt(fan_in)``. The fan is passed explicitly because JAX
    layouts put it on different axes than torch's.

    Args:
      fan_in: inputs per output unit.
      a: the negative slope torch's formula takes.

    Returns:
      ``init(key, shape, dtype=float32) -> array of shape``.

    >>> w = kaiming_uniform(4)(jax.random.key(0), (4, 2), jnp.float32)
    >>> w.shape, bool(jnp.all(jnp.abs(w) <= 0.5))
    ((4, 2), True)
    """
    gain = math.sqrt(2.0 / (1.0 + a * a))
    return torch_uniform(gain * math.sqrt(3.0 / fan_in))


def bias_bound(fan_in: int) -> float:
    """torch's bias bound ``1/sqrt(fan_in)`` (0 when the fan is empty).

    Args:
      fan_in: inputs per output unit.

    Returns:
      The bound, a Python float.

    >>> bias_bound(4), bias_bound(0)
    (0.5, 0.0)
    """
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def standard_normal(
    key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32
) -> jax.Array:
    """``N(0, 1)`` draws, torch's ``init.normal_`` default (``nn.Embedding``'s weights).

    >>> standard_normal(jax.random.key(0), (2, 3)).shape
    (2, 3)
    """
    return jax.random.normal(key, tuple(shape), dtype)
