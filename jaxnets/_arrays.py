"""Host data onto the device without compiling anything."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def to_device(value: Any) -> jax.Array:
    """``jnp.asarray(value)``, but a NumPy array is copied with ``jax.device_put``.

    ``jnp.asarray`` lifts a NumPy array through a small compiled program per shape and dtype
    (``jit(stage)``); a process that converts many arrays, such as ``python -m parity`` with its
    parameters, gradients and data, would compile dozens of them. ``device_put`` only copies.

    >>> to_device(np.arange(3.0, dtype=np.float32)).tolist()
    [0.0, 1.0, 2.0]
    >>> to_device(2).dtype == jnp.asarray(2).dtype
    True
    """
    if isinstance(value, np.ndarray) and not isinstance(value, np.ma.MaskedArray):
        return jax.device_put(value)
    return jnp.asarray(value)
