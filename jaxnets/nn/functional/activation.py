"""torch.nn.functional's activations, with torch's values and torch's gradients at every kink.

Where a function has a kink, the branch that owns the kink point is the one torch's backward
formula gives it (``derivatives.yaml``): ``relu``, ``leaky_relu``, ``prelu``, ``elu`` and
``threshold`` treat ``x == 0`` (``x == threshold``) as the lower branch; ``hardtanh``,
``relu6`` and ``hardsigmoid`` pass no gradient at either end of their linear piece;
``hardshrink`` and ``softshrink`` none at ``|x| == lambd``; ``hardswish`` takes the quadratic
piece's slope at ``±3``. Writing each piece with ``jnp.where`` on the same comparison makes JAX's
gradient the same.

Functions that take a ``dim`` index the array as it is: they are not spatial, so they carry
no ``layout`` (on channels-last data, torch's ``dim=1`` over channels is ``dim=-1`` here).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jaxnets.nn import random

__all__ = [
    "relu",
    "relu6",
    "elu",
    "selu",
    "celu",
    "leaky_relu",
    "prelu",
    "rrelu",
    "glu",
    "gelu",
    "logsigmoid",
    "hardshrink",
    "tanhshrink",
    "softsign",
    "softplus",
    "softmin",
    "softmax",
    "log_softmax",
    "softshrink",
    "tanh",
    "sigmoid",
    "hardsigmoid",
    "silu",
    "mish",
    "hardswish",
    "hardtanh",
    "threshold",
    "get",
]

# torch's SELU constants (Klambauer et al., 2017), as torch's kernel spells them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _float(x: ArrayLike, name: str) -> jax.Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"{name} expects a floating-point input, got {x.dtype}")
    return x


def _const(value: float, like: jax.Array) -> jax.Array:
    return jnp.asarray(value, like.dtype)


def relu(input: ArrayLike, inplace: bool = False) -> jax.Array:  # noqa: A002 - torch's name
    """``max(x, 0)``; gradient 0 at 0. ``inplace`` is accepted (arrays are immutable).

    >>> relu(jnp.asarray([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    """
    x = _float(input, "relu")
    return jnp.where(x > 0, x, _const(0.0, x))


def threshold(
    input: ArrayLike,  # noqa: A002
    threshold: float,
    value: float,
    inplace: bool = False,
) -> jax.Array:
    """``x`` where ``x > threshold``, else ``value``; gradient 0 at and below the threshold."""
    x = _float(input, "threshold")
    return jnp.where(x > threshold, x, _const(value, x))


def hardtanh(
    input: ArrayLike,  # noqa: A002
    min_val: float = -1.0,
    max_val: float = 1.0,
    inplace: bool = False,
) -> jax.Array:
    """``clip(x, min_val, max_val)``; gradient 1 strictly inside, 0 at and beyond the ends."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) cannot be greater than max_val")
    x = _float(input, "hardtanh")
    inside = (x > min_val) & (x < max_val)
    return jnp.where(inside, x, jnp.where(x <= min_val, _const(min_val, x), _const(max_val, x)))


def relu6(input: ArrayLike, inplace: bool = False) -> jax.Array:  # noqa: A002
    """``hardtanh(x, 0, 6)``."""
    return hardtanh(input, 0.0, 6.0)


@jax.custom_jvp
def _expm1(x: jax.Array) -> jax.Array:
    """``expm1`` whose derivative is ``exp(x)``, as torch's ELU backward computes it; JAX's own
    (``expm1(x) + 1``) loses the low digits where ``exp(x)`` is small."""
    return jnp.expm1(x)


@_expm1.defjvp
def _expm1_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]):
    (x,), (dx,) = primals, tangents
    return jnp.expm1(x), jnp.exp(x) * dx


def _elu(x: jax.Array, alpha: float, scale: float, input_scale: float) -> jax.Array:
    # torch's elu kernel: the negative branch owns 0 (its backward tests x <= 0).
    negative = _const(alpha * scale, x) * _expm1(x * _const(input_scale, x))
    return jnp.where(x > 0, x * _const(scale, x), negative)


def elu(input: ArrayLike, alpha: float = 1.0, inplace: bool = False) -> jax.Array:  # noqa: A002
    """``x`` if ``x > 0`` else ``alpha * (exp(x) - 1)``.

    >>> [round(v, 4) for v in elu(jnp.asarray([-1.0, 2.0])).tolist()]
    [-0.6321, 2.0]
    """
    return _elu(_float(input, "elu"), alpha, 1.0, 1.0)


def selu(input: ArrayLike, inplace: bool = False) -> jax.Array:  # noqa: A002
    """``scale * elu(x, alpha)`` with torch's constants (``SELU_SCALE``, ``SELU_ALPHA``)."""
    return _elu(_float(input, "selu"), SELU_ALPHA, SELU_SCALE, 1.0)


def celu(input: ArrayLike, alpha: float = 1.0, inplace: bool = False) -> jax.Array:  # noqa: A002
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``; ``alpha`` must not be 0."""
    if alpha == 0:
        raise ValueError("ZeroDivisionError: alpha cannot be 0 for CELU")
    return _elu(_float(input, "celu"), alpha, 1.0, 1.0 / alpha)


def leaky_relu(
    input: ArrayLike,  # noqa: A002
    negative_slope: float = 0.01,
    inplace: bool = False,
) -> jax.Array:
    """``x`` if ``x > 0`` else ``negative_slope * x`` (the slope is the gradient at 0)."""
    x = _float(input, "leaky_relu")
    return jnp.where(x > 0, x, x * _const(negative_slope, x))


def prelu(
    input: ArrayLike,  # noqa: A002
    weight: ArrayLike,
    *,
    layout: str = "channels_last",
) -> jax.Array:
    """``x`` if ``x > 0`` else ``weight * x``, one slope per channel (or one for all).

    ``weight`` has 1 entry (or is 0-d) or one per channel; the channel axis is the last with
    ``layout="channels_last"`` and torch's axis 1 (axis 0 of a 1-D input) with
    ``"channels_first"``.
    """
    x = _float(input, "prelu")
    weight = jnp.asarray(weight, x.dtype)
    if weight.ndim > 1:
        raise ValueError(f"prelu: weight must be 0-D or 1-D, got shape {weight.shape}")
    weight = weight.reshape(-1)
    if weight.size == 1:
        slope = weight.reshape((1,) * x.ndim) if x.ndim else weight.reshape(())
        slope = jnp.broadcast_to(slope, x.shape)
    else:
        if layout not in ("channels_last", "channels_first"):
            raise ValueError(f"layout must be 'channels_last' or 'channels_first', got {layout!r}")
        axis = x.ndim - 1 if layout == "channels_last" or x.ndim < 2 else 1
        if x.ndim == 0 or x.shape[axis] != weight.size:
            raise ValueError(
                f"prelu: {weight.size} slopes do not match input {x.shape} ({layout} channels)"
            )
        shape = [1] * x.ndim
        shape[axis] = weight.size
        slope = jnp.broadcast_to(weight.reshape(shape), x.shape)
    return jnp.where(x > 0, x, slope * x)


def rrelu(
    input: ArrayLike,  # noqa: A002
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
    *,
    key: jax.Array | None = None,
) -> jax.Array:
    """Randomised leaky ReLU: slope ``U(lower, upper)`` per negative element when
    ``training`` (drawn with ``key``), ``(lower + upper) / 2`` otherwise.

    ``key`` is a key, an ``nnx.Rngs`` (its ``dropout`` stream) or a stream. torch's and JAX's
    random streams differ, so only evaluation, ``lower == upper`` or a replay of torch's draws
    (see :mod:`jaxnets.nn.random`; torch draws the slopes with ``rrelu_with_noise``) is
    torch-exact.
    """
    x = _float(input, "rrelu")
    if not training:
        return leaky_relu(x, (lower + upper) / 2)
    if key is None and random.active() is None:
        raise ValueError("rrelu(training=True) needs a random key: pass key=")
    slope = random.uniform(x.shape, x.dtype, low=lower, high=upper, rngs=key, stream="dropout")
    return jnp.where(x >= 0, x, x * slope)


def glu(input: ArrayLike, dim: int = -1) -> jax.Array:  # noqa: A002
    """``a * sigmoid(b)`` where ``a, b`` are the halves of ``input`` along ``dim``."""
    x = _float(input, "glu")
    if x.ndim == 0:
        raise ValueError("glu does not support scalars because halving size must be even")
    axis = dim + x.ndim if dim < 0 else dim
    if not 0 <= axis < x.ndim:
        raise IndexError(f"glu: dim {dim} is out of range for shape {x.shape}")
    if x.shape[axis] % 2:
        raise ValueError(
            f"Halving dimension must be even, but dimension {axis} is size {x.shape[axis]}"
        )
    a, b = jnp.split(x, 2, axis=axis)
    return a * jax.nn.sigmoid(b)


def gelu(input: ArrayLike, approximate: str = "none") -> jax.Array:  # noqa: A002
    """``x * Phi(x)`` with the exact erf form, or torch's ``approximate="tanh"`` formula.

    >>> [round(v, 4) for v in gelu(jnp.asarray([0.0, 1.0]), approximate="tanh").tolist()]
    [0.0, 0.8412]
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    x = _float(input, "gelu")
    if approximate == "tanh":
        inner = _const(math.sqrt(2.0 / math.pi), x) * (x + _const(0.044715, x) * x * x * x)
        return _const(0.5, x) * x * (1 + jnp.tanh(inner))
    return x * _const(0.5, x) * (1 + jax.lax.erf(x * _const(1.0 / math.sqrt(2.0), x)))


def logsigmoid(input: ArrayLike) -> jax.Array:  # noqa: A002
    """``log(sigmoid(x))`` computed stably as ``min(x, 0) - log1p(exp(-|x|))``."""
    x = _float(input, "logsigmoid")
    return jnp.minimum(x, _const(0.0, x)) - jnp.log1p(jnp.exp(-jnp.abs(x)))


def hardshrink(input: ArrayLike, lambd: float = 0.5) -> jax.Array:  # noqa: A002
    """``x`` where ``|x| > lambd``, else 0."""
    x = _float(input, "hardshrink")
    return jnp.where((x >= -lambd) & (x <= lambd), _const(0.0, x), x)


def softshrink(input: ArrayLike, lambd: float = 0.5) -> jax.Array:  # noqa: A002
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0 (``lambd >= 0``)."""
    if lambd < 0:
        raise ValueError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    x = _float(input, "softshrink")
    shrunk = jnp.where(x > lambd, x - _const(lambd, x), x + _const(lambd, x))
    return jnp.where((x >= -lambd) & (x <= lambd), _const(0.0, x), shrunk)


def tanhshrink(input: ArrayLike) -> jax.Array:  # noqa: A002
    """``x - tanh(x)``."""
    x = _float(input, "tanhshrink")
    return x - jnp.tanh(x)


def softsign(input: ArrayLike) -> jax.Array:  # noqa: A002
    """``x / (1 + |x|)``."""
    x = _float(input, "softsign")
    return x / (1 + jnp.abs(x))


def softplus(input: ArrayLike, beta: float = 1.0, threshold: float = 20.0) -> jax.Array:  # noqa: A002
    """``log1p(exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold``."""
    x = _float(input, "softplus")
    scaled = x * _const(beta, x)
    above = scaled > threshold
    # The unused branch is fed a safe value so that its gradient is not NaN.
    safe = jnp.where(above, _const(0.0, x), scaled)
    return jnp.where(above, x, jnp.log1p(jnp.exp(safe)) / _const(beta, x))


def _axis(x: jax.Array, dim: int | None, name: str) -> int:
    if dim is None:
        raise ValueError(
            f"{name} needs an explicit dim: torch's implicit choice (deprecated) depends on the "
            f"rank and would pick another axis on channels-last data"
        )
    rank = max(x.ndim, 1)
    if not -rank <= dim < rank:
        raise IndexError(f"{name}: dim {dim} is out of range for shape {x.shape}")
    return dim % rank


def _over_axis(fn: Callable[..., jax.Array], x: jax.Array, axis: int) -> jax.Array:
    if x.ndim == 0:  # torch treats a 0-d tensor as one element along dim 0
        return fn(x.reshape(1), axis=0).reshape(())
    return fn(x, axis=axis)


def _cast(x: jax.Array, dtype: object) -> jax.Array:
    return x if dtype is None else x.astype(dtype)


def softmax(
    input: ArrayLike,  # noqa: A002
    dim: int | None = None,
    _stacklevel: int = 3,
    dtype: object = None,
) -> jax.Array:
    """``exp(x) / sum(exp(x))`` along ``dim`` (an axis of the array as it is; required).

    >>> softmax(jnp.zeros((2, 4)), dim=1)[0].tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    x = _cast(_float(input, "softmax"), dtype)
    return _over_axis(jax.nn.softmax, x, _axis(x, dim, "softmax"))


def softmin(
    input: ArrayLike,  # noqa: A002
    dim: int | None = None,
    _stacklevel: int = 3,
    dtype: object = None,
) -> jax.Array:
    """``softmax(-x)`` along ``dim``."""
    x = _cast(_float(input, "softmin"), dtype)
    return _over_axis(jax.nn.softmax, -x, _axis(x, dim, "softmin"))


def log_softmax(
    input: ArrayLike,  # noqa: A002
    dim: int | None = None,
    _stacklevel: int = 3,
    dtype: object = None,
) -> jax.Array:
    """``x - logsumexp(x)`` along ``dim``."""
    x = _cast(_float(input, "log_softmax"), dtype)
    return _over_axis(jax.nn.log_softmax, x, _axis(x, dim, "log_softmax"))


@jax.custom_jvp
def _tanh(x: jax.Array) -> jax.Array:
    return jnp.tanh(x)


@_tanh.defjvp
def _tanh_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]):
    # sech(x)**2 rather than 1 - tanh(x)**2: XLA's float32 tanh rounds to 1 from |x| ~ 7.9 on,
    # where the true slope (and torch's, ~4e-7) is not yet 0.
    (x,), (dx,) = primals, tangents
    return jnp.tanh(x), dx * jnp.square(1 / jnp.cosh(x))


def tanh(input: ArrayLike) -> jax.Array:  # noqa: A002
    """``tanh(x)``, with a gradient accurate where ``tanh(x)`` rounds to 1 in float32."""
    return _tanh(_float(input, "tanh"))


def sigmoid(input: ArrayLike) -> jax.Array:  # noqa: A002
    """``1 / (1 + exp(-x))``."""
    return jax.nn.sigmoid(_float(input, "sigmoid"))


# torch's hardsigmoid backward multiplies by 1/6 rounded to float32, in every dtype.
_ONE_SIXTH_F32 = float(np.float32(1.0) / np.float32(6.0))


@jax.custom_jvp
def _hardsigmoid(x: jax.Array) -> jax.Array:
    inside = (x > -3) & (x < 3)
    outside = jnp.where(x <= -3, _const(0.0, x), _const(1.0, x))
    return jnp.where(inside, x / 6 + _const(0.5, x), outside)


@_hardsigmoid.defjvp
def _hardsigmoid_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]):
    (x,), (dx,) = primals, tangents
    inside = (x > -3) & (x < 3)
    slope = jnp.where(inside, _const(_ONE_SIXTH_F32, x), _const(0.0, x))
    return _hardsigmoid(x), dx * slope


def hardsigmoid(input: ArrayLike, inplace: bool = False) -> jax.Array:  # noqa: A002
    """``relu6(x + 3) / 6``; gradient ``1/6`` strictly inside ``(-3, 3)``, else 0 (torch's
    ``1/6`` is rounded to float32 even for float64, and so is this one)."""
    return _hardsigmoid(_float(input, "hardsigmoid"))


def silu(input: ArrayLike, inplace: bool = False) -> jax.Array:  # noqa: A002
    """``x * sigmoid(x)``."""
    x = _float(input, "silu")
    return x * jax.nn.sigmoid(x)


def mish(input: ArrayLike, inplace: bool = False) -> jax.Array:  # noqa: A002
    """``x * tanh(softplus(x))``."""
    x = _float(input, "mish")
    return x * jnp.tanh(jax.nn.softplus(x))


def hardswish(input: ArrayLike, inplace: bool = False) -> jax.Array:  # noqa: A002
    """``x * relu6(x + 3) / 6``; at ``±3`` the gradient is the quadratic piece's, as torch's."""
    x = _float(input, "hardswish")
    quadratic = x * (x + 3) / 6
    return jnp.where(x < -3, _const(0.0, x), jnp.where(x <= 3, quadratic, x))


_BY_NAME: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": relu,
    "gelu": gelu,
    "tanh": tanh,
    "sigmoid": sigmoid,
    "silu": silu,
    "elu": elu,
    "selu": selu,
    "celu": celu,
    "leaky_relu": leaky_relu,
    "relu6": relu6,
    "mish": mish,
    "softsign": softsign,
    "softplus": softplus,
    "logsigmoid": logsigmoid,
    "hardswish": hardswish,
    "hardsigmoid": hardsigmoid,
    "hardtanh": hardtanh,
    "tanhshrink": tanhshrink,
}


def get(activation: str | Callable[[jax.Array], jax.Array]) -> Callable[[jax.Array], jax.Array]:
    """An activation by torch's functional name (``"relu"``, ``"gelu"``, ...) or a callable.

    >>> get("relu") is relu, get(jnp.tanh) is jnp.tanh
    (True, True)
    """
    if callable(activation):
        return activation
    if activation not in _BY_NAME:
        raise ValueError(f"activation should be one of {sorted(_BY_NAME)}, not {activation!r}")
    return _BY_NAME[activation]
