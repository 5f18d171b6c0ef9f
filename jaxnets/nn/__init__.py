"""torch-default initialisers and NNX layers with torch's defaults in JAX-native layouts.

``Linear`` stores its kernel as ``(in_features, out_features)`` and ``Conv2d`` takes NHWC inputs
with an HWIO kernel: the layouts XLA runs fastest. ``parity.convert`` maps them to and from
torch's ``(out, in)`` and ``(O, I, kH, kW)``.

torch initialises both layers with ``kaiming_uniform_(a=sqrt(5))``, which is ``U(-1/sqrt(fan_in),
1/sqrt(fan_in))``, and biases with the same bound. Flax's defaults (lecun_normal kernels, zero
biases) differ, so a port that keeps them trains differently from the original.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from jaxnets import conv

__all__ = [
    "torch_uniform",
    "kaiming_uniform",
    "Linear",
    "Conv2d",
    "clamp_min",
    "abstract",
    "apply_pure",
]


def torch_uniform(bound: float) -> nnx.Initializer:
    """Initialiser drawing ``U(-bound, bound)``, torch's ``init.uniform_(t, -bound, bound)``.

    Args:
      bound: half-width of the interval.

    Returns:
      ``init(key, shape, dtype=float32) -> array of shape``.

    >>> w = torch_uniform(0.5)(jax.random.key(0), (3, 4), jnp.float32)
    >>> w.shape, bool(jnp.all(jnp.abs(w) <= 0.5))
    ((3, 4), True)
    """

    def init(key: jax.Array, shape: Sequence[int], dtype: DTypeLike = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, tuple(shape), dtype, minval=-bound, maxval=bound)

    return init


def kaiming_uniform(fan_in: int, a: float = math.sqrt(5.0)) -> nnx.Initializer:
    """torch's ``init.kaiming_uniform_(w, a)`` for a weight with ``fan_in`` inputs.

    ``bound = gain * sqrt(3 / fan_in)`` with ``gain = sqrt(2 / (1 + a**2))``; torch's default
    ``a = sqrt(5)`` gives ``bound = 1 / sqrt(fan_in)``. The fan is passed explicitly because JAX
    layouts put it on different axes than torch's.

    Args:
      fan_in: inputs per output unit.
      a: the negative slope torch's formula takes.

    Returns:
      ``init(key, shape, dtype=float32) -> array of shape``.

    >>> w = kaiming_uniform(4)(jax.random.key(0), (4, 2), jnp.float32)
    >>> w.shape, bool(jnp.all(jnp.abs(w) <= 0.5))
    ((4, 2), True)
    """
    gain = math.sqrt(2.0 / (1.0 + a * a))
    return torch_uniform(gain * math.sqrt(3.0 / fan_in))


def bias_bound(fan_in: int) -> float:
    """torch's bias bound ``1/sqrt(fan_in)`` (0 when the fan is empty).

    Args:
      fan_in: inputs per output unit.

    Returns:
      The bound, a Python float.

    >>> bias_bound(4), bias_bound(0)
    (0.5, 0.0)
    """
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def _positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _pair(name: str, value: int | Sequence[int]) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return (_positive(name, pair[0]), _positive(name, pair[1]))


class Linear(nnx.Module):
    """``torch.nn.Linear`` with a ``(in_features, out_features)`` kernel: ``y = x @ kernel + bias``.

    Maps ``(..., in_features)`` inputs to ``(..., out_features)``.

    Args:
      in_features: size of the last input axis.
      out_features: size of the last output axis.
      bias: learn an additive bias.
      dtype: parameter dtype.
      rngs: NNX random streams (``params`` is used).

    >>> layer = Linear(3, 2, rngs=nnx.Rngs(0))
    >>> layer(jnp.ones((4, 3), jnp.float32)).shape
    (4, 2)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.in_features = _positive("in_features", in_features)
        self.out_features = _positive("out_features", out_features)
        self.kernel = nnx.Param(
            kaiming_uniform(in_features)(rngs.params(), (in_features, out_features), dtype)
        )
        self.bias = (
            nnx.Param(torch_uniform(bias_bound(in_features))(rngs.params(), (out_features,), dtype))
            if bias
            else None
        )

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(
                f"Linear expected input with last dimension {self.in_features}, got shape {x.shape}"
            )
        y = x @ self.kernel[...]
        # Explicit broadcast: the library stays valid under jax_numpy_rank_promotion="raise".
        return y if self.bias is None else y + jnp.broadcast_to(self.bias[...], y.shape)


class Conv2d(nnx.Module):
    """``torch.nn.Conv2d`` on NHWC inputs with an HWIO kernel.

    Maps ``(N, H, W, in_channels)`` to ``(N, Ho, Wo, out_channels)``; the kernel is
    ``(kh, kw, in_channels // groups, out_channels)``. Args mirror torch: ``padding`` is an int,
    a pair, ``"valid"`` or ``"same"``; ``padding_mode`` is ``"zeros"``, ``"reflect"``,
    ``"replicate"`` or ``"circular"``. Unbatched ``(H, W, C)`` inputs are accepted as torch
    accepts ``(C, H, W)``.

    >>> conv = Conv2d(1, 6, 3, rngs=nnx.Rngs(0))
    >>> conv(jnp.ones((2, 32, 32, 1), jnp.float32)).shape
    (2, 30, 30, 6)
    """

    _PAD_MODES = {"zeros": None, "reflect": "reflect", "replicate": "edge", "circular": "wrap"}

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
        self.in_channels = _positive("in_channels", in_channels)
        self.out_channels = _positive("out_channels", out_channels)
        self.groups = _positive("groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        if padding_mode not in self._PAD_MODES:
            raise ValueError(
                f"padding_mode must be one of {tuple(self._PAD_MODES)}, got {padding_mode!r}"
            )
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.stride = _pair("stride", stride)
        self.dilation = _pair("dilation", dilation)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"padding must be 'valid', 'same' or ints, got {padding!r}")
            if padding == "same" and self.stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            pair = (padding, padding) if isinstance(padding, int) else tuple(padding)
            if len(pair) != 2 or any(p < 0 for p in pair):
                raise ValueError(f"padding must be non-negative ints, got {padding!r}")
            self.padding = pair
        self.padding_mode = padding_mode
        kh, kw = self.kernel_size
        fan_in = in_channels // groups * kh * kw
        self.kernel = nnx.Param(
            kaiming_uniform(fan_in)(
                rngs.params(), (kh, kw, in_channels // groups, out_channels), dtype
            )
        )
        self.bias = (
            nnx.Param(torch_uniform(bias_bound(fan_in))(rngs.params(), (out_channels,), dtype))
            if bias
            else None
        )

    def _explicit_padding(self) -> list[tuple[int, int]]:
        if self.padding == "valid":
            return [(0, 0), (0, 0)]
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
        unbatched = x.ndim == 3
        if unbatched:
            x = x[None]
        if x.ndim != 4 or x.shape[-1] != self.in_channels:
            raise ValueError(
                f"Conv2d expected NHWC input with {self.in_channels} channels, got shape {x.shape}"
            )
        pads = self._explicit_padding()
        mode = self._PAD_MODES[self.padding_mode]
        if mode is not None:
            x = jnp.pad(x, [(0, 0), *pads, (0, 0)], mode=mode)
            pads = [(0, 0), (0, 0)]
        # im2col on CPU, XLA's (cuDNN's) convolution elsewhere: see jaxnets.conv for why.
        y = conv.conv2d(x, self.kernel[...], self.stride, pads, self.dilation, self.groups)
        if self.bias is not None:
            y = y + jnp.broadcast_to(self.bias[...], y.shape)
        return y[0] if unbatched else y


def clamp_min(x: ArrayLike, min: float = 0.0) -> jax.Array:  # noqa: A002 - torch's keyword
    """``x.clamp(min=min)`` with torch's gradient: 1 where ``x >= min`` (ties included), else 0.

    ``jax.nn.relu`` has gradient 0 at 0 and ``jnp.maximum`` splits ties 0.5/0.5; torch's clamp
    passes the gradient through at the boundary, so the MLP port needs this form to match it.

    Args:
      x: an array of any shape.
      min: the lower bound.

    Returns:
      The clamped array, the shape and dtype of ``x``.

    >>> x = jnp.asarray([-1.0, 0.0, 2.0], jnp.float32)
    >>> clamp_min(x).tolist(), jax.grad(lambda v: jnp.sum(clamp_min(v)))(x).tolist()
    ([0.0, 0.0, 2.0], [0.0, 1.0, 1.0])
    """
    x = jnp.asarray(x)
    return jnp.where(x >= min, x, jnp.asarray(min, x.dtype))


@functools.cache
def abstract(module_type: type[nnx.Module]) -> tuple[nnx.GraphDef, dict[str, Any]]:
    """The graph definition and parameter shapes of ``module_type(rngs=...)``, traced once.

    Nothing is allocated: the module is built under ``nnx.eval_shape``. The graph definition is
    what ``nnx.merge`` needs to turn a pure parameter dict back into the module.

    Args:
      module_type: an NNX module class whose constructor takes ``rngs`` (and defaults otherwise).

    Returns:
      ``(graphdef, params)`` with ``params`` a pure dict of ``jax.ShapeDtypeStruct``.

    >>> class Tiny(nnx.Module):
    ...     def __init__(self, rngs):
    ...         self.fc = Linear(3, 2, rngs=rngs)
    ...     def __call__(self, x):
    ...         return self.fc(x)
    >>> jax.tree.map(lambda leaf: leaf.shape, abstract(Tiny)[1])
    {'fc': {'bias': (2,), 'kernel': (3, 2)}}
    >>> fc = {"kernel": jnp.ones((3, 2), jnp.float32), "bias": jnp.zeros(2, jnp.float32)}
    >>> params = {"fc": fc}
    >>> apply_pure(Tiny, params, jnp.ones((1, 3), jnp.float32)).tolist()
    [[3.0, 3.0]]
    """
    graphdef, state = nnx.split(nnx.eval_shape(lambda: module_type(rngs=nnx.Rngs(0))))
    return graphdef, nnx.to_pure_dict(state)


def apply_pure(module_type: type[nnx.Module], params: dict[str, Any], *args: Any) -> Any:
    """Call ``module_type`` with a pure parameter dict: the functional form of an NNX module.

    Args:
      module_type: the NNX module class (constructor takes ``rngs``).
      params: a pure dict shaped like ``abstract(module_type)[1]``.
      *args: the module's call arguments.

    Returns:
      Whatever the module returns.
    """
    return nnx.merge(abstract(module_type)[0], params)(*args)
