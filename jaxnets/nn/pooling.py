"""2-D pooling on channels-last ``(N, H, W, C)`` (or unbatched ``(H, W, C)``) inputs.

Output sizes follow torch's ``pooling_output_shape``: ``floor`` (or ``ceil`` with ``ceil_mode``)
of ``(size + 2*padding - dilation*(kernel-1) - 1) / stride + 1``, where in ``ceil_mode`` a last
window that would start in the right padding is dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax
from jax.typing import ArrayLike

from jaxnets.nn._args import expect_rank, ntuple, positive

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]


def _output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _batched(layer: str, x: ArrayLike) -> tuple[jax.Array, bool]:
    x = jnp.asarray(x)
    expect_rank(layer, x, (3, 4), "(N, H, W, C)")
    return (x[None], True) if x.ndim == 3 else (x, False)


class _Pool2d(nnx.Module):
    """Window geometry shared by the max and average pools."""

    def _geometry(
        self, layer: str, x: jax.Array, dilation: tuple[int, int]
    ) -> tuple[tuple[int, int], list[tuple[int, int]]]:
        """Output size and the ``(low, high)`` padding of H and W that ``reduce_window`` needs."""
        sizes, pads = [], []
        for size, k, s, p, d in zip(
            x.shape[1:3], self.kernel_size, self.stride, self.padding, dilation, strict=True
        ):
            out = _output_size(size, k, s, p, d, self.ceil_mode)
            if out < 1:
                raise ValueError(
                    f"{layer}: output size is too small for input {x.shape} with kernel "
                    f"{self.kernel_size}, stride {self.stride}, padding {self.padding}"
                )
            # ceil_mode's last window may overhang the right padding: pad it too.
            overhang = (out - 1) * s + d * (k - 1) + 1 - (size + 2 * p)
            sizes.append(out)
            pads.append((p, p + max(overhang, 0)))
        return (sizes[0], sizes[1]), pads


def _check_padding(layer: str, padding: Sequence[int], reach: Sequence[int]) -> None:
    for p, r in zip(padding, reach, strict=True):
        if 2 * p > r:
            raise ValueError(
                f"{layer}: pad should be at most half of effective kernel size, got "
                f"padding={tuple(padding)} for kernel reach {tuple(reach)}"
            )


class MaxPool2d(_Pool2d):
    """``torch.nn.MaxPool2d`` on channels-last input; padding never wins (it is ``-inf``).

    Arguments and defaults as torch (``stride=None`` means ``kernel_size``). The gradient goes
    to one maximum of each window, as torch's. ``return_indices=True`` is not supported (torch's
    indices address its own NCHW layout): it raises ``NotImplementedError``.

    >>> pool = MaxPool2d(2)
    >>> pool(jnp.arange(16.0, dtype=jnp.float32).reshape(1, 4, 4, 1))[0, ..., 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """

    torch_channel_axis = {4: 1, 3: 0}

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ):
        if return_indices:
            raise NotImplementedError(
                "MaxPool2d(return_indices=True) is not supported: torch's indices address "
                "NCHW storage, which channels-last arrays do not have"
            )
        self.kernel_size = ntuple("kernel_size", kernel_size, 2)
        self.stride = ntuple("stride", kernel_size if stride is None else stride, 2)
        self.padding = ntuple("padding", padding, 2, minimum=0)
        self.dilation = ntuple("dilation", dilation, 2)
        self.ceil_mode = ceil_mode
        reach = [d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation, strict=True)]
        _check_padding("MaxPool2d", self.padding, reach)

    def __call__(self, x: ArrayLike) -> jax.Array:
        x, unbatched = _batched("MaxPool2d", x)
        out, pads = self._geometry("MaxPool2d", x, self.dilation)
        lowest = -np.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
        # A NumPy init value: reduce_window recognises max (and its gradient) only from a
        # concrete identity, which a jnp constant under jit is not.
        lowest = np.asarray(lowest, x.dtype)
        if self.dilation == (1, 1):
            y = lax.reduce_window(
                x,
                lowest,
                lax.max,
                (1, *self.kernel_size, 1),
                (1, *self.stride, 1),
                [(0, 0), *pads, (0, 0)],
            )
        else:
            y = self._dilated(x, out, pads, lowest)
        return y[0] if unbatched else y

    def _dilated(
        self, x: jax.Array, out: tuple[int, int], pads: list[tuple[int, int]], lowest: np.ndarray
    ) -> jax.Array:
        """Max over the window's taps (strided slices): JAX has no gradient for a dilated
        ``reduce_window`` max. The gradient goes to the first maximum in window order, torch's
        choice, through a one-hot selection."""
        x = lax.pad(x, lowest, [(0, 0, 0), (*pads[0], 0), (*pads[1], 0), (0, 0, 0)])
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        n, _, _, c = x.shape
        taps = jnp.stack(
            [
                lax.slice(
                    x,
                    (0, i * dh, j * dw, 0),
                    (n, i * dh + (out[0] - 1) * sh + 1, j * dw + (out[1] - 1) * sw + 1, c),
                    (1, sh, sw, 1),
                )
                for i in range(kh)
                for j in range(kw)
            ]
        )
        first = jnp.argmax(taps, axis=0)
        chosen = jnp.arange(kh * kw).reshape(-1, 1, 1, 1, 1) == first[None]
        return jnp.sum(jnp.where(chosen, taps, jnp.zeros((), x.dtype)), axis=0)


class AvgPool2d(_Pool2d):
    """``torch.nn.AvgPool2d`` on channels-last input, with torch's divisors.

    Each window's sum is divided by ``divisor_override`` if given; else, with
    ``count_include_pad`` (the default), by the window's size clipped to the padded input (a
    ``ceil_mode`` overhang does not count); else by the number of real input elements it covers.

    >>> pool = AvgPool2d(2, padding=1, count_include_pad=False)
    >>> pool(jnp.ones((1, 3, 3, 1), jnp.float32))[0, ..., 0].tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """

    torch_channel_axis = {4: 1, 3: 0}

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ):
        self.kernel_size = ntuple("kernel_size", kernel_size, 2)
        self.stride = ntuple("stride", kernel_size if stride is None else stride, 2)
        self.padding = ntuple("padding", padding, 2, minimum=0)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = (
            None if divisor_override is None else positive("divisor_override", divisor_override)
        )
        _check_padding("AvgPool2d", self.padding, self.kernel_size)

    def _divisors(self, size: int, out: int, axis: int) -> np.ndarray:
        """Per-output window lengths along one axis, as torch's avg_pool2d counts them."""
        k, s, p = self.kernel_size[axis], self.stride[axis], self.padding[axis]
        start = np.arange(out) * s - p
        end = np.minimum(start + k, size + p)
        if self.count_include_pad:
            return end - start
        return np.maximum(np.minimum(end, size) - np.maximum(start, 0), 1)

    def __call__(self, x: ArrayLike) -> jax.Array:
        x, unbatched = _batched("AvgPool2d", x)
        out, pads = self._geometry("AvgPool2d", x, (1, 1))
        sums = lax.reduce_window(
            x,
            np.zeros((), x.dtype),  # concrete, so reduce_window knows the sum and its gradient
            lax.add,
            (1, *self.kernel_size, 1),
            (1, *self.stride, 1),
            [(0, 0), *pads, (0, 0)],
        )
        if self.divisor_override is not None:
            divisor = np.full(out, float(self.divisor_override))
        else:
            divisor = np.outer(
                self._divisors(x.shape[1], out[0], 0), self._divisors(x.shape[2], out[1], 1)
            )
        y = sums / jnp.asarray(divisor, x.dtype).reshape(1, *out, 1)
        return y[0] if unbatched else y


def _bin_matrix(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 ``(out, size)`` membership of torch's adaptive bins and each bin's length."""
    starts = [(i * size) // out for i in range(out)]
    # Integer ceil: float division could round (i+1)*size/out across an integer.
    ends = [-(-((i + 1) * size) // out) for i in range(out)]
    members = np.zeros((out, size))
    for i, (a, b) in enumerate(zip(starts, ends, strict=True)):
        members[i, a:b] = 1.0
    return members, np.asarray(ends) - np.asarray(starts)


class AdaptiveAvgPool2d(nnx.Module):
    """``torch.nn.AdaptiveAvgPool2d``: average over torch's adaptive bins to a fixed output size.

    Output cell ``i`` of an axis of length ``size`` averages ``[floor(i*size/out),
    ceil((i+1)*size/out))``; bins may overlap. ``output_size`` is an int or a pair whose ``None``
    entries keep the input's size.

    >>> pool = AdaptiveAvgPool2d((1, None))
    >>> pool(jnp.ones((2, 5, 3, 4), jnp.float32)).shape
    (2, 1, 3, 4)
    """

    torch_channel_axis = {4: 1, 3: 0}

    def __init__(self, output_size: int | None | Sequence[int | None]):
        sizes = (output_size, output_size) if not isinstance(output_size, Sequence) else output_size
        if len(sizes) != 2:
            raise ValueError(f"output_size must be an int or a pair, got {output_size!r}")
        self.output_size = tuple(None if s is None else positive("output_size", s) for s in sizes)

    def __call__(self, x: ArrayLike) -> jax.Array:
        x, unbatched = _batched("AdaptiveAvgPool2d", x)
        out = [
            size if o is None else o for size, o in zip(x.shape[1:3], self.output_size, strict=True)
        ]
        rows, row_len = _bin_matrix(x.shape[1], out[0])
        cols, col_len = _bin_matrix(x.shape[2], out[1])
        # Sums by 0/1 matrices are exact additions; HIGHEST keeps float32 from TF32/bf16 passes.
        sums = jnp.einsum(
            "ih,jw,nhwc->nijc",
            jnp.asarray(rows, x.dtype),
            jnp.asarray(cols, x.dtype),
            x,
            precision=lax.Precision.HIGHEST,
        )
        counts = np.outer(row_len, col_len).astype(float)
        y = sums / jnp.asarray(counts, x.dtype).reshape(1, *out, 1)
        return y[0] if unbatched else y
