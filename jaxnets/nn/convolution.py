"""Convolutions on channels-last inputs: ``Conv1d``, ``Conv2d``, ``ConvTranspose2d``.

Activations are ``(N, *spatial, C)`` and kernels spatial-first (``WIO`` / ``HWIO``), the layouts
XLA runs fastest; ``torch_state`` maps them to torch's ``(N, C, *spatial)``-world weights. Every
convolution runs through :func:`jaxnets.conv.conv2d` (im2col on CPU, XLA's convolution
elsewhere), a 1-D one as a 2-D one of height 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from jaxnets import conv
from jaxnets.nn._args import expect_channels, expect_rank, ntuple, positive
from jaxnets.nn.init import bias_bound, kaiming_uniform, torch_uniform
from jaxnets.nn.state import TorchEntry, same, transposed

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]

_PAD_MODES = {"zeros": None, "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class _ConvNd(nnx.Module):
    """Shared constructor and forward of ``Conv1d`` / ``Conv2d`` (``_spatial`` = 1 or 2)."""

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
            if padding not in ("valid", "same"):
                raise ValueError(f"padding must be 'valid', 'same' or ints, got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
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
        if self.padding == "valid":
            return [(0, 0)] * self._spatial
        if self.padding == "same":
            # torch puts the odd extra pad on the right/bottom, as XLA's SAME does.
            pads = []
            for k, d in zip(self.kernel_size, self.dilation, strict=True):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return pads
        return [(p, p) for p in self.padding]

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x)
        n = self._spatial
        name = type(self).__name__
        layout = "(N, L, C)" if n == 1 else "(N, H, W, C)"
        expect_rank(name, x, (n + 1, n + 2), layout)
        expect_channels(name, x, self.in_channels)
        unbatched = x.ndim == n + 1
        if unbatched:
            x = x[None]
        pads = self._explicit_padding()
        mode = _PAD_MODES[self.padding_mode]
        if mode is not None:
            x = jnp.pad(x, [(0, 0), *pads, (0, 0)], mode=mode)
            pads = [(0, 0)] * n
        kernel = self.kernel[...]
        stride, dilation = self.stride, self.dilation
        if n == 1:
            # A 1-D convolution is a 2-D one over a height-1 image.
            x, kernel = x[:, None], kernel[None]
            stride, dilation, pads = (1, *stride), (1, *dilation), [(0, 0), *pads]
        y = conv.conv2d(x, kernel, stride, pads, dilation, self.groups)
        if n == 1:
            y = y[:, 0]
        if self.bias is not None:
            y = y + jnp.broadcast_to(self.bias[...], y.shape)
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


class ConvTranspose2d(nnx.Module):
    """``torch.nn.ConvTranspose2d`` (the gradient of a ``Conv2d`` with respect to its input), NHWC.

    Maps ``(N, H, W, in_channels)`` to ``(N, Ho, Wo, out_channels)`` with
    ``Ho = (H - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1``.
    The kernel is ``(kh, kw, in_channels, out_channels // groups)``: torch's weight
    ``(I, O/g, kh, kw)`` with its spatial axes first (``weight.transpose(2, 3, 0, 1)``).
    ``output_padding`` (less than ``stride`` or ``dilation``, as torch requires) adds rows and
    columns at the bottom/right. Initialised as torch, whose fan-in for this weight is
    ``out_channels // groups * kh * kw`` (its axis 1). torch's ``forward(input, output_size)``
    is not offered: pass ``output_padding`` instead. Only ``padding_mode="zeros"``, as torch.

    >>> up = ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, rngs=nnx.Rngs(0))
    >>> up(jnp.ones((1, 5, 5, 4), jnp.float32)).shape
    (1, 10, 10, 2)
    """

    torch_channel_axis = {4: 1, 3: 0}

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
        self.in_channels = positive("in_channels", in_channels)
        self.out_channels = positive("out_channels", out_channels)
        self.groups = positive("groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        if padding_mode != "zeros":
            raise ValueError(
                f'Only "zeros" padding mode is supported for ConvTranspose2d, got {padding_mode!r}'
            )
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d padding must be ints, got {padding!r}")
        self.kernel_size = ntuple("kernel_size", kernel_size, 2)
        self.stride = ntuple("stride", stride, 2)
        self.padding = ntuple("padding", padding, 2, minimum=0)
        self.output_padding = ntuple("output_padding", output_padding, 2, minimum=0)
        self.dilation = ntuple("dilation", dilation, 2)
        for op, s, d in zip(self.output_padding, self.stride, self.dilation, strict=True):
            if op >= s and op >= d:
                raise ValueError(
                    f"output_padding must be smaller than either stride or dilation, got "
                    f"output_padding={self.output_padding}, stride={self.stride}, "
                    f"dilation={self.dilation}"
                )
        kh, kw = self.kernel_size
        fan_in = out_channels // groups * kh * kw
        self.kernel = nnx.Param(
            kaiming_uniform(fan_in)(
                rngs.params(), (kh, kw, in_channels, out_channels // groups), dtype
            )
        )
        self.bias = (
            nnx.Param(torch_uniform(bias_bound(fan_in))(rngs.params(), (out_channels,), dtype))
            if bias
            else None
        )

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight`` ``(I, O/g, kh, kw)`` <-> ``kernel`` ``(kh, kw, I, O/g)``; ``bias`` as is."""
        entries = {"weight": transposed("kernel", (2, 3, 0, 1))}
        if self.bias is not None:
            entries["bias"] = same("bias")
        return entries

    def _forward_kernel(self) -> jax.Array:
        """The HWIO kernel of the equivalent stride-1 convolution: flipped, I and O swapped.

        Group ``j`` maps input channels ``j*I/g ...`` to output channels ``j*O/g ...``, so the
        forward kernel is ``(kh, kw, I/g, O)`` with its output axis group-major.
        """
        kh, kw, channels_in, group_out = self.kernel.shape
        g = self.groups
        kernel = self.kernel[...][::-1, ::-1].reshape(kh, kw, g, channels_in // g, group_out)
        kernel = jnp.transpose(kernel, (0, 1, 3, 2, 4))
        return kernel.reshape(kh, kw, channels_in // g, g * group_out)

    def _output_size(self, size: int, axis: int) -> int:
        k, s, p = self.kernel_size[axis], self.stride[axis], self.padding[axis]
        d, op = self.dilation[axis], self.output_padding[axis]
        return (size - 1) * s - 2 * p + d * (k - 1) + op + 1

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x)
        expect_rank("ConvTranspose2d", x, (3, 4), "(N, H, W, C)")
        expect_channels("ConvTranspose2d", x, self.in_channels)
        unbatched = x.ndim == 3
        if unbatched:
            x = x[None]
        out = tuple(self._output_size(size, axis) for axis, size in enumerate(x.shape[1:3]))
        if min(out) < 1:
            raise ValueError(f"ConvTranspose2d output size {out} from input {x.shape} is empty")
        # The transpose of a strided convolution: spread the input by the stride (interior
        # zeros), pad by the dilated kernel's reach less torch's padding (negative pads crop),
        # then a stride-1 convolution with the flipped kernel.
        config = [(0, 0, 0)]
        for k, s, p, op, d in zip(
            self.kernel_size,
            self.stride,
            self.padding,
            self.output_padding,
            self.dilation,
            strict=True,
        ):
            reach = d * (k - 1) - p
            config.append((reach, reach + op, s - 1))
        config.append((0, 0, 0))
        x = lax.pad(x, jnp.zeros((), x.dtype), config)
        y = conv.conv2d(
            x, self._forward_kernel(), (1, 1), [(0, 0), (0, 0)], self.dilation, self.groups
        )
        if self.bias is not None:
            y = y + jnp.broadcast_to(self.bias[...], y.shape)
        return y[0] if unbatched else y
