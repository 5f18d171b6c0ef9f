"""torch.nn's activation modules: thin wrappers over :mod:`jaxnets.nn.functional.activation`.

Each takes torch's constructor arguments (``inplace`` is accepted everywhere torch has it and
has no effect: JAX arrays are immutable) and calls the functional form with them; formulas and
the gradients at kinks are stated there once.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from jaxnets.nn import _args, random
from jaxnets.nn.functional import activation as F
from jaxnets.nn.state import TorchEntry, same

__all__ = [
    "ReLU",
    "ReLU6",
    "ELU",
    "SELU",
    "CELU",
    "LeakyReLU",
    "PReLU",
    "RReLU",
    "GLU",
    "GELU",
    "LogSigmoid",
    "Hardshrink",
    "Softshrink",
    "Tanhshrink",
    "Softsign",
    "Softplus",
    "Softmax",
    "Softmin",
    "LogSoftmax",
    "Softmax2d",
    "Tanh",
    "Sigmoid",
    "Hardsigmoid",
    "SiLU",
    "Mish",
    "Hardswish",
    "Hardtanh",
    "Threshold",
]


class _Activation(nnx.Module):
    """``forward(x) = _function(x, **self._options())``."""

    _function: ClassVar[Any]
    _fields: ClassVar[tuple[str, ...]] = ()

    def _options(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._fields}

    def __call__(self, input: ArrayLike) -> jax.Array:  # noqa: A002 - torch's keyword
        return type(self)._function(input, **self._options())

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self._options().items())
        return f"{type(self).__name__}({options})"


class ReLU(_Activation):
    """``torch.nn.ReLU``: :func:`~jaxnets.nn.functional.activation.relu`.

    >>> ReLU()(jnp.asarray([-1.0, 3.0])).tolist()
    [0.0, 3.0]
    """

    _function = F.relu

    def __init__(self, inplace: bool = False):
        del inplace


class ReLU6(_Activation):
    """``torch.nn.ReLU6``: ``hardtanh(x, 0, 6)``."""

    _function = F.relu6

    def __init__(self, inplace: bool = False):
        del inplace


class Hardtanh(_Activation):
    """``torch.nn.Hardtanh(min_val=-1, max_val=1)``."""

    _function = F.hardtanh
    _fields = ("min_val", "max_val")

    def __init__(
        self,
        min_val: float = -1.0,
        max_val: float = 1.0,
        inplace: bool = False,
        min_value: float | None = None,
        max_value: float | None = None,
    ):
        del inplace
        # torch's deprecated spellings, honoured with its warning
        if min_value is not None or max_value is not None:
            warnings.warn(
                "keyword argument `min_value`/`max_value` is deprecated and will be removed "
                "in future releases; use `min_val`/`max_val` instead",
                FutureWarning,
                stacklevel=2,
            )
            min_val = min_val if min_value is None else min_value
            max_val = max_val if max_value is None else max_value
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
        self.min_val, self.max_val = float(min_val), float(max_val)


class Threshold(_Activation):
    """``torch.nn.Threshold(threshold, value)``: ``x`` above ``threshold``, else ``value``."""

    _function = F.threshold
    _fields = ("threshold", "value")

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        del inplace
        self.threshold, self.value = float(threshold), float(value)


class ELU(_Activation):
    """``torch.nn.ELU(alpha=1.0)``."""

    _function = F.elu
    _fields = ("alpha",)

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        del inplace
        self.alpha = float(alpha)


class CELU(_Activation):
    """``torch.nn.CELU(alpha=1.0)``."""

    _function = F.celu
    _fields = ("alpha",)

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        del inplace
        if alpha == 0:
            raise ValueError("CELU: alpha cannot be 0")
        self.alpha = float(alpha)


class SELU(_Activation):
    """``torch.nn.SELU``: torch's scaled ELU constants."""

    _function = F.selu

    def __init__(self, inplace: bool = False):
        del inplace


class LeakyReLU(_Activation):
    """``torch.nn.LeakyReLU(negative_slope=0.01)``."""

    _function = F.leaky_relu
    _fields = ("negative_slope",)

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        del inplace
        self.negative_slope = float(negative_slope)


class GELU(_Activation):
    """``torch.nn.GELU(approximate='none')``: the erf form, or torch's ``'tanh'`` formula.

    >>> [round(v, 4) for v in GELU("tanh")(jnp.asarray([0.0, 1.0], jnp.float32)).tolist()]
    [0.0, 0.8412]
    """

    _function = F.gelu
    _fields = ("approximate",)

    def __init__(self, approximate: str = "none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate


class Softplus(_Activation):
    """``torch.nn.Softplus(beta=1.0, threshold=20.0)``."""

    _function = F.softplus
    _fields = ("beta", "threshold")

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        self.beta, self.threshold = float(beta), float(threshold)


class Hardshrink(_Activation):
    """``torch.nn.Hardshrink(lambd=0.5)``."""

    _function = F.hardshrink
    _fields = ("lambd",)

    def __init__(self, lambd: float = 0.5):
        self.lambd = float(lambd)


class Softshrink(_Activation):
    """``torch.nn.Softshrink(lambd=0.5)``."""

    _function = F.softshrink
    _fields = ("lambd",)

    def __init__(self, lambd: float = 0.5):
        if lambd < 0:
            raise ValueError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
        self.lambd = float(lambd)


class GLU(_Activation):
    """``torch.nn.GLU(dim=-1)``: first half times the sigmoid of the second along ``dim``."""

    _function = F.glu
    _fields = ("dim",)

    def __init__(self, dim: int = -1):
        self.dim = dim


class _Inplace(_Activation):
    def __init__(self, inplace: bool = False):
        del inplace


class Tanh(_Activation):
    """``torch.nn.Tanh``."""

    _function = F.tanh


class Sigmoid(_Activation):
    """``torch.nn.Sigmoid``."""

    _function = F.sigmoid


class LogSigmoid(_Activation):
    """``torch.nn.LogSigmoid``: stable ``log(sigmoid(x))``."""

    _function = F.logsigmoid


class Tanhshrink(_Activation):
    """``torch.nn.Tanhshrink``: ``x - tanh(x)``."""

    _function = F.tanhshrink


class Softsign(_Activation):
    """``torch.nn.Softsign``: ``x / (1 + |x|)``."""

    _function = F.softsign


class SiLU(_Inplace):
    """``torch.nn.SiLU``: ``x * sigmoid(x)``."""

    _function = F.silu


class Mish(_Inplace):
    """``torch.nn.Mish``: ``x * tanh(softplus(x))``."""

    _function = F.mish


class Hardsigmoid(_Inplace):
    """``torch.nn.Hardsigmoid``: ``relu6(x + 3) / 6``."""

    _function = F.hardsigmoid


class Hardswish(_Inplace):
    """``torch.nn.Hardswish``: ``x * relu6(x + 3) / 6``."""

    _function = F.hardswish


class Softmax(_Activation):
    """``torch.nn.Softmax(dim)`` over axis ``dim`` of the JAX array.

    ``dim`` names an axis of the array as it is here: on a channels-last ``(N, H, W, C)`` feature
    map torch's ``Softmax(dim=1)`` (over channels of ``(N, C, H, W)``) is ``Softmax(dim=-1)``;
    on ``(N, features)`` the two agree. torch's implicit ``dim=None`` (a deprecated guess from the
    rank) is refused with a ``ValueError`` when called: the guess would pick a different axis
    on channels-last data. A 0-d input is one element, as in torch.

    >>> Softmax(dim=-1)(jnp.zeros((2, 4), jnp.float32)).tolist()[0]
    [0.25, 0.25, 0.25, 0.25]
    """

    _function = F.softmax
    _fields = ("dim",)

    def __init__(self, dim: int | None = None):
        self.dim = dim


class Softmin(Softmax):
    """``torch.nn.Softmin(dim)``: ``softmax(-x)``; ``dim`` as in :class:`Softmax`."""

    _function = F.softmin


class LogSoftmax(Softmax):
    """``torch.nn.LogSoftmax(dim)``; ``dim`` as in :class:`Softmax`."""

    _function = F.log_softmax


class Softmax2d(nnx.Module):
    """``torch.nn.Softmax2d``: softmax over the channels of ``(N, H, W, C)`` or ``(H, W, C)``."""

    torch_channel_axis = {4: 1, 3: 0}

    def __call__(self, input: ArrayLike) -> jax.Array:  # noqa: A002
        x = jnp.asarray(input)
        _args.expect_rank("Softmax2d", x, (3, 4), "(N, H, W, C)")
        return F.softmax(x, dim=-1)


class PReLU(nnx.Module):
    """``torch.nn.PReLU(num_parameters=1, init=0.25)``: a learnt negative slope.

    With ``num_parameters > 1`` there is one slope per channel, on the last axis of a
    channels-last input (torch's axis 1); ``weight`` is ``(num_parameters,)`` as torch's.

    >>> PReLU()(jnp.asarray([-2.0, 2.0])).tolist()
    [-0.5, 2.0]
    """

    torch_channel_axis = {3: 1, 4: 1, 5: 1}

    def __init__(
        self,
        num_parameters: int = 1,
        init: float = 0.25,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs | None = None,
    ):
        del rngs  # a constant initialisation
        self.num_parameters = _args.positive("num_parameters", num_parameters)
        self.weight = nnx.Param(jnp.full((num_parameters,), init, dtype))

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight`` as is."""
        return {"weight": same("weight")}

    def __call__(self, input: ArrayLike) -> jax.Array:  # noqa: A002
        return F.prelu(input, self.weight[...])


class RReLU(nnx.Module):
    """``torch.nn.RReLU(lower=1/8, upper=1/3)``: a random negative slope in training mode.

    In eval mode (``model.eval()``) the slope is ``(lower + upper) / 2``, torch-exact. In
    training mode each negative element's slope is drawn from ``U(lower, upper)`` through
    :mod:`jaxnets.nn.random` with the ``dropout`` stream of ``rngs`` (or torch's draws, replayed
    in a port check).
    """

    def __init__(
        self,
        lower: float = 1.0 / 8,
        upper: float = 1.0 / 3,
        inplace: bool = False,
        *,
        rngs: nnx.Rngs | None = None,
    ):
        del inplace
        if lower > upper:
            raise ValueError(f"RReLU: lower ({lower}) must not exceed upper ({upper})")
        self.lower, self.upper = float(lower), float(upper)
        self.deterministic = False
        self.rngs = nnx.data(None) if rngs is None else rngs.dropout.fork()

    def set_view(self, deterministic: bool | None = None) -> None:
        """``nnx.view(model, deterministic=...)`` support."""
        if deterministic is not None:
            self.deterministic = deterministic

    def __call__(self, input: ArrayLike) -> jax.Array:  # noqa: A002
        # torch draws even when lower == upper, so a replay of its draws must too.
        training = not self.deterministic
        if training and self.rngs is None and random.active() is None:
            raise ValueError(
                "RReLU in training mode needs random numbers: build it with "
                "rngs=nnx.Rngs(dropout=...) or call model.eval()"
            )
        return F.rrelu(input, self.lower, self.upper, training, key=self.rngs)
