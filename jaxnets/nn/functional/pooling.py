"""torch's pooling functions on channels-last (or torch's channels-first) arrays.

``max_pool1d/2d/3d``, ``avg_pool1d/2d/3d``, ``adaptive_avg_pool1d/2d/3d``,
``adaptive_max_pool1d/2d/3d``, ``lp_pool1d/2d/3d`` and ``fractional_max_pool2d/3d``: torch's
names, positional order, keywords and defaults, plus ``layout="channels_last"``
(``(N, *spatial, C)``, unbatched ``(*spatial, C)``) or ``"channels_first"`` (torch's own).

Output sizes follow torch's ``pooling_output_shape``: ``floor`` (or ``ceil`` with ``ceil_mode``)
of ``(size + 2*padding - dilation*(kernel-1) - 1) / stride + 1``, where in ``ceil_mode`` a last
window that would start in the right padding is dropped.

Max pools give each window's gradient to the element torch picks: scanning the window in
row-major order, the first maximum, or the last NaN if there is one. Their indices
(``return_indices=True``) are torch's: the flat position ``h * W + w`` (``(d * H + h) * W + w``
in 3-D, ``l`` in 1-D) of that element within its ``(sample, channel)`` plane of the unpadded
input, which does not depend on the layout; they come back in the output's layout, as int64
with ``jax_enable_x64`` and int32 without.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jaxnets.nn import random
from jaxnets.nn.functional.convolution import expand, from_channels_last, to_channels_last

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "fractional_max_pool2d",
    "fractional_max_pool3d",
]

IntOrSeq = int | Sequence[int]


def _index_dtype() -> jnp.dtype:
    # torch's int64 where JAX has it (x64 on), int32 otherwise.
    return jax.dtypes.canonicalize_dtype(jnp.int64)


def _output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _geometry(
    function: str,
    spatial: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    ceil_mode: bool,
) -> tuple[tuple[int, ...], list[tuple[int, int]]]:
    """Output size and the ``(low, high)`` padding per spatial axis ``reduce_window`` needs."""
    sizes, pads = [], []
    for size, k, s, p, d in zip(spatial, kernel, stride, padding, dilation, strict=True):
        out = _output_size(size, k, s, p, d, ceil_mode)
        if out < 1:
            raise ValueError(
                f"{function}: output size is too small for input {tuple(spatial)} with kernel "
                f"{tuple(kernel)}, stride {tuple(stride)}, padding {tuple(padding)}, dilation "
                f"{tuple(dilation)}"
            )
        # ceil_mode's last window may overhang the right padding: pad it too.
        overhang = (out - 1) * s + d * (k - 1) + 1 - (size + 2 * p)
        sizes.append(out)
        pads.append((p, p + max(overhang, 0)))
    return tuple(sizes), pads


def check_padding(function: str, padding: Sequence[int], reach: Sequence[int]) -> None:
    """torch's rule: padding at most half of the (dilated) kernel on each axis."""
    for p, r in zip(padding, reach, strict=True):
        if 2 * p > r:
            raise ValueError(
                f"{function}: pad should be at most half of effective kernel size, got "
                f"padding={tuple(padding)} for kernel reach {tuple(reach)}"
            )


def _window_args(
    function: str,
    n: int,
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None,
    padding: IntOrSeq,
    dilation: IntOrSeq,
) -> tuple[tuple[int, ...], ...]:
    kernel = expand("kernel_size", kernel_size, n, function=function)
    # torch takes a missing or empty stride as the kernel size.
    empty = stride is None or (not isinstance(stride, int) and len(stride) == 0)
    strides = kernel if empty else expand("stride", stride, n, function=function)
    pads = expand("padding", padding, n, minimum=0, function=function)
    dilations = expand("dilation", dilation, n, function=function)
    return kernel, strides, pads, dilations


def _lowest(dtype: jnp.dtype) -> np.ndarray:
    # A NumPy init value: reduce_window recognises max (and its gradient) only from a
    # concrete identity, which a jnp constant under jit is not.
    lowest = -np.inf if jnp.issubdtype(dtype, jnp.floating) else jnp.iinfo(dtype).min
    return np.asarray(lowest, dtype)


def _select_max(
    taps: jax.Array, index: ArrayLike, valid: np.ndarray | None
) -> tuple[jax.Array, jax.Array]:
    """Torch's pick among ``K`` candidates ``taps`` ``(K, ...)``: the first maximum in tap order,
    or the last NaN; ``valid`` (broadcastable, static) excludes padding.

    The value is a one-hot selection, so the gradient reaches only the chosen tap, as torch's.
    Returns ``(values, index of the chosen tap taken from index)``.
    """
    count = taps.shape[0]
    hit = taps == jnp.max(taps, axis=0, keepdims=True)
    if valid is not None:
        hit = hit & valid
    # One argmax over scores: a NaN scores K + k (the last NaN wins, and beats any number), a
    # maximum K - 1 - k (the first wins), the rest -1.
    order = np.arange(count).reshape((count,) + (1,) * (taps.ndim - 1))
    score = jnp.where(hit, count - 1 - order, -1)
    if jnp.issubdtype(taps.dtype, jnp.floating):
        score = jnp.where(jnp.isnan(taps), count + order, score)
    choice = jnp.argmax(score, axis=0)
    chosen = order == choice[None]
    values = jnp.sum(jnp.where(chosen, taps, jnp.zeros((), taps.dtype)), axis=0)
    index = jnp.broadcast_to(jnp.asarray(index), taps.shape)
    indices = jnp.sum(jnp.where(chosen, index, jnp.zeros((), index.dtype)), axis=0)
    return values, indices.astype(_index_dtype())


def _plane_strides(spatial: Sequence[int]) -> list[int]:
    """Row-major strides of a ``(sample, channel)`` plane: torch's flat index weights."""
    strides = [1] * len(spatial)
    for axis in range(len(spatial) - 2, -1, -1):
        strides[axis] = strides[axis + 1] * spatial[axis + 1]
    return strides


def max_pool_forward(
    x: jax.Array,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    ceil_mode: bool,
    return_indices: bool,
    *,
    function: str = "max_pool",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Max pooling of batched channels-last ``x`` ``(N, *spatial, C)``; padding is ``-inf``.

    Undilated without indices it is ``lax.reduce_window`` (whose gradient goes to the first
    maximum, as torch's). Otherwise the windows are gathered as taps (one gather, whose
    gradient is one scatter-add: cheaper to compile than a slice per tap) and the maximum is a
    one-hot selection (JAX has no gradient for a dilated ``reduce_window`` max).
    """
    spatial = x.shape[1:-1]
    reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    check_padding(function, padding, reach)
    out, pads = _geometry(function, spatial, kernel, stride, padding, dilation, ceil_mode)
    lowest = _lowest(x.dtype)
    if not return_indices and all(d == 1 for d in dilation):
        return lax.reduce_window(
            x, lowest, lax.max, (1, *kernel, 1), (1, *stride, 1), [(0, 0), *pads, (0, 0)]
        )
    # Each tap's input coordinates per axis, clipped into the input; padding is masked to -inf.
    n = len(spatial)
    coords, valid = [], np.ones((), bool)
    for axis, (size, k, s, p, d, o) in enumerate(
        zip(spatial, kernel, stride, padding, dilation, out, strict=True)
    ):
        table = np.arange(o)[None, :] * s - p + np.arange(k)[:, None] * d  # (k, o)
        shape = [1] * (2 * n + 2)
        shape[axis], shape[n + 1 + axis] = k, o
        valid = valid & ((table >= 0) & (table < size)).reshape(shape)
        coords.append(table.reshape(shape))
    clipped = [np.clip(c, 0, size - 1) for c, size in zip(coords, spatial, strict=True)]
    taps = _gather_windows(x, clipped)
    window = math.prod(kernel)
    valid = np.broadcast_to(valid, (*kernel, 1, *out, 1)).reshape(window, 1, *out, 1)
    taps = jnp.where(valid, taps, lowest)
    index = np.broadcast_to(_flat_index_np(coords, spatial), (*kernel, 1, *out, 1))
    values, indices = _select_max(taps, index.reshape(window, 1, *out, 1), valid)
    return (values, indices) if return_indices else values


def _max_pool(
    n: int,
    input: ArrayLike,  # noqa: A002 - torch's name
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None,
    padding: IntOrSeq,
    dilation: IntOrSeq,
    ceil_mode: bool,
    return_indices: bool,
    layout: str,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    function = f"max_pool{n}d"
    x, unbatched = to_channels_last(function, input, n, layout)
    kernel, strides, pads, dilations = _window_args(
        function, n, kernel_size, stride, padding, dilation
    )
    result = max_pool_forward(
        x, kernel, strides, pads, dilations, ceil_mode, return_indices, function=function
    )
    if return_indices:
        return tuple(from_channels_last(r, unbatched, layout) for r in result)
    return from_channels_last(result, unbatched, layout)


def max_pool1d(
    input: ArrayLike,  # noqa: A002 - torch's name
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: IntOrSeq = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    layout: str = "channels_last",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.max_pool1d`` on ``(N, L, C)`` (or ``(L, C)``); see
    :func:`max_pool2d`.

    >>> max_pool1d(jnp.asarray([[[1.0], [3.0], [2.0], [0.0]]]), 2, return_indices=True)[1]
    ... # doctest: +ELLIPSIS
    Array([[[1],
            [2]]], dtype=int...)
    """
    return _max_pool(
        1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, layout
    )


def max_pool2d(
    input: ArrayLike,  # noqa: A002 - torch's name
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: IntOrSeq = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    layout: str = "channels_last",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.max_pool2d`` on channels-last input; padding never wins.

    Args:
      input: ``(N, H, W, C)`` or unbatched ``(H, W, C)`` (torch's layout with
        ``layout="channels_first"``).
      kernel_size, stride, padding, dilation: an int or one per axis; ``stride`` defaults to
        ``kernel_size``; ``padding`` at most half the dilated kernel.
      ceil_mode: round the output size up (windows starting in the right padding dropped).
      return_indices: also return torch's flat indices ``h * W + w`` of the maxima.
      layout: ``"channels_last"`` or ``"channels_first"``; outputs are in the same one.

    Returns:
      ``(N, Ho, Wo, C)``, and the indices of the same shape if ``return_indices``.

    >>> x = jnp.arange(16.0).reshape(1, 4, 4, 1)
    >>> max_pool2d(x, 2)[0, ..., 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """
    return _max_pool(
        2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, layout
    )


def max_pool3d(
    input: ArrayLike,  # noqa: A002 - torch's name
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: IntOrSeq = 0,
    dilation: IntOrSeq = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    layout: str = "channels_last",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.max_pool3d`` on ``(N, D, H, W, C)`` (or unbatched); see
    :func:`max_pool2d`.

    >>> max_pool3d(jnp.ones((1, 4, 4, 4, 2)), 2, padding=1).shape
    (1, 3, 3, 3, 2)
    """
    return _max_pool(
        3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, layout
    )


def avg_pool_forward(
    x: jax.Array,
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
    *,
    function: str = "avg_pool",
) -> jax.Array:
    """Average pooling of batched channels-last ``x`` with torch's divisors.

    Each window's sum is divided by ``divisor_override`` if given; else, with
    ``count_include_pad``, by the window's size clipped to the padded input (a ``ceil_mode``
    overhang does not count); else by the number of real input elements it covers.
    """
    n = x.ndim - 2
    spatial = x.shape[1:-1]
    check_padding(function, padding, kernel)
    out, pads = _geometry(function, spatial, kernel, stride, padding, (1,) * n, ceil_mode)
    sums = lax.reduce_window(
        x,
        np.zeros((), x.dtype),  # concrete, so reduce_window knows the sum and its gradient
        lax.add,
        (1, *kernel, 1),
        (1, *stride, 1),
        [(0, 0), *pads, (0, 0)],
    )
    if divisor_override is not None:
        divisor = np.full(out, float(divisor_override))
    else:
        divisor = np.ones(())
        for size, o, k, s, p in zip(spatial, out, kernel, stride, padding, strict=True):
            start = np.arange(o) * s - p
            end = np.minimum(start + k, size + p)
            if count_include_pad:
                lengths = end - start
            else:
                lengths = np.minimum(end, size) - np.maximum(start, 0)
            divisor = np.multiply.outer(divisor, lengths)
    return sums / jnp.asarray(divisor, x.dtype).reshape(1, *out, 1)


def check_divisor(function: str, divisor_override: int | None) -> int | None:
    """torch's rule: ``divisor_override`` is ``None`` or a non-zero int (negative allowed)."""
    if divisor_override is None:
        return None
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, int):
        raise TypeError(f"{function}: divisor_override must be an int, got {divisor_override!r}")
    if divisor_override == 0:
        raise ValueError(f"{function}: divisor must be not zero")
    return divisor_override


def _avg_pool(
    n: int,
    input: ArrayLike,  # noqa: A002 - torch's name
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None,
    padding: IntOrSeq,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
    layout: str,
) -> jax.Array:
    function = f"avg_pool{n}d"
    x, unbatched = to_channels_last(function, input, n, layout)
    kernel, strides, pads, _ = _window_args(function, n, kernel_size, stride, padding, 1)
    y = avg_pool_forward(
        x,
        kernel,
        strides,
        pads,
        ceil_mode,
        count_include_pad,
        check_divisor(function, divisor_override),
        function=function,
    )
    return from_channels_last(y, unbatched, layout)


def avg_pool1d(
    input: ArrayLike,  # noqa: A002 - torch's name
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: IntOrSeq = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.avg_pool1d`` on ``(N, L, C)`` (or ``(L, C)``); see
    :func:`avg_pool2d` (torch's 1-D form has no ``divisor_override``).

    >>> avg_pool1d(jnp.ones((1, 5, 1)), 2, padding=1)[0, :, 0].tolist()
    [0.5, 1.0, 1.0]
    """
    return _avg_pool(
        1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, layout
    )


def avg_pool2d(
    input: ArrayLike,  # noqa: A002 - torch's name
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: IntOrSeq = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.avg_pool2d`` on channels-last input, with torch's divisors.

    Each window's sum is divided by ``divisor_override`` if given (any non-zero int, as torch);
    else, with ``count_include_pad`` (the default), by the window's size clipped to the padded
    input (a ``ceil_mode`` overhang does not count); else by the number of real input elements
    it covers.

    Args:
      input: ``(N, H, W, C)`` or unbatched ``(H, W, C)`` (torch's layout with
        ``layout="channels_first"``).
      kernel_size, stride, padding: an int or one per axis; ``stride`` defaults to the kernel.
      ceil_mode, count_include_pad, divisor_override: as torch.
      layout: ``"channels_last"`` or ``"channels_first"``.

    Returns:
      ``(N, Ho, Wo, C)``.

    >>> avg_pool2d(jnp.ones((1, 3, 3, 1)), 2, padding=1, count_include_pad=False)[0, ..., 0]
    Array([[1., 1.],
           [1., 1.]], dtype=float...)
    """
    return _avg_pool(
        2,
        input,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
        layout,
    )


def avg_pool3d(
    input: ArrayLike,  # noqa: A002 - torch's name
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    padding: IntOrSeq = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.avg_pool3d`` on ``(N, D, H, W, C)`` (or unbatched); see
    :func:`avg_pool2d`.

    >>> avg_pool3d(jnp.ones((2, 4, 4, 4, 3)), 2).shape
    (2, 2, 2, 2, 3)
    """
    return _avg_pool(
        3,
        input,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
        layout,
    )


def _adaptive_sizes(
    function: str, output_size: int | None | Sequence[int | None], spatial: Sequence[int]
) -> tuple[int, ...]:
    n = len(spatial)
    if output_size is None or isinstance(output_size, int):
        sizes: tuple = (output_size,) * n
    else:
        sizes = tuple(output_size)
        if len(sizes) == 1:
            sizes = sizes * n
    if len(sizes) != n:
        raise ValueError(f"{function}: output_size must be an int or {n} ints, got {output_size!r}")
    result = []
    for size, o in zip(spatial, sizes, strict=True):
        if o is None:
            o = size
        if isinstance(o, bool) or not isinstance(o, int) or o < 0:
            raise ValueError(
                f"{function}: output_size must be non-negative ints or None, got {output_size!r}"
            )
        if o > 0 and size == 0:
            raise ValueError(f"{function}: input has an empty spatial axis, shape {spatial}")
        result.append(o)
    return tuple(result)


def _bins(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """torch's adaptive bins ``[floor(i*size/out), ceil((i+1)*size/out))``: starts, ends."""
    starts = (np.arange(out) * size) // out
    # Integer ceil: float division could round (i+1)*size/out across an integer.
    ends = -(-(np.arange(1, out + 1) * size) // out)
    return starts, ends


def adaptive_avg_forward(x: jax.Array, out: Sequence[int]) -> jax.Array:
    """Adaptive average pooling of batched channels-last ``x`` to spatial size ``out``.

    One axis at a time, the sums over each bin are a product with a 0/1 membership matrix
    (exact additions; ``HIGHEST`` keeps float32 from TF32/bf16 passes), then the whole is
    divided by the bins' sizes.
    """
    counts = np.ones(())
    for axis, o in enumerate(out, start=1):
        size = x.shape[axis]
        starts, ends = _bins(size, o)
        members = (np.arange(size) >= starts[:, None]) & (np.arange(size) < ends[:, None])
        summed = jnp.tensordot(
            jnp.asarray(members, x.dtype), x, axes=([1], [axis]), precision=lax.Precision.HIGHEST
        )
        x = jnp.moveaxis(summed, 0, axis)
        counts = np.multiply.outer(counts, ends - starts)
    return x / jnp.asarray(counts, x.dtype).reshape(1, *out, 1)


def _adaptive_avg(
    n: int,
    input: ArrayLike,  # noqa: A002 - torch's name
    output_size: int | None | Sequence[int | None],
    layout: str,
) -> jax.Array:
    function = f"adaptive_avg_pool{n}d"
    x, unbatched = to_channels_last(function, input, n, layout)
    out = _adaptive_sizes(function, output_size, x.shape[1:-1])
    return from_channels_last(adaptive_avg_forward(x, out), unbatched, layout)


def adaptive_avg_pool1d(
    input: ArrayLike,  # noqa: A002 - torch's name
    output_size: int | Sequence[int],
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.adaptive_avg_pool1d`` on ``(N, L, C)`` (or ``(L, C)``); see
    :func:`adaptive_avg_pool2d`.

    >>> adaptive_avg_pool1d(jnp.arange(10.0).reshape(1, 10, 1), 4)[0, :, 0].tolist()
    [1.0, 3.0, 6.0, 8.0]
    """
    return _adaptive_avg(1, input, output_size, layout)


def adaptive_avg_pool2d(
    input: ArrayLike,  # noqa: A002 - torch's name
    output_size: int | None | Sequence[int | None],
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.adaptive_avg_pool2d``: average over torch's adaptive bins.

    Output cell ``i`` of an axis of length ``size`` averages ``[floor(i*size/out),
    ceil((i+1)*size/out))``; bins may overlap. ``output_size`` is an int or one per axis, whose
    ``None`` entries keep the input's size.

    >>> adaptive_avg_pool2d(jnp.ones((2, 5, 3, 4)), (1, None)).shape
    (2, 1, 3, 4)
    """
    return _adaptive_avg(2, input, output_size, layout)


def adaptive_avg_pool3d(
    input: ArrayLike,  # noqa: A002 - torch's name
    output_size: int | None | Sequence[int | None],
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.adaptive_avg_pool3d`` on ``(N, D, H, W, C)`` (or unbatched); see
    :func:`adaptive_avg_pool2d`.

    >>> adaptive_avg_pool3d(jnp.ones((1, 5, 4, 3, 2)), (2, None, 1)).shape
    (1, 2, 4, 1, 2)
    """
    return _adaptive_avg(3, input, output_size, layout)


def _gather_windows(x: jax.Array, coords: Sequence[ArrayLike]) -> jax.Array:
    """``x[n, coords[0], ..., coords[-1], c]`` for index arrays broadcastable to
    ``(*window, N, *out, C)``, as ``(prod(window), N, *out, C)`` taps."""
    n = x.ndim - 2
    batch, channels = x.shape[0], x.shape[-1]
    ones = (1,) * n
    samples = np.arange(batch).reshape(ones + (batch,) + ones + (1,))
    planes = np.arange(channels).reshape(ones + (1,) + ones + (channels,))
    taps = x[(samples, *coords, planes)]
    return taps.reshape(math.prod(taps.shape[:n]), *taps.shape[n:])


def _flat_index_np(coords: Sequence[np.ndarray], spatial: Sequence[int]) -> np.ndarray:
    flat = np.zeros((), np.int64)
    for coord, weight in zip(coords, _plane_strides(spatial), strict=True):
        flat = flat + coord.astype(np.int64) * weight
    return flat


def _flat_index(coords: Sequence[ArrayLike], spatial: Sequence[int]) -> jax.Array:
    flat = 0
    for coord, weight in zip(coords, _plane_strides(spatial), strict=True):
        flat = flat + jnp.asarray(coord).astype(_index_dtype()) * weight
    return flat


def adaptive_max_forward(
    x: jax.Array, out: Sequence[int], return_indices: bool
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Adaptive max pooling of batched channels-last ``x`` to spatial size ``out``.

    Each bin's elements are gathered as taps, a bin shorter than the longest repeating its last
    element (a repeat never beats the original, so torch's pick is unchanged).
    """
    n = x.ndim - 2
    spatial = x.shape[1:-1]
    coords = []
    for axis, (size, o) in enumerate(zip(spatial, out, strict=True)):
        starts, ends = _bins(size, o)
        longest = int(np.max(ends - starts, initial=1))
        table = np.minimum(starts[:, None] + np.arange(longest), ends[:, None] - 1)
        # (o, longest) -> window axis `axis`, output axis n + 1 + axis of (*window, N, *out, C).
        shape = [1] * (2 * n + 2)
        shape[axis], shape[n + 1 + axis] = longest, o
        coords.append(np.moveaxis(table, 0, 1).reshape(shape))
    taps = _gather_windows(x, coords)
    index = _flat_index(coords, spatial)
    values, indices = _select_max(taps, index.reshape(taps.shape[:1] + index.shape[n:]), None)
    return (values, indices) if return_indices else values


def _adaptive_max(
    n: int,
    input: ArrayLike,  # noqa: A002 - torch's name
    output_size: int | None | Sequence[int | None],
    return_indices: bool,
    layout: str,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    function = f"adaptive_max_pool{n}d"
    x, unbatched = to_channels_last(function, input, n, layout)
    out = _adaptive_sizes(function, output_size, x.shape[1:-1])
    result = adaptive_max_forward(x, out, return_indices)
    if return_indices:
        return tuple(from_channels_last(r, unbatched, layout) for r in result)
    return from_channels_last(result, unbatched, layout)


def adaptive_max_pool1d(
    input: ArrayLike,  # noqa: A002 - torch's name
    output_size: int | Sequence[int],
    return_indices: bool = False,
    *,
    layout: str = "channels_last",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.adaptive_max_pool1d`` on ``(N, L, C)`` (or ``(L, C)``); see
    :func:`adaptive_max_pool2d`.

    >>> adaptive_max_pool1d(jnp.asarray([[[1.0], [3.0], [2.0]]]), 2)[0, :, 0].tolist()
    [3.0, 3.0]
    """
    return _adaptive_max(1, input, output_size, return_indices, layout)


def adaptive_max_pool2d(
    input: ArrayLike,  # noqa: A002 - torch's name
    output_size: int | None | Sequence[int | None],
    return_indices: bool = False,
    *,
    layout: str = "channels_last",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.adaptive_max_pool2d``: the maximum over torch's adaptive bins
    (see :func:`adaptive_avg_pool2d`), the gradient to torch's pick (first maximum, or last
    NaN), and with ``return_indices`` torch's flat indices ``h * W + w`` too.

    >>> y, i = adaptive_max_pool2d(jnp.arange(12.0).reshape(1, 3, 4, 1), 1, True)
    >>> y.tolist(), i.tolist()
    ([[[[11.0]]]], [[[[11]]]])
    """
    return _adaptive_max(2, input, output_size, return_indices, layout)


def adaptive_max_pool3d(
    input: ArrayLike,  # noqa: A002 - torch's name
    output_size: int | None | Sequence[int | None],
    return_indices: bool = False,
    *,
    layout: str = "channels_last",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.adaptive_max_pool3d`` on ``(N, D, H, W, C)`` (or unbatched); see
    :func:`adaptive_max_pool2d`.

    >>> adaptive_max_pool3d(jnp.ones((1, 5, 4, 3, 2)), (2, 2, None)).shape
    (1, 2, 2, 3, 2)
    """
    return _adaptive_max(3, input, output_size, return_indices, layout)


def lp_pool_forward(
    x: jax.Array,
    norm_type: float,
    kernel: Sequence[int],
    stride: Sequence[int],
    ceil_mode: bool,
    *,
    function: str = "lp_pool",
) -> jax.Array:
    """torch's power-average pooling, op for op so the gradients agree (0 where a window's sum
    of powers is 0): ``(sign(f) * relu(|f|) * prod(kernel)) ** (1 / p)`` with ``f`` the average
    pool of ``x ** p``; ``p = ±inf`` is the max pool of ``|x|`` (negated for ``-inf``)."""
    n = x.ndim - 2
    if math.isinf(norm_type):
        sign = 1 if norm_type > 0 else -1
        pooled = max_pool_forward(
            sign * jnp.abs(x),
            kernel,
            stride,
            (0,) * n,
            (1,) * n,
            ceil_mode,
            False,
            function=function,
        )
        return sign * pooled
    powered = x**norm_type if isinstance(norm_type, int) else x ** jnp.asarray(norm_type, x.dtype)
    f = avg_pool_forward(
        powered, kernel, stride, (0,) * n, ceil_mode, True, None, function=function
    )
    # torch's relu passes the gradient where its input is not <= 0, NaN included.
    zero = jnp.zeros((), f.dtype)
    magnitude = jnp.abs(f)
    relu = jnp.where(magnitude <= zero, zero, magnitude)
    scaled = jnp.sign(f) * relu * jnp.asarray(math.prod(kernel), x.dtype)
    return scaled ** jnp.asarray(1.0 / norm_type, x.dtype)


def _lp_pool(
    n: int,
    input: ArrayLike,  # noqa: A002 - torch's name
    norm_type: float,
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None,
    ceil_mode: bool,
    layout: str,
) -> jax.Array:
    function = f"lp_pool{n}d"
    if isinstance(norm_type, bool) or not isinstance(norm_type, int | float):
        raise TypeError(f"{function}: norm_type must be a number, got {norm_type!r}")
    x, unbatched = to_channels_last(function, input, n, layout)
    kernel, strides, _, _ = _window_args(function, n, kernel_size, stride, 0, 1)
    y = lp_pool_forward(x, norm_type, kernel, strides, ceil_mode, function=function)
    return from_channels_last(y, unbatched, layout)


def lp_pool1d(
    input: ArrayLike,  # noqa: A002 - torch's name
    norm_type: float,
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    ceil_mode: bool = False,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.lp_pool1d`` on ``(N, L, C)`` (or ``(L, C)``); see
    :func:`lp_pool2d`.

    >>> lp_pool1d(jnp.asarray([[[3.0], [4.0]]]), 2, 2)[0, :, 0].tolist()
    [5.0]
    """
    return _lp_pool(1, input, norm_type, kernel_size, stride, ceil_mode, layout)


def lp_pool2d(
    input: ArrayLike,  # noqa: A002 - torch's name
    norm_type: float,
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    ceil_mode: bool = False,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.lp_pool2d``: ``(sum over the window of x**p) ** (1/p)``.

    Computed as torch does, from the average pool (no padding, ``count_include_pad``) times the
    kernel's size, so a ``ceil_mode`` window clipped by the input is scaled as torch scales it,
    negative sums of odd powers give NaN as torch's, and a window whose sum is 0 has gradient 0.
    ``norm_type`` ``inf`` is the max pool of ``|x|``.

    Args:
      input: ``(N, H, W, C)`` or unbatched ``(H, W, C)`` (torch's with
        ``layout="channels_first"``).
      norm_type: the power ``p``.
      kernel_size, stride: an int or one per axis; ``stride`` defaults to the kernel.
      ceil_mode: round the output size up.
      layout: ``"channels_last"`` or ``"channels_first"``.

    Returns:
      ``(N, Ho, Wo, C)``.

    >>> lp_pool2d(jnp.full((1, 2, 2, 1), 2.0), 2, 2)[0, ..., 0].tolist()
    [[4.0]]
    """
    return _lp_pool(2, input, norm_type, kernel_size, stride, ceil_mode, layout)


def lp_pool3d(
    input: ArrayLike,  # noqa: A002 - torch's name
    norm_type: float,
    kernel_size: IntOrSeq,
    stride: IntOrSeq | None = None,
    ceil_mode: bool = False,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.lp_pool3d`` on ``(N, D, H, W, C)`` (or unbatched); see
    :func:`lp_pool2d`.

    >>> lp_pool3d(jnp.ones((1, 2, 2, 2, 1)), 1, 2).ravel().tolist()
    [8.0]
    """
    return _lp_pool(3, input, norm_type, kernel_size, stride, ceil_mode, layout)


def fractional_output_size(
    function: str,
    spatial: Sequence[int],
    kernel: Sequence[int],
    output_size: IntOrSeq | None,
    output_ratio: float | Sequence[float] | None,
) -> tuple[int, ...]:
    """torch's output size: ``output_size``, or ``int(size * ratio)`` per axis."""
    n = len(spatial)
    if output_size is None and output_ratio is None:
        raise ValueError(f"{function} requires specifying either an output_size or an output_ratio")
    if output_size is not None:
        out = expand("output_size", output_size, n, function=function)
    else:
        ratios = (
            (output_ratio,) * n if isinstance(output_ratio, int | float) else tuple(output_ratio)
        )
        if len(ratios) == 1:
            ratios = ratios * n
        if len(ratios) != n:
            raise ValueError(
                f"{function}: output_ratio must be a number or {n} numbers, got {output_ratio!r}"
            )
        out = tuple(int(size * ratio) for size, ratio in zip(spatial, ratios, strict=True))
    for size, o, k in zip(spatial, out, kernel, strict=True):
        if o < 1 or o + k - 1 > size:
            raise ValueError(
                f"{function}: kernel {tuple(kernel)} with output size {out} does not fit input "
                f"{tuple(spatial)} (need output + kernel - 1 <= input on every axis)"
            )
    return out


def _intervals(sample: jax.Array, size: int, out: int, k: int) -> jax.Array:
    """torch's ``generate_intervals`` in the samples' dtype: window starts ``(N, C, out)``.

    ``floor((i + u) * alpha) - floor(u * alpha)`` with ``alpha = (size - k) / (out - 1)``, the
    last window ending at the input's end.
    """
    dtype = sample.dtype
    last = jnp.full(sample.shape + (1,), size - k, jnp.int32)
    if out == 1:
        return last
    alpha = np.asarray(size - k, dtype) / np.asarray(out - 1, dtype)
    steps = np.arange(out - 1).astype(dtype).reshape(1, 1, out - 1)
    u = sample[..., None]
    alpha = jnp.asarray(alpha, dtype)
    starts = ((jnp.asarray(steps) + u) * alpha).astype(jnp.int32) - (u * alpha).astype(jnp.int32)
    return jnp.concatenate([starts, last], axis=-1)


# torch's sample order per spatial axis: 2-D draws (W, H), 3-D (T, H, W).
_SAMPLE_AXIS = {2: (1, 0), 3: (0, 1, 2)}


def fractional_max_forward(
    x: jax.Array,
    kernel: Sequence[int],
    out: Sequence[int],
    samples: jax.Array,
    return_indices: bool,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Fractional max pooling of batched channels-last ``x`` with ``samples`` ``(N, C, n)``.

    Window starts come from torch's interval formula per ``(sample, channel)`` plane; the
    windows are gathered as taps and reduced as the other max pools (first maximum, last NaN).
    """
    n = x.ndim - 2
    spatial = x.shape[1:-1]
    coords = []
    for axis, (size, o, k) in enumerate(zip(spatial, out, kernel, strict=True)):
        starts = _intervals(samples[..., _SAMPLE_AXIS[n][axis]], size, o, k)  # (N, C, o)
        # -> (*window, N, *out, C) with this axis' window and output axes filled.
        starts = jnp.moveaxis(starts, 1, -1)  # (N, o, C)
        shape = [1] * (2 * n + 2)
        shape[n], shape[n + 1 + axis], shape[-1] = starts.shape
        window = [1] * (2 * n + 2)
        window[axis] = k
        coords.append(starts.reshape(shape) + np.arange(k, dtype=np.int32).reshape(window))
    taps = _gather_windows(x, coords)
    index = _flat_index(coords, spatial)
    index = jnp.broadcast_to(index, (*kernel, *taps.shape[1:])).reshape(taps.shape)
    values, indices = _select_max(taps, index, None)
    return (values, indices) if return_indices else values


def _fractional(
    n: int,
    input: ArrayLike,  # noqa: A002 - torch's name
    kernel_size: IntOrSeq,
    output_size: IntOrSeq | None,
    output_ratio: float | Sequence[float] | None,
    return_indices: bool,
    _random_samples: ArrayLike | None,
    key: jax.Array | None,
    layout: str,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    function = f"fractional_max_pool{n}d"
    x, unbatched = to_channels_last(function, input, n, layout)
    kernel = expand("kernel_size", kernel_size, n, function=function)
    out = fractional_output_size(function, x.shape[1:-1], kernel, output_size, output_ratio)
    expected = (x.shape[0], x.shape[-1], n)
    if _random_samples is None:
        if key is None and random.active() is None:
            raise ValueError(
                f"{function} needs random numbers: pass key= (a jax.random key) or "
                f"_random_samples= (uniform [0, 1) draws of shape (N, C, {n}))"
            )
        # torch's own layout (N, C, n): a replayed torch.rand fits it as it is.
        samples = random.rand(expected, x.dtype, rngs=key, stream="dropout", layout="torch")
    else:
        samples = jnp.asarray(_random_samples).astype(x.dtype)
        # torch reads the first N rows and accepts more.
        if samples.ndim != 3 or samples.shape[0] < expected[0] or samples.shape[1:] != expected[1:]:
            raise ValueError(
                f"{function}: _random_samples must have shape (N', C, {n}) with N' >= N, "
                f"(N, C) = {expected[:2]}, got {samples.shape}"
            )
        samples = samples[: expected[0]]
    result = fractional_max_forward(x, kernel, out, samples, return_indices)
    if return_indices:
        return tuple(from_channels_last(r, unbatched, layout) for r in result)
    return from_channels_last(result, unbatched, layout)


def fractional_max_pool2d(
    input: ArrayLike,  # noqa: A002 - torch's name
    kernel_size: IntOrSeq,
    output_size: IntOrSeq | None = None,
    output_ratio: float | Sequence[float] | None = None,
    return_indices: bool = False,
    _random_samples: ArrayLike | None = None,
    *,
    key: jax.Array | None = None,
    layout: str = "channels_last",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.fractional_max_pool2d``: max over pseudo-random windows.

    Each ``(sample, channel)`` plane has its own window starts, torch's ``generate_intervals``
    of one uniform draw per axis, computed in the input's dtype as torch computes them; with
    the same ``_random_samples`` the result is torch's exactly. torch draws them from its global
    generator; here they come from ``key`` (``jax.random.uniform(key, (N, C, 2), dtype)``)
    unless ``_random_samples`` is given.

    Args:
      input: ``(N, H, W, C)`` or unbatched ``(H, W, C)`` (torch's with
        ``layout="channels_first"``).
      kernel_size: an int or a pair.
      output_size: an int or a pair; or else
      output_ratio: a number or a pair, the output being ``int(size * ratio)``.
      return_indices: also return torch's flat indices ``h * W + w``.
      _random_samples: ``(N, C, 2)`` uniform ``[0, 1)`` draws in torch's layout and order
        (``[..., 0]`` for the width, ``[..., 1]`` for the height), as torch's argument.
      key: the random key used when ``_random_samples`` is not given.
      layout: ``"channels_last"`` or ``"channels_first"``.

    Returns:
      ``(N, Ho, Wo, C)``, and the indices if ``return_indices``.

    >>> x = jnp.arange(25.0).reshape(1, 5, 5, 1)
    >>> fractional_max_pool2d(x, 2, 2, _random_samples=jnp.zeros((1, 1, 2)))[0, ..., 0]
    Array([[ 6.,  9.],
           [21., 24.]], dtype=float...)
    """
    return _fractional(
        2,
        input,
        kernel_size,
        output_size,
        output_ratio,
        return_indices,
        _random_samples,
        key,
        layout,
    )


def fractional_max_pool3d(
    input: ArrayLike,  # noqa: A002 - torch's name
    kernel_size: IntOrSeq,
    output_size: IntOrSeq | None = None,
    output_ratio: float | Sequence[float] | None = None,
    return_indices: bool = False,
    _random_samples: ArrayLike | None = None,
    *,
    key: jax.Array | None = None,
    layout: str = "channels_last",
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """``torch.nn.functional.fractional_max_pool3d`` on ``(N, D, H, W, C)`` (or unbatched);
    see :func:`fractional_max_pool2d`. ``_random_samples`` is ``(N, C, 3)``, in torch's order
    (depth, height, width).

    >>> x = jnp.ones((2, 5, 6, 7, 3))
    >>> fractional_max_pool3d(x, 2, output_ratio=0.5, key=jax.random.key(0)).shape
    (2, 2, 3, 3, 3)
    """
    return _fractional(
        3,
        input,
        kernel_size,
        output_size,
        output_ratio,
        return_indices,
        _random_samples,
        key,
        layout,
    )
