"""Convolution in channels-last/spatial-first layouts, formulated per backend for speed, exact.

On GPU (and any non-CPU backend) ``conv2d`` is ``lax.conv_general_dilated``, which XLA hands to
cuDNN. On CPU it is im2col: the receptive fields are gathered by strided slicing into a patch
matrix ``(N*Ho*Wo, kh*kw*C)`` and the convolution is one matrix product with the HWIO kernel
reshaped to ``(kh*kw*C, O)`` (no transpose: HWIO is already in the patch's row order). XLA's own
CPU convolutions are slow in the backward pass and slower still inside ``lax.scan``; the products
im2col leaves go to XLA's fast CPU matmul kernels, and the gradient of slicing is padding, which
XLA fuses into the sum over taps, so the backward pass needs no convolution either. Measured on a
2-core CPU, a whole training step of the tutorial ``Net`` (batch 64, inside ``lax.scan``, median
of interleaved runs) took 95 ms with XLA's convolution and 46 ms with im2col; at batch 1, 14 and
12 ms. A channel-major patch matrix ``(kh*kw*C, N*Ho*Wo)`` was tried and measured 5-10% slower
in the whole step.

It is the same sum of products in another order, so values and gradients equal
``lax.conv_general_dilated``'s up to rounding (float64: within 1e-12 relative), and it is plain
``lax`` all the way down: ``jvp``, ``vmap`` and higher derivatives work as usual.

:func:`conv_nd` serves every spatial rank: a 1-D convolution is a 2-D one of height 1 (so it
gets im2col on CPU too) and a 3-D one is XLA's convolution on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["conv2d", "conv2d_im2col", "conv2d_xla", "conv_nd", "conv_xla"]

# Above this the patch matrix (taps times the input) costs more memory than speed is worth;
# such convolutions keep XLA's own kernel.
_MAX_PATCH_BYTES = 2**30


def conv2d_xla(
    x: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    groups: int,
) -> jax.Array:
    """``lax.conv_general_dilated`` on NHWC ``x`` with an HWIO ``kernel``: the reference form.

    Args:
      x: ``(N, H, W, C)`` input.
      kernel: ``(kh, kw, C // groups, O)`` filters.
      strides: ``(sh, sw)``.
      padding: ``((top, bottom), (left, right))`` zero padding.
      dilation: ``(dh, dw)`` kernel dilation.
      groups: ``feature_group_count``.

    Returns:
      ``(N, Ho, Wo, O)``.

    >>> x, k = jnp.ones((1, 4, 4, 1), jnp.float32), jnp.ones((3, 3, 1, 1), jnp.float32)
    >>> conv2d_xla(x, k, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)[..., 0].tolist()
    [[[9.0, 9.0], [9.0, 9.0]]]
    """
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=tuple(strides),
        padding=[tuple(p) for p in padding],
        rhs_dilation=tuple(dilation),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups,
    )


def conv_xla(
    x: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    groups: int,
) -> jax.Array:
    """``lax.conv_general_dilated`` for any spatial rank, channels-last and spatial-first.

    Args:
      x: ``(N, *spatial, C)`` input, 1 to 3 spatial axes.
      kernel: ``(*k, C // groups, O)`` filters.
      strides: one per spatial axis.
      padding: ``(low, high)`` zero padding per spatial axis.
      dilation: kernel dilation per spatial axis.
      groups: ``feature_group_count``.

    Returns:
      ``(N, *out, O)``.

    >>> x, k = jnp.ones((1, 3, 4, 4, 1), jnp.float32), jnp.ones((2, 2, 2, 1, 1), jnp.float32)
    >>> conv_xla(x, k, (1, 1, 1), [(0, 0)] * 3, (1, 1, 1), 1).shape
    (1, 2, 3, 3, 1)
    """
    spatial = "DHW"[3 - (x.ndim - 2) :]
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=tuple(strides),
        padding=[tuple(p) for p in padding],
        rhs_dilation=tuple(dilation),
        dimension_numbers=(f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"),
        feature_group_count=groups,
    )


def _output_size(size: int, taps: int, stride: int, dilation: int) -> int:
    return (size - dilation * (taps - 1) - 1) // stride + 1


def conv2d_im2col(
    x: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    groups: int,
) -> jax.Array:
    """The convolution as strided slices and one (grouped) matrix product.

    Same contract as :func:`conv2d_xla`.

    Args:
      x: ``(N, H, W, C)`` input.
      kernel: ``(kh, kw, C // groups, O)`` filters.
      strides: ``(sh, sw)``.
      padding: ``((top, bottom), (left, right))`` zero padding.
      dilation: ``(dh, dw)`` kernel dilation.
      groups: ``C`` and ``O`` must be divisible by it.

    Returns:
      ``(N, Ho, Wo, O)``.

    >>> x = jnp.arange(32, dtype=jnp.float32).reshape(1, 4, 4, 2)
    >>> k = jnp.ones((2, 2, 1, 4), jnp.float32)
    >>> args = ((2, 2), ((1, 0), (1, 0)), (1, 1), 2)
    >>> y = conv2d_im2col(x, k, *args)
    >>> y.shape, bool(jnp.allclose(y, conv2d_xla(x, k, *args)))
    ((1, 2, 2, 4), True)
    """
    kh, kw, group_in, out = kernel.shape
    (sh, sw), (dh, dw) = strides, dilation
    x = lax.pad(
        x, jnp.zeros((), x.dtype), [(0, 0, 0), (*padding[0], 0), (*padding[1], 0), (0, 0, 0)]
    )
    n, height, width, channels = x.shape
    ho = _output_size(height, kh, sh, dh)
    wo = _output_size(width, kw, sw, dw)
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel {kernel.shape[:2]} (dilated) does not fit input {x.shape[1:3]}")
    taps = [
        lax.slice(
            x,
            (0, i * dh, j * dw, 0),
            (n, i * dh + (ho - 1) * sh + 1, j * dw + (wo - 1) * sw + 1, channels),
            (1, sh, sw, 1),
        )
        for i in range(kh)
        for j in range(kw)
    ]
    pixels, window = n * ho * wo, kh * kw
    if groups == 1:
        # (pixels, taps * C) @ (taps * C, O): the HWIO kernel is already in this row order.
        patches = jnp.concatenate(taps, axis=-1).reshape(pixels, window * channels)
        y = patches @ kernel.reshape(window * channels, out)
        return y.reshape(n, ho, wo, out)
    patches = jnp.stack(taps, axis=3).reshape(pixels, window, groups, group_in)
    weights = kernel.reshape(window, group_in, groups, out // groups)
    # One product per group (a batch dimension), contracting taps and the group's channels.
    y = lax.dot_general(patches, weights, (((1, 3), (0, 1)), ((2,), (2,))))
    return jnp.transpose(y, (1, 0, 2)).reshape(n, ho, wo, out)


def _patch_bytes(x: jax.Array, kernel: jax.Array, strides: Sequence[int]) -> int:
    kh, kw = kernel.shape[:2]
    n, h, w, c = x.shape
    return kh * kw * c * n * (h // strides[0] + 1) * (w // strides[1] + 1) * x.dtype.itemsize


def conv2d(
    x: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int] = (1, 1),
    padding: Sequence[tuple[int, int]] = ((0, 0), (0, 0)),
    dilation: Sequence[int] = (1, 1),
    groups: int = 1,
) -> jax.Array:
    """NHWC x HWIO convolution, im2col on CPU and XLA's convolution elsewhere.

    The choice is made when the caller is traced, from ``jax.default_backend()``: a function
    jitted for the default device gets the form that is fast there. Inputs too large for a
    patch matrix (over 1 GiB of patches) keep XLA's convolution on CPU too.

    Args:
      x: ``(N, H, W, C)`` input.
      kernel: ``(kh, kw, C // groups, O)`` filters.
      strides: ``(sh, sw)``.
      padding: ``((top, bottom), (left, right))`` zero padding.
      dilation: ``(dh, dw)`` kernel dilation.
      groups: ``feature_group_count``; ``C`` and ``O`` must be divisible by it.

    Returns:
      ``(N, Ho, Wo, O)``.

    >>> x, k = jnp.ones((2, 3, 3, 1), jnp.float32), jnp.ones((3, 3, 1, 5), jnp.float32)
    >>> y = conv2d(x, k, padding=((1, 1), (1, 1)))
    >>> y.shape, y[0, :, :, 0].tolist()
    ((2, 3, 3, 5), [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]])
    """
    if jax.default_backend() == "cpu" and _patch_bytes(x, kernel, strides) <= _MAX_PATCH_BYTES:
        return conv2d_im2col(x, kernel, strides, padding, dilation, groups)
    return conv2d_xla(x, kernel, strides, padding, dilation, groups)


def conv_nd(
    x: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    groups: int,
) -> jax.Array:
    """Channels-last convolution of 1 to 3 spatial axes, each rank in its fastest form.

    1-D runs as :func:`conv2d` over a height-1 image, 2-D is :func:`conv2d` (both im2col on
    CPU), 3-D is :func:`conv_xla`.

    Args:
      x: ``(N, *spatial, C)`` input.
      kernel: ``(*k, C // groups, O)`` filters.
      strides: one per spatial axis.
      padding: ``(low, high)`` zero padding per spatial axis.
      dilation: kernel dilation per spatial axis.
      groups: ``feature_group_count``.

    Returns:
      ``(N, *out, O)``.

    >>> x, k = jnp.ones((2, 5, 1), jnp.float32), jnp.ones((3, 1, 2), jnp.float32)
    >>> conv_nd(x, k, (1,), [(1, 1)], (1,), 1)[0, :, 0].tolist()
    [2.0, 3.0, 3.0, 3.0, 2.0]
    """
    rank = x.ndim - 2
    if rank == 1:
        y = conv2d(
            x[:, None], kernel[None], (1, *strides), [(0, 0), *padding], (1, *dilation), groups
        )
        return y[:, 0]
    if rank == 2:
        return conv2d(x, kernel, strides, padding, dilation, groups)
    return conv_xla(x, kernel, strides, padding, dilation, groups)
