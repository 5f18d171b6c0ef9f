"""Pooling layers on channels-last ``(N, *spatial, C)`` (or unbatched ``(*spatial, C)``) inputs.

``MaxPool1d/2d/3d``, ``AvgPool1d/2d/3d``, ``AdaptiveAvgPool1d/2d/3d``,
``AdaptiveMaxPool1d/2d/3d``, ``LPPool1d/2d/3d`` and ``FractionalMaxPool2d/3d``: torch's
constructors, thin wrappers over :mod:`jaxnets.nn.functional.pooling` (which documents the
output sizes, torch's choice of maximum and its indices).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from jaxnets.nn import random
from jaxnets.nn.functional import pooling as F
from jaxnets.nn.functional.convolution import expand
from jaxnets.nn.state import TorchEntry, same

__all__ = [
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    "FractionalMaxPool2d",
    "FractionalMaxPool3d",
]

_CHANNEL_AXIS = {1: {3: 1, 2: 0}, 2: {4: 1, 3: 0}, 3: {5: 1, 4: 0}}
Output = jax.Array | tuple[jax.Array, jax.Array]


def _stride(
    name: str, kernel: tuple[int, ...], stride: int | Sequence[int] | None, n: int
) -> tuple[int, ...]:
    if stride is None or (not isinstance(stride, int) and len(stride) == 0):
        return kernel
    return expand("stride", stride, n, function=name)


class _MaxPoolNd(nnx.Module):
    _spatial: int

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ):
        n, name = self._spatial, type(self).__name__
        self.kernel_size = expand("kernel_size", kernel_size, n, function=name)
        self.stride = _stride(name, self.kernel_size, stride, n)
        self.padding = expand("padding", padding, n, minimum=0, function=name)
        self.dilation = expand("dilation", dilation, n, function=name)
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode
        reach = [d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation, strict=True)]
        F.check_padding(name, self.padding, reach)

    def __call__(self, x: ArrayLike) -> Output:
        pool = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[self._spatial - 1]
        return pool(
            x,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.ceil_mode,
            self.return_indices,
        )


class MaxPool1d(_MaxPoolNd):
    """``torch.nn.MaxPool1d`` on ``(N, L, C)`` (or ``(L, C)``); see :class:`MaxPool2d`.

    >>> MaxPool1d(2)(jnp.asarray([[1.0], [3.0], [2.0], [0.0]]))[:, 0].tolist()
    [3.0, 2.0]
    """

    _spatial = 1
    torch_channel_axis = _CHANNEL_AXIS[1]


class MaxPool2d(_MaxPoolNd):
    """``torch.nn.MaxPool2d`` on channels-last input; padding never wins (it is ``-inf``).

    Arguments and defaults as torch (``stride=None`` means ``kernel_size``). The gradient goes
    to torch's maximum of each window (the first in row-major order, or the last NaN).
    ``return_indices=True`` also returns torch's indices, the flat position ``h * W + w`` of
    each maximum in its ``(sample, channel)`` plane (layout-independent values), channels-last
    like the output, int64 with ``jax_enable_x64`` (else int32).

    >>> pool = MaxPool2d(2)
    >>> pool(jnp.arange(16.0, dtype=jnp.float32).reshape(1, 4, 4, 1))[0, ..., 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """

    _spatial = 2
    torch_channel_axis = _CHANNEL_AXIS[2]


class MaxPool3d(_MaxPoolNd):
    """``torch.nn.MaxPool3d`` on ``(N, D, H, W, C)`` (or unbatched); see :class:`MaxPool2d`
    (indices are ``(d * H + h) * W + w``).

    >>> MaxPool3d(2, padding=1)(jnp.ones((1, 4, 4, 4, 3), jnp.float32)).shape
    (1, 3, 3, 3, 3)
    """

    _spatial = 3
    torch_channel_axis = _CHANNEL_AXIS[3]


class _AvgPoolNd(nnx.Module):
    _spatial: int

    def _setup(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None,
        padding: int | Sequence[int],
        ceil_mode: bool,
        count_include_pad: bool,
        divisor_override: int | None,
    ) -> None:
        n, name = self._spatial, type(self).__name__
        self.kernel_size = expand("kernel_size", kernel_size, n, function=name)
        self.stride = _stride(name, self.kernel_size, stride, n)
        self.padding = expand("padding", padding, n, minimum=0, function=name)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = F.check_divisor(name, divisor_override)
        F.check_padding(name, self.padding, self.kernel_size)

    def __call__(self, x: ArrayLike) -> jax.Array:
        args = (x, self.kernel_size, self.stride, self.padding, self.ceil_mode)
        if self._spatial == 1:
            return F.avg_pool1d(*args, self.count_include_pad)
        pool = F.avg_pool2d if self._spatial == 2 else F.avg_pool3d
        return pool(*args, self.count_include_pad, self.divisor_override)


class AvgPool1d(_AvgPoolNd):
    """``torch.nn.AvgPool1d`` on ``(N, L, C)`` (or ``(L, C)``); see :class:`AvgPool2d` (no
    ``divisor_override``, as torch).

    >>> AvgPool1d(2, padding=1)(jnp.ones((5, 1), jnp.float32))[:, 0].tolist()
    [0.5, 1.0, 1.0]
    """

    _spatial = 1
    torch_channel_axis = _CHANNEL_AXIS[1]

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ):
        self._setup(kernel_size, stride, padding, ceil_mode, count_include_pad, None)


class AvgPool2d(_AvgPoolNd):
    """``torch.nn.AvgPool2d`` on channels-last input, with torch's divisors.

    Each window's sum is divided by ``divisor_override`` if given; else, with
    ``count_include_pad`` (the default), by the window's size clipped to the padded input (a
    ``ceil_mode`` overhang does not count); else by the number of real input elements it covers.

    >>> pool = AvgPool2d(2, padding=1, count_include_pad=False)
    >>> pool(jnp.ones((1, 3, 3, 1), jnp.float32))[0, ..., 0].tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """

    _spatial = 2
    torch_channel_axis = _CHANNEL_AXIS[2]

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ):
        self._setup(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


class AvgPool3d(_AvgPoolNd):
    """``torch.nn.AvgPool3d`` on ``(N, D, H, W, C)`` (or unbatched); see :class:`AvgPool2d`.

    >>> AvgPool3d(2, divisor_override=1)(jnp.ones((1, 2, 2, 2, 1), jnp.float32)).ravel().tolist()
    [8.0]
    """

    _spatial = 3
    torch_channel_axis = _CHANNEL_AXIS[3]

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ):
        self._setup(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def _adaptive_size(
    name: str, output_size: int | None | Sequence[int | None], n: int
) -> tuple[int | None, ...]:
    sizes = (
        (output_size,) * n
        if output_size is None or isinstance(output_size, int)
        else tuple(output_size)
    )
    if len(sizes) == 1:
        sizes = sizes * n
    if len(sizes) != n:
        raise ValueError(f"{name}: output_size must be an int or {n} ints, got {output_size!r}")
    for size in sizes:
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise ValueError(
                f"{name}: output_size must be non-negative ints or None, got {output_size!r}"
            )
    return sizes


class _AdaptiveAvgPoolNd(nnx.Module):
    _spatial: int

    def __init__(self, output_size: int | None | Sequence[int | None]):
        self.output_size = _adaptive_size(type(self).__name__, output_size, self._spatial)

    def __call__(self, x: ArrayLike) -> jax.Array:
        pool = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)
        return pool[self._spatial - 1](x, self.output_size)


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """``torch.nn.AdaptiveAvgPool1d`` on ``(N, L, C)`` (or ``(L, C)``); see
    :class:`AdaptiveAvgPool2d`.

    >>> AdaptiveAvgPool1d(2)(jnp.arange(4.0).reshape(4, 1))[:, 0].tolist()
    [0.5, 2.5]
    """

    _spatial = 1
    torch_channel_axis = _CHANNEL_AXIS[1]


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """``torch.nn.AdaptiveAvgPool2d``: average over torch's adaptive bins to a fixed output size.

    Output cell ``i`` of an axis of length ``size`` averages ``[floor(i*size/out),
    ceil((i+1)*size/out))``; bins may overlap. ``output_size`` is an int or a pair whose ``None``
    entries keep the input's size.

    >>> pool = AdaptiveAvgPool2d((1, None))
    >>> pool(jnp.ones((2, 5, 3, 4), jnp.float32)).shape
    (2, 1, 3, 4)
    """

    _spatial = 2
    torch_channel_axis = _CHANNEL_AXIS[2]


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """``torch.nn.AdaptiveAvgPool3d`` on ``(N, D, H, W, C)`` (or unbatched); see
    :class:`AdaptiveAvgPool2d`.

    >>> AdaptiveAvgPool3d((None, 2, 1))(jnp.ones((3, 4, 5, 2), jnp.float32)).shape
    (3, 2, 1, 2)
    """

    _spatial = 3
    torch_channel_axis = _CHANNEL_AXIS[3]


class _AdaptiveMaxPoolNd(nnx.Module):
    _spatial: int

    def __init__(
        self, output_size: int | None | Sequence[int | None], return_indices: bool = False
    ):
        self.output_size = _adaptive_size(type(self).__name__, output_size, self._spatial)
        self.return_indices = return_indices

    def __call__(self, x: ArrayLike) -> Output:
        pool = (F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d)
        return pool[self._spatial - 1](x, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """``torch.nn.AdaptiveMaxPool1d`` on ``(N, L, C)`` (or ``(L, C)``); see
    :class:`AdaptiveMaxPool2d`.

    >>> AdaptiveMaxPool1d(2)(jnp.asarray([[1.0], [3.0], [2.0]]))[:, 0].tolist()
    [3.0, 3.0]
    """

    _spatial = 1
    torch_channel_axis = _CHANNEL_AXIS[1]


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """``torch.nn.AdaptiveMaxPool2d``: the maximum over torch's adaptive bins (those of
    :class:`AdaptiveAvgPool2d`); the gradient goes to torch's pick (first maximum, or last NaN)
    and ``return_indices=True`` also returns torch's flat indices ``h * W + w``.

    >>> y, i = AdaptiveMaxPool2d(1, return_indices=True)(jnp.arange(6.0).reshape(2, 3, 1))
    >>> y.tolist(), i.tolist()
    ([[[5.0]]], [[[5]]])
    """

    _spatial = 2
    torch_channel_axis = _CHANNEL_AXIS[2]


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """``torch.nn.AdaptiveMaxPool3d`` on ``(N, D, H, W, C)`` (or unbatched); see
    :class:`AdaptiveMaxPool2d`.

    >>> AdaptiveMaxPool3d((2, 2, None))(jnp.ones((1, 5, 4, 3, 2), jnp.float32)).shape
    (1, 2, 2, 3, 2)
    """

    _spatial = 3
    torch_channel_axis = _CHANNEL_AXIS[3]


class _LPPoolNd(nnx.Module):
    _spatial: int

    def __init__(
        self,
        norm_type: float,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        ceil_mode: bool = False,
    ):
        n, name = self._spatial, type(self).__name__
        if isinstance(norm_type, bool) or not isinstance(norm_type, int | float):
            raise TypeError(f"{name}: norm_type must be a number, got {norm_type!r}")
        self.norm_type = norm_type
        self.kernel_size = expand("kernel_size", kernel_size, n, function=name)
        self.stride = _stride(name, self.kernel_size, stride, n)
        self.ceil_mode = ceil_mode

    def __call__(self, x: ArrayLike) -> jax.Array:
        pool = (F.lp_pool1d, F.lp_pool2d, F.lp_pool3d)[self._spatial - 1]
        return pool(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)


class LPPool1d(_LPPoolNd):
    """``torch.nn.LPPool1d`` on ``(N, L, C)`` (or ``(L, C)``); see :class:`LPPool2d`.

    >>> LPPool1d(2, 2)(jnp.asarray([[3.0], [4.0]]))[:, 0].tolist()
    [5.0]
    """

    _spatial = 1
    torch_channel_axis = _CHANNEL_AXIS[1]


class LPPool2d(_LPPoolNd):
    """``torch.nn.LPPool2d``: ``(sum over the window of x**p) ** (1/p)``, computed as torch
    computes it (from the average pool, so ``ceil_mode`` windows, NaNs of negative odd-power
    sums and the zero gradient of all-zero windows are torch's); no padding, as torch.

    >>> LPPool2d(1, 2)(jnp.ones((1, 4, 4, 1), jnp.float32))[0, ..., 0].tolist()
    [[4.0, 4.0], [4.0, 4.0]]
    """

    _spatial = 2
    torch_channel_axis = _CHANNEL_AXIS[2]


class LPPool3d(_LPPoolNd):
    """``torch.nn.LPPool3d`` on ``(N, D, H, W, C)`` (or unbatched); see :class:`LPPool2d`.

    >>> LPPool3d(2, 2)(jnp.ones((1, 2, 2, 2, 1), jnp.float32)).ravel().tolist()
    [2.8284270763397217]
    """

    _spatial = 3
    torch_channel_axis = _CHANNEL_AXIS[3]


class _FractionalMaxPoolNd(nnx.Module):
    _spatial: int

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        output_size: int | Sequence[int] | None = None,
        output_ratio: float | Sequence[float] | None = None,
        return_indices: bool = False,
        _random_samples: ArrayLike | None = None,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs | None = None,
    ):
        n, name = self._spatial, type(self).__name__
        self.kernel_size = expand("kernel_size", kernel_size, n, function=name)
        if output_size is None and output_ratio is None:
            raise ValueError(
                f"{name} requires specifying either an output size, or a pooling ratio"
            )
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        self.output_size = (
            None if output_size is None else expand("output_size", output_size, n, function=name)
        )
        self.output_ratio: tuple[float, ...] | None = None
        if output_ratio is not None:
            ratios = (
                (output_ratio,) * n
                if isinstance(output_ratio, int | float)
                else tuple(output_ratio)
            )
            if len(ratios) != n or not all(0 < r < 1 for r in ratios):
                raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")
            self.output_ratio = tuple(float(r) for r in ratios)
        self.return_indices = return_indices
        # torch registers the fixed samples as a buffer, so they are in its state_dict.
        self.random_samples = (
            None if _random_samples is None else nnx.BatchStat(jnp.asarray(_random_samples, dtype))
        )
        self.rngs = nnx.data(None) if rngs is None else rngs.dropout.fork()

    def torch_state(self) -> dict[str, TorchEntry]:
        """``_random_samples`` (when given) as is."""
        if self.random_samples is None:
            return {}
        return {"_random_samples": same("random_samples")}

    def __call__(
        self, x: ArrayLike, *, rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None
    ) -> Output:
        """Pool ``x``; ``rngs`` (a ``Rngs``, a stream or a key) overrides the layer's own."""
        name = type(self).__name__
        samples = None if self.random_samples is None else self.random_samples[...]
        key = self.rngs if rngs is None else rngs
        if samples is None and key is None and random.active() is None:
            raise ValueError(
                f"{name} draws its pooling regions at random: build it with "
                f"rngs=nnx.Rngs(dropout=...), pass rngs= when calling, or give "
                f"_random_samples"
            )
        pool = F.fractional_max_pool2d if self._spatial == 2 else F.fractional_max_pool3d
        return pool(
            x,
            self.kernel_size,
            self.output_size,
            self.output_ratio,
            self.return_indices,
            samples,
            key=key,
        )


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """``torch.nn.FractionalMaxPool2d`` on channels-last input.

    Max pooling over pseudo-random windows (torch's ``generate_intervals`` per ``(sample,
    channel)`` plane). With ``_random_samples`` (torch's ``(N, C, 2)`` uniform draws, width
    first, kept as a buffer as torch keeps them) every call is torch's exactly. Without, each
    call draws them from the ``dropout`` stream of ``rngs`` (given here, as
    ``nnx.Rngs(dropout=...)`` or a default stream, or at call time), as ``Dropout`` draws its
    masks: both are the layer's noise. ``dtype`` is that of the stored samples.

    >>> pool = FractionalMaxPool2d(2, output_ratio=0.5, rngs=nnx.Rngs(dropout=0))
    >>> pool(jnp.ones((2, 8, 6, 3), jnp.float32)).shape
    (2, 4, 3, 3)
    """

    _spatial = 2
    torch_channel_axis = _CHANNEL_AXIS[2]


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """``torch.nn.FractionalMaxPool3d`` on ``(N, D, H, W, C)`` (or unbatched); see
    :class:`FractionalMaxPool2d`. ``_random_samples`` is ``(N, C, 3)`` (depth, height, width).

    >>> pool = FractionalMaxPool3d(2, output_size=2, rngs=nnx.Rngs(dropout=0))
    >>> pool(jnp.ones((1, 5, 5, 5, 2), jnp.float32)).shape
    (1, 2, 2, 2, 2)
    """

    _spatial = 3
    torch_channel_axis = _CHANNEL_AXIS[3]
