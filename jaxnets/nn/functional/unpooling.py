"""``torch.nn.functional.max_unpool1d/2d/3d``: the partial inverse of a max pool."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnets.nn._args import ntuple

__all__ = ["max_unpool1d", "max_unpool2d", "max_unpool3d"]


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _scatter(values: jax.Array, indices: jax.Array, plane: int) -> jax.Array:
    """``values`` ``(N, C, K)`` written at ``indices`` of zero planes ``(N, C, plane)``.

    An index outside the plane is dropped (torch raises on concrete input; under jit it can't).
    Several values may share an index (overlapping pool windows that chose the same maximum);
    the gradient is torch's: every value gets the gradient at its index (a gather), where a
    scatter's own transpose would give it to one of them.
    """
    batch, channels = values.shape[:2]
    rows = jnp.broadcast_to(jnp.arange(batch).reshape(batch, 1, 1), indices.shape)
    cols = jnp.broadcast_to(jnp.arange(channels).reshape(1, channels, 1), indices.shape)
    zeros = jnp.zeros((batch, channels, plane), values.dtype)
    return zeros.at[rows, cols, indices].set(values, mode="drop")


def _scatter_fwd(values: jax.Array, indices: jax.Array, plane: int):
    return _scatter(values, indices, plane), indices


def _scatter_bwd(plane: int, indices: jax.Array, grad: jax.Array):
    del plane
    gathered = jnp.take_along_axis(grad, indices, axis=-1, mode="fill", fill_value=0)
    return gathered, None


_scatter.defvjp(_scatter_fwd, _scatter_bwd)


def _max_unpool(
    x: jax.Array,
    indices: jax.Array,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None,
    padding: int | Sequence[int],
    output_size: Sequence[int] | None,
    layout: str,
    n: int,
) -> jax.Array:
    name = f"max_unpool{n}d"
    if x.shape != indices.shape:
        raise ValueError(f"{name}: input {x.shape} and indices {indices.shape} differ in shape")
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"{name}: indices must be integers, got {indices.dtype}")
    if x.ndim not in (n + 1, n + 2):
        raise ValueError(f"{name}: expected a {n + 1}-D or {n + 2}-D input, got {x.shape}")
    kernel = ntuple("kernel_size", kernel_size, n)
    strides = ntuple("stride", kernel if stride is None else stride, n)
    pads = ntuple("padding", padding, n, minimum=0)
    unbatched = x.ndim == n + 1
    if unbatched:
        x, indices = x[None], indices[None]
    if layout == "channels_last":
        x, indices = jnp.moveaxis(x, -1, 1), jnp.moveaxis(indices, -1, 1)
    elif layout != "channels_first":
        raise ValueError(f"layout must be 'channels_last' or 'channels_first', got {layout!r}")
    spatial = x.shape[2:]
    default = tuple(
        (size - 1) * s - 2 * p + k
        for size, k, s, p in zip(spatial, kernel, strides, pads, strict=True)
    )
    if output_size is None:
        out = default
    else:
        out = tuple(int(v) for v in output_size)[-n:]
        for size, low, s in zip(out, default, strides, strict=True):
            if not low - s < size < low + s:
                raise ValueError(
                    f"{name}: output_size {tuple(output_size)} is not between "
                    f"{tuple(d - s + 1 for d, s in zip(default, strides, strict=True))} and "
                    f"{tuple(d + s - 1 for d, s in zip(default, strides, strict=True))}"
                )
    batch, channels = x.shape[:2]
    plane = 1
    for size in out:
        plane *= size
    y = _scatter(x.reshape(batch, channels, -1), indices.reshape(batch, channels, -1), plane)
    y = y.reshape(batch, channels, *out)
    if layout == "channels_last":
        y = jnp.moveaxis(y, 1, -1)
    return y[0] if unbatched else y


def _doc(n: int) -> str:
    shape = {1: "(N, L, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}[n]
    return (
        f"``torch.nn.functional.max_unpool{n}d``: each value of ``input`` {shape} (or unbatched) "
        f"written at its flat position ``indices`` (as ``max_pool{n}d(return_indices=True)`` "
        f"gives them) of a zero output; gradients flow back from those positions. "
        f"``output_size`` (spatial, or with the leading axes) picks among the sizes the pool "
        f"could have come from."
    )


def max_unpool1d(
    input: ArrayLike,  # noqa: A002 - torch's name
    indices: ArrayLike,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    output_size: Sequence[int] | None = None,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    x, i = jnp.asarray(input), jnp.asarray(indices)
    return _max_unpool(x, i, kernel_size, stride, padding, output_size, layout, 1)


def max_unpool2d(
    input: ArrayLike,  # noqa: A002
    indices: ArrayLike,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    output_size: Sequence[int] | None = None,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    x, i = jnp.asarray(input), jnp.asarray(indices)
    return _max_unpool(x, i, kernel_size, stride, padding, output_size, layout, 2)


def max_unpool3d(
    input: ArrayLike,  # noqa: A002
    indices: ArrayLike,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    output_size: Sequence[int] | None = None,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    x, i = jnp.asarray(input), jnp.asarray(indices)
    return _max_unpool(x, i, kernel_size, stride, padding, output_size, layout, 3)


max_unpool1d.__doc__, max_unpool2d.__doc__, max_unpool3d.__doc__ = _doc(1), _doc(2), _doc(3)
