"""Argument checks shared by the batch plan and the host loader, with torch's messages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jax
import numpy as np


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _check_batch_size(batch_size: Any, name: str = "batch_size") -> int:
    # torch's BatchSampler message, so code that matches on it keeps working.
    if not _is_int(batch_size) or batch_size <= 0:
        raise ValueError(f"{name} should be a positive integer value, but got {name}={batch_size}")
    return int(batch_size)


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} should be a boolean value, but got {name}={value!r}")
    return bool(value)


def _check_count(value: Any, name: str) -> int:
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {name}={value!r}")
    return int(value)


def _check_seed(seed: Any) -> int:
    if not _is_int(seed):
        raise TypeError(f"seed must be an integer, got seed={seed!r}")
    # Beyond 32 bits jax.random.key(seed) depends on x64 (without it the high bits are lost),
    # and the order must not.
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must lie in [0, 2**32), got seed={seed!r}")
    return int(seed)


def _check_epoch(epoch: Any) -> int:
    if not _is_int(epoch) or not 0 <= epoch < 2**32:
        raise ValueError(f"epoch must be a non-negative integer below 2**32, got epoch={epoch!r}")
    return int(epoch)


def _index_array(values: Any, name: str, n: int | None) -> np.ndarray:
    """``values`` as a 1-D int64 array, each index checked against ``[0, n)`` if ``n`` is known."""
    if isinstance(values, np.ndarray | jax.Array):
        arr = np.asarray(values)
        if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(
                f"{name} must be a 1-D sequence of integer indices, got an array of "
                f"shape {arr.shape} and dtype {arr.dtype}"
            )
        arr = arr.astype(np.int64)
    else:
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise TypeError(f"{name} must be an iterable of integer indices, got {values!r}")
        items = list(values)
        bad = [v for v in items if not _is_int(v)]
        if bad:
            raise TypeError(f"{name} must yield integer indices, got {bad[0]!r}")
        arr = np.asarray(items, dtype=np.int64).reshape(-1)
    if n is not None and arr.size:
        out = arr[(arr < 0) | (arr >= n)]
        if out.size:
            raise ValueError(
                f"{name} index {int(out[0])} is out of range for a dataset of length {n} "
                f"(indices must lie in [0, {n}))"
            )
    return arr
