"""Convolutions on channels-last inputs: ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d``.

Activations are ``(N, *spatial, C)`` and kernels spatial-first (``WIO`` / ``HWIO`` / ``DHWIO``),
the layouts XLA runs fastest; ``torch_state`` maps them to torch's ``(N, C, *spatial)``-world
weights. The layers are thin wrappers over :mod:`jaxnets.nn.functional.convolution`
(:func:`~jaxnets.nn.functional.convolution.conv_forward` and
:func:`~jaxnets.nn.functional.convolution.conv_transpose_forward`), which run every
convolution through :func:`jaxnets.conv.conv_nd` (im2col on CPU for 1-D and 2-D, XLA's
convolution elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from jaxnets.nn._args import expect_channels, expect_rank, ntuple, positive
from jaxnets.nn.functional.convolution import (
    conv_forward,
    conv_padding,
    conv_transpose_forward,
    transpose_output_padding,
)
from jaxnets.nn.init import bias_bound, kaiming_uniform, torch_uniform
from jaxnets.nn.state import TorchEntry, same, transposed

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

_PAD_MODES = {"zeros": None, "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
_LAYOUTS = {1: "(N, L, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}


class _ConvNd(nnx.Module):
    """Shared constructor and forward of ``Conv1d/2d/3d`` (``_spatial`` = 1, 2 or 3)."""

    _spatial: int
    torch_channel_axis: dict[int, int]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        n = self._spatial
        self.in_channels = positive("in_channels", in_channels)
        self.out_channels = positive("out_channels", out_channels)
        self.groups = positive("groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        if padding_mode not in _PAD_MODES:
            raise ValueError(
                f"padding_mode must be one of {tuple(_PAD_MODES)}, got {padding_mode!r}"
            )
        self.kernel_size = ntuple("kernel_size", kernel_size, n)
        self.stride = ntuple("stride", stride, n)
        self.dilation = ntuple("dilation", dilation, n)
        if isinstance(padding, str):
            # Checked (and 'same' with a stride refused) here, as torch's constructor does.
            conv_padding(type(self).__name__, padding, self.kernel_size, self.stride, self.dilation)
            self.padding: str | tuple[int, ...] = padding
        else:
            self.padding = ntuple("padding", padding, n, minimum=0)
        self.padding_mode = padding_mode
        fan_in = in_channels // groups
        for k in self.kernel_size:
            fan_in *= k
        self.kernel = nnx.Param(
            kaiming_uniform(fan_in)(
                rngs.params(), (*self.kernel_size, in_channels // groups, out_channels), dtype
            )
        )
        self.bias = (
            nnx.Param(torch_uniform(bias_bound(fan_in))(rngs.params(), (out_channels,), dtype))
            if bias
            else None
        )

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight`` ``(O, I/g, *k)`` <-> ``kernel`` ``(*k, I/g, O)``; ``bias`` as is."""
        n = self._spatial
        entries = {"weight": transposed("kernel", (*range(2, 2 + n), 1, 0))}
        if self.bias is not None:
            entries["bias"] = same("bias")
        return entries

    def _explicit_padding(self) -> list[tuple[int, int]]:
        return conv_padding(
            type(self).__name__, self.padding, self.kernel_size, self.stride, self.dilation
        )

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x)
        n = self._spatial
        name = type(self).__name__
        expect_rank(name, x, (n + 1, n + 2), _LAYOUTS[n])
        expect_channels(name, x, self.in_channels)
        unbatched = x.ndim == n + 1
        if unbatched:
            x = x[None]
        pads = self._explicit_padding()
        mode = _PAD_MODES[self.padding_mode]
        if mode is not None:
            # torch pads with the mode first, then convolves without padding.
            x = jnp.pad(x, [(0, 0), *pads, (0, 0)], mode=mode)
            pads = [(0, 0)] * n
        bias = None if self.bias is None else self.bias[...]
        y = conv_forward(
            x, self.kernel[...], bias, self.stride, pads, self.dilation, self.groups, function=name
        )
        return y[0] if unbatched else y


class Conv1d(_ConvNd):
    """``torch.nn.Conv1d`` on ``(N, L, C)`` inputs with a ``(k, in_channels // groups, O)`` kernel.

    Same arguments, defaults and initialisation as torch (``U(±1/sqrt(fan_in))``,
    ``fan_in = in_channels // groups * k``); see :class:`Conv2d` for the options. torch's
    ``weight`` ``(O, I/g, k)`` is ``kernel.transpose(2, 1, 0)``. Unbatched ``(L, C)`` inputs are
    accepted as torch accepts ``(C, L)``.

    >>> conv = Conv1d(2, 4, 3, padding="same", rngs=nnx.Rngs(0))
    >>> conv(jnp.ones((5, 10, 2), jnp.float32)).shape
    (5, 10, 4)
    """

    _spatial = 1
    torch_channel_axis = {3: 1, 2: 0}


class Conv2d(_ConvNd):
    """``torch.nn.Conv2d`` on NHWC inputs with an HWIO kernel.

    Maps ``(N, H, W, in_channels)`` to ``(N, Ho, Wo, out_channels)``; the kernel is
    ``(kh, kw, in_channels // groups, out_channels)`` and torch's weight ``(O, I/g, kh, kw)`` is
    ``kernel.transpose(3, 2, 0, 1)``. Args mirror torch: ``stride``, ``dilation`` and ``padding``
    are ints or pairs, ``padding`` also ``"valid"`` or ``"same"`` (stride 1 only, the odd extra
    pad after); ``padding_mode`` is ``"zeros"``, ``"reflect"``, ``"replicate"`` or
    ``"circular"``; ``groups`` splits the channels. Unbatched ``(H, W, C)`` inputs are accepted as
    torch accepts ``(C, H, W)``. Initialised as torch: ``U(±1/sqrt(fan_in))`` for both,
    ``fan_in = in_channels // groups * kh * kw``.

    >>> conv = Conv2d(1, 6, 3, rngs=nnx.Rngs(0))
    >>> conv(jnp.ones((2, 32, 32, 1), jnp.float32)).shape
    (2, 30, 30, 6)
    """

    _spatial = 2
    torch_channel_axis = {4: 1, 3: 0}


class Conv3d(_ConvNd):
    """``torch.nn.Conv3d`` on ``(N, D, H, W, C)`` inputs with a ``(kd, kh, kw, I/g, O)`` kernel.

    Same arguments, defaults and initialisation as torch; see :class:`Conv2d` for the options.
    torch's ``weight`` ``(O, I/g, kd, kh, kw)`` is ``kernel.transpose(4, 3, 0, 1, 2)``.
    Unbatched ``(D, H, W, C)`` inputs are accepted as torch accepts ``(C, D, H, W)``.

    >>> conv = Conv3d(2, 4, 3, padding=1, padding_mode="replicate", rngs=nnx.Rngs(0))
    >>> conv(jnp.ones((1, 4, 5, 6, 2), jnp.float32)).shape
    (1, 4, 5, 6, 4)
    """

    _spatial = 3
    torch_channel_axis = {5: 1, 4: 0}


class _ConvTransposeNd(nnx.Module):
    """Shared constructor and forward of ``ConvTranspose1d/2d/3d``."""

    _spatial: int
    torch_channel_axis: dict[int, int]

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        output_padding: int | Sequence[int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | Sequence[int] = 1,
        padding_mode: str = "zeros",
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        n = self._spatial
        name = type(self).__name__
        self.in_channels = positive("in_channels", in_channels)
        self.out_channels = positive("out_channels", out_channels)
        self.groups = positive("groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        if padding_mode != "zeros":
            raise ValueError(
                f'Only "zeros" padding mode is supported for {name}, got {padding_mode!r}'
            )
        if isinstance(padding, str):
            raise ValueError(f"{name} padding must be ints, got {padding!r}")
        self.kernel_size = ntuple("kernel_size", kernel_size, n)
        self.stride = ntuple("stride", stride, n)
        self.padding = ntuple("padding", padding, n, minimum=0)
        self.output_padding = ntuple("output_padding", output_padding, n, minimum=0)
        self.dilation = ntuple("dilation", dilation, n)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):
            if op >= s and op >= d:
                raise ValueError(
                    f"output_padding must be smaller than either stride or dilation, got "
                    f"output_padding={self.output_padding}, stride={self.stride}, "
                    f"dilation={self.dilation}"
                )
        fan_in = out_channels // groups
        for k in self.kernel_size:
            fan_in *= k
        self.kernel = nnx.Param(
            kaiming_uniform(fan_in)(
                rngs.params(), (*self.kernel_size, in_channels, out_channels // groups), dtype
            )
        )
        self.bias = (
            nnx.Param(torch_uniform(bias_bound(fan_in))(rngs.params(), (out_channels,), dtype))
            if bias
            else None
        )

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight`` ``(I, O/g, *k)`` <-> ``kernel`` ``(*k, I, O/g)``; ``bias`` as is."""
        n = self._spatial
        entries = {"weight": transposed("kernel", (*range(2, 2 + n), 0, 1))}
        if self.bias is not None:
            entries["bias"] = same("bias")
        return entries

    def __call__(self, x: ArrayLike, output_size: Sequence[int] | None = None) -> jax.Array:
        """Transposed convolution of ``x``; ``output_size`` as torch's ``forward`` takes it.

        ``output_size`` (the spatial sizes, or the whole output shape channels-last:
        ``(N, *spatial, C)``, unbatched ``(*spatial, C)``) picks the ``output_padding`` that
        gives it, in place of the constructor's; each size must lie in
        ``[smallest, smallest + stride)``.
        """
        x = jnp.asarray(x)
        n = self._spatial
        name = type(self).__name__
        expect_rank(name, x, (n + 1, n + 2), _LAYOUTS[n])
        expect_channels(name, x, self.in_channels)
        unbatched = x.ndim == n + 1
        if unbatched:
            x = x[None]
        output_padding = self.output_padding
        if output_size is not None:
            sizes = [int(s) for s in output_size]
            if len(sizes) == (n + 1 if unbatched else n + 2):
                sizes = sizes[:n] if unbatched else sizes[1 : n + 1]
            if len(sizes) != n:
                raise ValueError(
                    f"{name}: for {n + 1 if unbatched else n + 2}-D input, output_size must "
                    f"have {n} or {n + 1 if unbatched else n + 2} elements (got {len(sizes)})"
                )
            output_padding = transpose_output_padding(
                name,
                x.shape[1:-1],
                sizes,
                self.kernel_size,
                self.stride,
                self.padding,
                self.dilation,
            )
        bias = None if self.bias is None else self.bias[...]
        y = conv_transpose_forward(
            x,
            self.kernel[...],
            bias,
            self.stride,
            self.padding,
            output_padding,
            self.groups,
            self.dilation,
            function=name,
        )
        return y[0] if unbatched else y


class ConvTranspose1d(_ConvTransposeNd):
    """``torch.nn.ConvTranspose1d`` on ``(N, L, C)`` with a ``(k, in_channels, O // groups)``
    kernel (torch's weight ``(I, O/g, k)`` is ``kernel.transpose(1, 2, 0)``); see
    :class:`ConvTranspose2d` for the options.

    >>> up = ConvTranspose1d(4, 2, 3, stride=2, rngs=nnx.Rngs(0))
    >>> up(jnp.ones((1, 5, 4), jnp.float32), output_size=(12,)).shape
    (1, 12, 2)
    """

    _spatial = 1
    torch_channel_axis = {3: 1, 2: 0}


class ConvTranspose2d(_ConvTransposeNd):
    """``torch.nn.ConvTranspose2d`` (the gradient of a ``Conv2d`` with respect to its input), NHWC.

    Maps ``(N, H, W, in_channels)`` to ``(N, Ho, Wo, out_channels)`` with
    ``Ho = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1``.
    The kernel is ``(kh, kw, in_channels, out_channels // groups)``: torch's weight
    ``(I, O/g, kh, kw)`` with its spatial axes first (``weight.transpose(2, 3, 0, 1)``).
    ``output_padding`` (less than ``stride`` or ``dilation``, as torch requires) adds rows and
    columns at the bottom/right; ``layer(x, output_size=...)`` picks it from the wanted size, as
    torch's ``forward(input, output_size)``. Initialised as torch, whose fan-in for this weight
    is ``out_channels // groups * kh * kw`` (its axis 1). Only ``padding_mode="zeros"``, as
    torch.

    >>> up = ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, rngs=nnx.Rngs(0))
    >>> up(jnp.ones((1, 5, 5, 4), jnp.float32)).shape
    (1, 10, 10, 2)
    """

    _spatial = 2
    torch_channel_axis = {4: 1, 3: 0}


class ConvTranspose3d(_ConvTransposeNd):
    """``torch.nn.ConvTranspose3d`` on ``(N, D, H, W, C)`` with a ``(kd, kh, kw, I, O // groups)``
    kernel (torch's weight ``(I, O/g, kd, kh, kw)`` is ``kernel.transpose(2, 3, 4, 0, 1)``);
    see :class:`ConvTranspose2d` for the options.

    >>> up = ConvTranspose3d(2, 3, 2, stride=2, rngs=nnx.Rngs(0))
    >>> up(jnp.ones((1, 2, 3, 4, 2), jnp.float32)).shape
    (1, 4, 6, 8, 3)
    """

    _spatial = 3
    torch_channel_axis = {5: 1, 4: 0}
