"""2-D convolution in NHWC/HWIO, formulated per backend for speed, exact on every backend.

On GPU (and any non-CPU backend) ``conv2d`` is ``lax.conv_general_dilated``, which XLA hands to
cuDNN. On CPU it is im2col: the receptive fields are gathered by strided slicing into a patch
matrix and the convolution is one matrix product. Measured on a 2-core CPU, the tutorial
``Net``'s two convolutions (batch 64, forward and backward, inside ``lax.scan``) took 78 ms per
step as XLA convolutions and 15 ms as im2col (PyTorch's oneDNN: 11 ms): XLA's CPU backward
convolutions are slow, slower still inside a while loop, while the products im2col produces go to
XLA's fast matmul kernels.

The patch matrix is built channel-major, ``(taps * C, N * Ho * Wo)``, and multiplied so that
every product autodiff derives (the forward, the kernel gradient and the patch gradient) has its
contracting dimension innermost in at least one operand: XLA's CPU backend sends those to its
fast matmul kernels, while a product contracting the outer dimension of both operands (what the
pixel-major ``(N*Ho*Wo, taps*C) @ (taps*C, O)`` form produces for the kernel gradient) runs 2-4x
slower. The gradient of slicing is padding, which XLA fuses into the sum over taps, so the
backward pass needs no convolution either.

It is the same sum of products in another order, so values and gradients equal
``lax.conv_general_dilated``'s up to rounding (float64: within 1e-12 relative), and it is plain
``lax`` all the way down: ``jvp``, ``vmap`` and higher derivatives work as usual.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

__all__ = ["conv2d", "conv2d_im2col", "conv2d_xla"]

# Above this the patch matrix (taps times the input) costs more memory than speed is worth;
# such convolutions keep XLA's own kernel.
_MAX_PATCH_BYTES = 512 * 2**20


def conv2d_xla(
    x: jax.Array,
    kernel: jax.Array,
    strides: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    groups: int,
) -> jax.Array:
    """``lax.conv_general_dilated`` on NHWC ``x`` with an HWIO ``kernel``: the reference form."""
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=tuple(strides),
        padding=[tuple(p) for p in padding],
        rhs_dilation=tuple(dilation),
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
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

    Same contract as :func:`conv2d_xla`: ``x`` is ``(N, H, W, C)``, ``kernel`` is
    ``(kh, kw, C // groups, O)``, ``padding`` is ``((top, bottom), (left, right))`` of zeros.
    """
    kh, kw, group_in, out = kernel.shape
    n = x.shape[0]
    group_out = out // groups
    (sh, sw), (dh, dw) = strides, dilation
    # Channel-major so every tap is a run of whole image rows: the slices copy contiguous memory
    # and the matmuls contract over the innermost axis.
    xt = jnp.transpose(x, (3, 0, 1, 2))
    xt = lax.pad(
        xt, jnp.zeros((), x.dtype), [(0, 0, 0), (0, 0, 0), (*padding[0], 0), (*padding[1], 0)]
    )
    ho = _output_size(xt.shape[2], kh, sh, dh)
    wo = _output_size(xt.shape[3], kw, sw, dw)
    if ho < 1 or wo < 1:
        raise ValueError(f"kernel {kernel.shape[:2]} (dilated) does not fit input {x.shape[1:3]}")
    taps = [
        lax.slice(
            xt,
            (0, 0, i * dh, j * dw),
            (xt.shape[0], n, i * dh + (ho - 1) * sh + 1, j * dw + (wo - 1) * sw + 1),
            (1, 1, sh, sw),
        ).reshape(groups, group_in, n * ho * wo)
        for i in range(kh)
        for j in range(kw)
    ]
    # (groups, taps * group_in, N*Ho*Wo), rows ordered (tap, channel) like the kernel below.
    patches = jnp.stack(taps, axis=1).reshape(groups, kh * kw * group_in, n * ho * wo)
    weights = kernel.reshape(kh * kw, group_in, groups, group_out)
    weights = jnp.transpose(weights, (2, 0, 1, 3)).reshape(groups, kh * kw * group_in, group_out)
    # Contract the small kernel over its rows: XLA transposes the tiny kernel, not the patches.
    y = lax.dot_general(weights, patches, (((1,), (1,)), ((0,), (0,))))
    y = y.reshape(out, n, ho, wo)
    return jnp.transpose(y, (1, 2, 3, 0))


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
    patch matrix (over 512 MiB of patches) keep XLA's convolution on CPU too.

    Args:
      x: ``(N, H, W, C)`` input.
      kernel: ``(kh, kw, C // groups, O)`` filters.
      strides: ``(sh, sw)``.
      padding: ``((top, bottom), (left, right))`` zero padding.
      dilation: ``(dh, dw)`` kernel dilation.
      groups: ``feature_group_count``; ``C`` and ``O`` must be divisible by it.

    Returns:
      ``(N, Ho, Wo, O)``.
    """
    if jax.default_backend() == "cpu" and _patch_bytes(x, kernel, strides) <= _MAX_PATCH_BYTES:
        return conv2d_im2col(x, kernel, strides, padding, dilation, groups)
    return conv2d_xla(x, kernel, strides, padding, dilation, groups)
