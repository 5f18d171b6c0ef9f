"""torch's ``conv1d/2d/3d`` and ``conv_transpose1d/2d/3d`` on channels-last (or torch's) arrays.

The public functions take torch's weights, ``(O, I/groups, *k)`` for a convolution and
``(I, O/groups, *k)`` for a transposed one, and torch's arguments. The layers of
:mod:`jaxnets.nn.convolution` keep spatial-first kernels (``(*k, I/groups, O)`` and
``(*k, I, O/groups)``, the layouts XLA runs fastest) and call the same computations,
:func:`conv_forward` and :func:`conv_transpose_forward`, which take those kernels as they are.

Every convolution runs through :func:`jaxnets.conv.conv_nd`: im2col on CPU for 1-D and 2-D,
XLA's convolution otherwise. Also here: the argument and layout helpers the pooling functions
share (:func:`expand`, :func:`to_channels_last`, :func:`from_channels_last`).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jaxnets import conv

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv_forward",
    "conv_transpose_forward",
    "conv_padding",
    "transpose_output_padding",
    "expand",
    "to_channels_last",
    "from_channels_last",
]

LAYOUTS = ("channels_last", "channels_first")


def expand(
    name: str, value: int | Sequence[int], n: int, *, minimum: int = 1, function: str = ""
) -> tuple[int, ...]:
    """``value`` as ``n`` ints ``>= minimum``: an int, one int in a sequence, or ``n`` of them.

    torch's native functions take a one-element list for every spatial axis too.

    >>> expand("stride", 2, 3), expand("padding", (1,), 2, minimum=0)
    ((2, 2, 2), (1, 1))
    """
    where = f"{function}: " if function else ""
    if isinstance(value, bool) or not isinstance(value, int | Sequence):
        raise TypeError(f"{where}{name} must be an int or a sequence of ints, got {value!r}")
    values = (value,) * n if isinstance(value, int) else tuple(value)
    if len(values) == 1:
        values = values * n
    if len(values) != n:
        raise ValueError(f"{where}{name} must be an int or {n} ints, got {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            kind = "positive" if minimum == 1 else f"at least {minimum}"
            raise ValueError(f"{where}{name} must be {kind} integers, got {value!r}")
    return values


def to_channels_last(function: str, x: ArrayLike, n: int, layout: str) -> tuple[jax.Array, bool]:
    """A batched channels-last view ``(N, *spatial, C)`` of ``x`` and whether it was unbatched.

    ``x`` has ``n`` spatial axes, batched or not, in ``layout`` (``"channels_last"``:
    ``(N, *spatial, C)`` / ``(*spatial, C)``; ``"channels_first"``: torch's ``(N, C, *spatial)``
    / ``(C, *spatial)``).

    >>> x, unbatched = to_channels_last("f", jnp.zeros((3, 5, 7)), 2, "channels_first")
    >>> x.shape, unbatched
    ((1, 5, 7, 3), True)
    """
    if layout not in LAYOUTS:
        raise ValueError(f"{function}: layout must be one of {LAYOUTS}, got {layout!r}")
    x = jnp.asarray(x)
    if x.ndim not in (n + 1, n + 2):
        spatial = ", ".join(["L"] if n == 1 else ["D", "H", "W"][3 - n :])
        shape = f"(N, {spatial}, C)" if layout == "channels_last" else f"(N, C, {spatial})"
        raise ValueError(
            f"{function} expected {n + 1}-D (unbatched) or {n + 2}-D (batched) input {shape}, "
            f"got shape {x.shape}"
        )
    unbatched = x.ndim == n + 1
    if layout == "channels_first":
        x = jnp.moveaxis(x, 0 if unbatched else 1, -1)
    return (x[None] if unbatched else x), unbatched


def from_channels_last(y: jax.Array, unbatched: bool, layout: str) -> jax.Array:
    """Undo :func:`to_channels_last` on a result of the same rank."""
    if unbatched:
        y = y[0]
    if layout == "channels_first":
        y = jnp.moveaxis(y, -1, 0 if unbatched else 1)
    return y


def conv_padding(
    function: str,
    padding: str | int | Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
) -> list[tuple[int, int]]:
    """torch's convolution ``padding`` as ``(low, high)`` per spatial axis.

    ``"valid"`` is none; ``"same"`` (stride 1 only, as torch) pads ``dilation * (k - 1)`` in all,
    the odd one after, as torch does; ints pad both sides.

    >>> conv_padding("conv2d", "same", (4, 3), (1, 1), (1, 2))
    [(1, 2), (2, 2)]
    """
    n = len(kernel_size)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * n
        if padding != "same":
            raise ValueError(
                f"{function}: padding must be 'valid', 'same' or ints, got {padding!r}"
            )
        if any(s != 1 for s in stride):
            raise ValueError(
                f"{function}: padding='same' is not supported for strided convolutions"
            )
        pads = []
        for k, d in zip(kernel_size, dilation, strict=True):
            total = d * (k - 1)
            pads.append((total // 2, total - total // 2))
        return pads
    return [(p, p) for p in expand("padding", padding, n, minimum=0, function=function)]


def _add_bias(y: jax.Array, bias: jax.Array | None) -> jax.Array:
    if bias is None:
        return y
    return y + bias.reshape((1,) * (y.ndim - 1) + bias.shape)


def conv_forward(
    x: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None,
    stride: Sequence[int],
    padding: Sequence[tuple[int, int]],
    dilation: Sequence[int],
    groups: int,
    *,
    function: str = "conv",
) -> jax.Array:
    """The convolution itself: batched channels-last ``x`` and a spatial-first kernel.

    Args:
      x: ``(N, *spatial, C)``.
      kernel: ``(*k, C // groups, O)``.
      bias: ``(O,)`` or ``None``.
      stride, dilation: one int per spatial axis.
      padding: ``(low, high)`` zero padding per spatial axis.
      groups: ``C`` and ``O`` are divisible by it.
      function: the name errors carry.

    Returns:
      ``(N, *out, O)`` with ``out = (size + low + high - dilation * (k - 1) - 1) // stride + 1``.
    """
    n = x.ndim - 2
    if kernel.shape[-2] * groups != x.shape[-1]:
        raise ValueError(
            f"{function}: expected input with {kernel.shape[-2] * groups} channels "
            f"(weight in-channels {kernel.shape[-2]} x groups {groups}), got shape {x.shape}"
        )
    if kernel.shape[-1] % groups:
        raise ValueError(
            f"{function}: out channels {kernel.shape[-1]} are not divisible by groups {groups}"
        )
    for axis in range(n):
        reach = dilation[axis] * (kernel.shape[axis] - 1) + 1
        if x.shape[1 + axis] + sum(padding[axis]) < reach:
            raise ValueError(
                f"{function}: kernel size {tuple(kernel.shape[:n])} (dilation "
                f"{tuple(dilation)}) can't be greater than the padded input size, input "
                f"{x.shape} with padding {list(padding)}"
            )
    y = conv.conv_nd(x, kernel, stride, padding, dilation, groups)
    return _add_bias(y, bias)


def transpose_output_padding(
    function: str,
    spatial: Sequence[int],
    output_size: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> tuple[int, ...]:
    """The ``output_padding`` that makes a transposed convolution ``output_size`` big (torch's
    ``_ConvTransposeNd._output_padding``): each size within ``[smallest, smallest + stride)``.

    >>> transpose_output_padding("f", (4, 4), (10, 9), (3, 3), (2, 2), (0, 0), (1, 1))
    (1, 0)
    """
    smallest = [
        (size - 1) * s - 2 * p + d * (k - 1) + 1
        for size, k, s, p, d in zip(spatial, kernel_size, stride, padding, dilation, strict=True)
    ]
    largest = [low + s - 1 for low, s in zip(smallest, stride, strict=True)]
    sizes = [int(size) for size in output_size]
    bounds = zip(sizes, smallest, largest, strict=True)
    if any(not low <= size <= high for size, low, high in bounds):
        raise ValueError(
            f"{function}: requested an output size of {tuple(sizes)}, but valid sizes range "
            f"from {tuple(smallest)} to {tuple(largest)} (for an input of {tuple(spatial)})"
        )
    return tuple(size - low for size, low in zip(sizes, smallest, strict=True))


def conv_transpose_forward(
    x: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None,
    stride: Sequence[int],
    padding: Sequence[int],
    output_padding: Sequence[int],
    groups: int,
    dilation: Sequence[int],
    *,
    function: str = "conv_transpose",
) -> jax.Array:
    """The transposed convolution: batched channels-last ``x``, kernel ``(*k, I, O // groups)``.

    The transpose of a strided convolution: spread the input by the stride (interior zeros), pad
    by the dilated kernel's reach less ``padding`` (negative pads crop) and ``output_padding``
    more after, then a stride-1 convolution with the flipped kernel, input and output channel
    axes swapped within each group.

    Returns:
      ``(N, *out, O)``, ``out = (size - 1) * stride - 2 * padding + dilation * (k - 1) +
      output_padding + 1``.
    """
    n = x.ndim - 2
    kernel_size = kernel.shape[:n]
    channels_in, group_out = kernel.shape[n:]
    if channels_in != x.shape[-1]:
        raise ValueError(
            f"{function}: expected input with {channels_in} channels (weight's first axis in "
            f"torch's layout), got shape {x.shape}"
        )
    if channels_in % groups:
        raise ValueError(
            f"{function}: in channels {channels_in} are not divisible by groups {groups}"
        )
    for op, s, d in zip(output_padding, stride, dilation, strict=True):
        if op >= s and op >= d:
            raise ValueError(
                f"{function}: output_padding must be smaller than either stride or dilation, got "
                f"output_padding={tuple(output_padding)}, stride={tuple(stride)}, "
                f"dilation={tuple(dilation)}"
            )
    out = [
        (size - 1) * s - 2 * p + d * (k - 1) + op + 1
        for size, k, s, p, d, op in zip(
            x.shape[1:-1], kernel_size, stride, padding, dilation, output_padding, strict=True
        )
    ]
    if min(out) < 1:
        raise ValueError(f"{function}: output size {tuple(out)} from input {x.shape} is empty")
    config = [(0, 0, 0)]
    for k, s, p, op, d in zip(kernel_size, stride, padding, output_padding, dilation, strict=True):
        reach = d * (k - 1) - p
        config.append((reach, reach + op, s - 1))
    config.append((0, 0, 0))
    x = lax.pad(x, jnp.zeros((), x.dtype), config)
    # Group j maps input channels j*I/g... to output channels j*O/g...: the forward kernel is
    # (*k, I/g, O) with its output axis group-major.
    flipped = kernel[(slice(None, None, -1),) * n]
    forward = flipped.reshape(*kernel_size, groups, channels_in // groups, group_out)
    forward = jnp.moveaxis(forward, n, n + 1).reshape(
        *kernel_size, channels_in // groups, groups * group_out
    )
    y = conv.conv_nd(x, forward, (1,) * n, [(0, 0)] * n, dilation, groups)
    return _add_bias(y, bias)


def _weight(function: str, weight: ArrayLike, n: int) -> jax.Array:
    weight = jnp.asarray(weight)
    if weight.ndim != n + 2:
        raise ValueError(
            f"{function}: weight must be {n + 2}-D (torch's layout (out, in / groups, *k) or "
            f"(in, out / groups, *k)), got shape {weight.shape}"
        )
    return weight


def _bias(function: str, bias: ArrayLike | None, channels: int) -> jax.Array | None:
    if bias is None:
        return None
    bias = jnp.asarray(bias)
    if bias.shape != (channels,):
        raise ValueError(f"{function}: bias must have shape ({channels},), got {bias.shape}")
    return bias


def _conv(
    n: int,
    input: ArrayLike,  # noqa: A002 - torch's name
    weight: ArrayLike,
    bias: ArrayLike | None,
    stride: int | Sequence[int],
    padding: str | int | Sequence[int],
    dilation: int | Sequence[int],
    groups: int,
    layout: str,
) -> jax.Array:
    function = f"conv{n}d"
    x, unbatched = to_channels_last(function, input, n, layout)
    weight = _weight(function, weight, n)
    groups = expand("groups", groups, 1, function=function)[0]
    stride = expand("stride", stride, n, function=function)
    dilation = expand("dilation", dilation, n, function=function)
    kernel = jnp.transpose(weight, (*range(2, n + 2), 1, 0))
    pads = conv_padding(function, padding, kernel.shape[:n], stride, dilation)
    y = conv_forward(
        x,
        kernel,
        _bias(function, bias, weight.shape[0]),
        stride,
        pads,
        dilation,
        groups,
        function=function,
    )
    return from_channels_last(y, unbatched, layout)


def _conv_transpose(
    n: int,
    input: ArrayLike,  # noqa: A002 - torch's name
    weight: ArrayLike,
    bias: ArrayLike | None,
    stride: int | Sequence[int],
    padding: int | Sequence[int],
    output_padding: int | Sequence[int],
    groups: int,
    dilation: int | Sequence[int],
    layout: str,
) -> jax.Array:
    function = f"conv_transpose{n}d"
    x, unbatched = to_channels_last(function, input, n, layout)
    weight = _weight(function, weight, n)
    groups = expand("groups", groups, 1, function=function)[0]
    kernel = jnp.transpose(weight, (*range(2, n + 2), 0, 1))
    y = conv_transpose_forward(
        x,
        kernel,
        _bias(function, bias, weight.shape[1] * groups),
        expand("stride", stride, n, function=function),
        expand("padding", padding, n, minimum=0, function=function),
        expand("output_padding", output_padding, n, minimum=0, function=function),
        groups,
        expand("dilation", dilation, n, function=function),
        function=function,
    )
    return from_channels_last(y, unbatched, layout)


def conv1d(
    input: ArrayLike,  # noqa: A002 - torch's name
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.conv1d``: ``(N, L, C)`` (or ``(L, C)``) input, torch's weight.

    Same contract as :func:`conv2d` with one spatial axis; ``weight`` is ``(O, C/groups, k)``.

    >>> conv1d(jnp.ones((1, 5, 2)), jnp.ones((3, 2, 3)), padding="same")[0, :, 0].tolist()
    [4.0, 6.0, 6.0, 6.0, 4.0]
    """
    return _conv(1, input, weight, bias, stride, padding, dilation, groups, layout)


def conv2d(
    input: ArrayLike,  # noqa: A002 - torch's name
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.conv2d`` on channels-last input with torch's ``(O, C/g, kh, kw)``
    weight.

    Args:
      input: ``(N, H, W, C)`` or unbatched ``(H, W, C)`` (``layout="channels_first"``: torch's
        ``(N, C, H, W)`` / ``(C, H, W)``).
      weight: ``(O, C // groups, kh, kw)``, torch's layout.
      bias: ``(O,)`` or ``None``.
      stride, dilation: an int or one per axis.
      padding: an int or one per axis (both sides), ``"valid"`` or ``"same"`` (stride 1; the
        odd extra pad after, as torch).
      groups: ``C`` and ``O`` are divisible by it.
      layout: ``"channels_last"`` or ``"channels_first"``; the output is in the same one.

    Returns:
      ``(N, Ho, Wo, O)`` (or unbatched, or channels-first, as the input).

    >>> x, w = jnp.ones((2, 4, 4, 3)), jnp.ones((5, 3, 3, 3))
    >>> conv2d(x, w, stride=2, padding=1).shape
    (2, 2, 2, 5)
    """
    return _conv(2, input, weight, bias, stride, padding, dilation, groups, layout)


def conv3d(
    input: ArrayLike,  # noqa: A002 - torch's name
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.conv3d``: ``(N, D, H, W, C)`` (or unbatched) input, torch's weight
    ``(O, C/groups, kd, kh, kw)``; same contract as :func:`conv2d`.

    >>> conv3d(jnp.ones((1, 3, 4, 5, 2)), jnp.ones((4, 2, 2, 2, 2))).shape
    (1, 2, 3, 4, 4)
    """
    return _conv(3, input, weight, bias, stride, padding, dilation, groups, layout)


def conv_transpose1d(
    input: ArrayLike,  # noqa: A002 - torch's name
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.conv_transpose1d``; same contract as :func:`conv_transpose2d`.

    >>> conv_transpose1d(jnp.ones((1, 3, 2)), jnp.ones((2, 1, 2)), stride=2)[0, :, 0].tolist()
    [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    """
    return _conv_transpose(
        1, input, weight, bias, stride, padding, output_padding, groups, dilation, layout
    )


def conv_transpose2d(
    input: ArrayLike,  # noqa: A002 - torch's name
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.conv_transpose2d`` (the gradient of ``conv2d`` with respect to its
    input) on channels-last input with torch's ``(C, O/groups, kh, kw)`` weight.

    Args:
      input: ``(N, H, W, C)`` or unbatched ``(H, W, C)`` (or torch's layout with
        ``layout="channels_first"``).
      weight: ``(C, O // groups, kh, kw)``, torch's layout.
      bias: ``(O,)`` or ``None``.
      stride, padding, dilation: an int or one per axis; ``padding`` crops ``dilation *
        (k - 1) - padding`` less on both sides.
      output_padding: extra rows/columns after (each smaller than the stride or the dilation).
      groups: ``C`` and ``O`` are divisible by it.
      layout: ``"channels_last"`` or ``"channels_first"``.

    Returns:
      ``(N, Ho, Wo, O)``, ``Ho = (H - 1) * stride - 2 * padding + dilation * (kh - 1) +
      output_padding + 1``.

    >>> x, w = jnp.ones((1, 5, 5, 4)), jnp.ones((4, 2, 3, 3))
    >>> conv_transpose2d(x, w, stride=2, padding=1, output_padding=1).shape
    (1, 10, 10, 2)
    """
    return _conv_transpose(
        2, input, weight, bias, stride, padding, output_padding, groups, dilation, layout
    )


def conv_transpose3d(
    input: ArrayLike,  # noqa: A002 - torch's name
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``torch.nn.functional.conv_transpose3d``; same contract as :func:`conv_transpose2d`.

    >>> conv_transpose3d(jnp.ones((1, 2, 2, 2, 3)), jnp.ones((3, 1, 2, 2, 2)), stride=2).shape
    (1, 4, 4, 4, 1)
    """
    return _conv_transpose(
        3, input, weight, bias, stride, padding, output_padding, groups, dilation, layout
    )
