"""The one random source of ``jaxnets.nn``: draws from NNX rngs, or torch's recorded draws replayed.

Every random number a ``jaxnets.nn`` layer or function uses comes through here: dropout masks,
RReLU slopes, fractional pooling's samples, and the draws a user's own ``__call__`` makes (a
VAE's ``randn_like``, noise injection, stochastic depth). The functions carry torch's names:

>>> from flax import nnx
>>> rngs = nnx.Rngs(0)
>>> mu, logvar = jnp.zeros((2, 3)), jnp.zeros((2, 3))
>>> z = mu + jnp.exp(0.5 * logvar) * randn_like(mu, rngs=rngs)  # torch.randn_like(std)
>>> z.shape
(2, 3)

Outside a replay each function draws from ``jax.random`` with a fresh key from ``rngs``: an
``nnx.Rngs`` (its ``stream``, e.g. ``"dropout"`` for masks), an ``nnx.RngStream``, or a key, used
as given. Inside :func:`replaying` (``parity.check_port`` opens one per training step, around the
traced forward pass) each draw returns instead the next of torch's recorded draws, in call order,
after checking that it is the same kind of draw, with the same parameters, of the same shape;
``rngs`` is then not needed. A draw that differs raises :class:`ReplayError` naming both sides'
module and draw. The recorded values enter the compiled step as arguments, so nothing recompiles
from step to step.

Shapes are matched in the port's layout. ``layout="torch"`` says the port's array has torch's
axes (attention weights, fractional pooling's ``(N, C, n)`` samples); ``"channels_last"`` that
torch's channel axis 1 is last in the port (``dropout2d``'s per-channel mask); ``"auto"`` (an
element-wise draw on an activation) follows the check: with ``channels_last=True`` a recorded
draw of rank 3 or more is moved like the activations it is compared with. A recorded draw may
also group its leading axes differently (torch's ``(N*H, L, S)`` attention weights for the
port's ``(N, H, L, S)``) or carry extra axes of size 1 (an unbatched ``dropout1d``).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

__all__ = [
    "RngSource",
    "Recorded",
    "Replay",
    "ReplayError",
    "replaying",
    "active",
    "key_from",
    "bernoulli",
    "rand",
    "rand_like",
    "randn",
    "randn_like",
    "normal",
    "uniform",
    "randint",
    "randperm",
    "multinomial",
]

RngSource = nnx.Rngs | nnx.RngStream | jax.Array | None
Layout = Literal["auto", "torch", "channels_last"]
_LAYOUTS = ("auto", "torch", "channels_last")


class ReplayError(ValueError):
    """A draw of the port that is not the draw torch made at the same position."""


@dataclass(frozen=True)
class Recorded:
    """What is known of one of torch's draws before its values.

    Attributes:
      kind: ``"bernoulli"`` (values 0/1, ``p`` the probability of 1), ``"normal"``, ``"uniform"``,
        ``"randint"``, ``"randperm"``, ``"multinomial"``, or another ATen op's name.
      shape: the drawn tensor's shape, in torch's layout.
      params: ``(name, value)`` pairs of the scalar parameters (``p``; ``mean``, ``std``; ``low``,
        ``high``); a parameter given as a tensor is left out.
      where: the torch module path whose forward drew it (``""`` the root, ``None`` outside
        every module's forward, e.g. in the loss).
      op: the ATen op, e.g. ``"aten.bernoulli_.float"``.
    """

    kind: str
    shape: tuple[int, ...]
    params: tuple[tuple[str, float], ...] = ()
    where: str | None = ""
    op: str = ""

    def describe(self) -> str:
        args = ", ".join(f"{k}={v:.6g}" for k, v in self.params)
        return f"{self.kind}({args}) of shape {self.shape} in {_module(self.where)} ({self.op})"


def _module(path: str | None) -> str:
    if path is None:
        return "no module's forward (the loss)"
    return "the root module" if path == "" else f"module {path!r}"


_ACTIVE: contextvars.ContextVar[Replay | None] = contextvars.ContextVar(
    "jaxnets_random_replay", default=None
)


class Replay:
    """torch's draws of one forward pass, handed out in order (see the module docstring).

    Args:
      recorded: each draw's description, in torch's call order.
      values: the drawn arrays, one per ``recorded`` entry (traced values under ``jax.jit``).
      channels_last: how ``layout="auto"`` draws of rank 3 or more are moved.
      locate: returns the port's module path now drawing, for error messages.
      label: which run the replay is in (e.g. ``"float32"``), for error messages.
    """

    def __init__(
        self,
        recorded: Sequence[Recorded],
        values: Sequence[Any],
        *,
        channels_last: bool = False,
        locate: Callable[[], str | None] | None = None,
        label: str = "",
    ):
        if len(recorded) != len(values):
            raise ValueError(f"{len(recorded)} recorded draws but {len(values)} value arrays")
        self.recorded = list(recorded)
        self.values = list(values)
        self.channels_last = channels_last
        self.locate = locate or (lambda: None)
        self.label = label
        self.taken = 0

    def _where(self) -> str:
        path = self.locate()
        if path is None:
            return "the port"
        return "the port's root module" if path == "" else f"the port's module {path!r}"

    def _fail(self, asked: str, why: str) -> ReplayError:
        at = f" ({self.label})" if self.label else ""
        return ReplayError(
            f"the port's random draws part from torch's at draw {self.taken + 1}{at}: {why}; "
            f"{self._where()} asked for {asked}"
        )

    def take(
        self,
        kind: str,
        shape: tuple[int, ...],
        dtype: Any,
        params: Sequence[tuple[str, float | None]] = (),
        layout: Layout = "auto",
    ) -> jax.Array:
        """The next recorded draw as the port's ``shape`` and ``dtype``; raises
        :class:`ReplayError` where it is not the draw asked for."""
        shape = tuple(int(s) for s in shape)
        args = ", ".join(f"{k}={v:.6g}" for k, v in params if v is not None)
        asked = f"{kind}({args}) of shape {shape}"
        if self.taken >= len(self.recorded):
            raise self._fail(asked, f"torch drew only {len(self.recorded)} times")
        record, value = self.recorded[self.taken], self.values[self.taken]
        theirs = f"torch drew {record.describe()}"
        if record.kind != kind:
            raise self._fail(asked, f"{theirs}, another kind of draw")
        recorded_params = dict(record.params)
        for name, mine in params:
            other = recorded_params.get(name)
            if mine is None or other is None:
                continue
            if not math.isclose(float(mine), other, rel_tol=1e-9, abs_tol=1e-12):
                raise self._fail(asked, f"{theirs}, with another {name}")
        arranged = self._arrange(jnp.asarray(value), record.shape, shape, layout)
        if arranged is None:
            raise self._fail(asked, f"{theirs}, of another shape")
        self.taken += 1
        return arranged.astype(dtype)

    def _arrange(
        self, value: jax.Array, theirs: tuple[int, ...], mine: tuple[int, ...], layout: Layout
    ) -> jax.Array | None:
        value = value.reshape(theirs)
        moved = value.ndim >= 3 and (
            layout == "channels_last" or (layout == "auto" and self.channels_last)
        )
        candidates = [jnp.moveaxis(value, 1, -1), value] if moved else [value]
        for candidate in candidates:
            if _regroupable(candidate.shape, mine):
                return candidate.reshape(mine)
        return None

    def finish(self) -> None:
        """Raise when torch drew more than the port asked for."""
        if self.taken < len(self.recorded):
            left = self.recorded[self.taken]
            at = f" ({self.label})" if self.label else ""
            raise ReplayError(
                f"the port's random draws part from torch's at draw {self.taken + 1}{at}: "
                f"torch drew {left.describe()}, and the port drew no more "
                f"({len(self.recorded)} draws in torch, {self.taken} in the port)"
            )


def _regroupable(theirs: tuple[int, ...], mine: tuple[int, ...]) -> bool:
    """Whether ``theirs`` holds the same draws as ``mine`` in a C-order reshape that only drops
    axes of size 1 or groups leading axes: all but one of the shorter shape's axes must match
    from the right."""
    a = [s for s in theirs if s != 1]
    b = [s for s in mine if s != 1]
    if a == b:
        return True
    if math.prod(a) != math.prod(b):
        return False
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    tail = len(short) - 1
    return tail >= 1 and short[len(short) - tail :] == long[len(long) - tail :]


def active() -> Replay | None:
    """The replay now open in this context, if any."""
    return _ACTIVE.get()


@contextlib.contextmanager
def replaying(replay: Replay) -> Iterator[Replay]:
    """Within the block every draw of this module returns ``replay``'s next draw.

    Leaving the block does not check that every draw was taken: call ``replay.finish()``.
    """
    token = _ACTIVE.set(replay)
    try:
        yield replay
    finally:
        _ACTIVE.reset(token)


def key_from(source: RngSource, stream: str = "default", what: str = "this draw") -> jax.Array:
    """A fresh key: from an ``nnx.Rngs``' ``stream``, from an ``nnx.RngStream``, or a key as is.

    Raises:
      ValueError: ``source`` is None (naming ``what`` needs random numbers and how to give them).
    """
    if source is None:
        raise ValueError(
            f"{what} needs random numbers: pass rngs=nnx.Rngs({stream}=...) (or an "
            "nnx.RngStream, or a jax.random key), or run it in eval mode"
        )
    if isinstance(source, nnx.Rngs):
        return getattr(source, stream)()
    if isinstance(source, nnx.RngStream):
        return source()
    return source


def _float_dtype(dtype: DTypeLike | None) -> Any:
    return jnp.result_type(float) if dtype is None else _canonical(dtype)


def _canonical(dtype: DTypeLike) -> Any:
    """``dtype`` as JAX gives it now (int64 is int32 without ``jax_enable_x64``)."""
    return jax.dtypes.canonicalize_dtype(jnp.dtype(dtype))


def _draw(
    kind: str,
    shape: tuple[int, ...],
    dtype: Any,
    params: Sequence[tuple[str, float | None]],
    layout: Layout,
    fresh: Callable[[], jax.Array],
) -> jax.Array:
    if layout not in _LAYOUTS:
        raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")
    replay = _ACTIVE.get()
    if replay is not None:
        return replay.take(kind, shape, dtype, params, layout)
    return fresh()


def _scalar(value: Any) -> float | None:
    """A Python number's value, ``None`` for an array (whose values a replay cannot compare)."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    return None


def bernoulli(
    p: ArrayLike,
    shape: Sequence[int] | None = None,
    *,
    rngs: RngSource = None,
    stream: str = "dropout",
    layout: Layout = "auto",
) -> jax.Array:
    """True with probability ``p`` (a number, or an array of probabilities): ``torch.bernoulli``,
    and the keep-mask of every dropout (``p`` = 1 - the drop rate).

    ``shape`` defaults to ``p``'s. Returns a bool array.
    """
    probability = jnp.asarray(p)
    shape = tuple(probability.shape if shape is None else shape)
    return _draw(
        "bernoulli",
        shape,
        jnp.bool_,
        [("p", _scalar(p))],
        layout,
        lambda: jax.random.bernoulli(key_from(rngs, stream, "bernoulli"), probability, shape),
    )


def uniform(
    shape: Sequence[int],
    dtype: DTypeLike | None = None,
    *,
    low: float = 0.0,
    high: float = 1.0,
    rngs: RngSource = None,
    stream: str = "default",
    layout: Layout = "auto",
) -> jax.Array:
    """``U(low, high)`` draws (torch's ``tensor.uniform_(low, high)``)."""
    shape, dtype = tuple(shape), _float_dtype(dtype)
    return _draw(
        "uniform",
        shape,
        dtype,
        [("low", _scalar(low)), ("high", _scalar(high))],
        layout,
        lambda: jax.random.uniform(key_from(rngs, stream, "uniform"), shape, dtype, low, high),
    )


def rand(
    shape: Sequence[int],
    dtype: DTypeLike | None = None,
    *,
    rngs: RngSource = None,
    stream: str = "default",
    layout: Layout = "auto",
) -> jax.Array:
    """``torch.rand``: ``U(0, 1)`` draws."""
    return uniform(shape, dtype, rngs=rngs, stream=stream, layout=layout)


def rand_like(
    x: ArrayLike, *, rngs: RngSource = None, stream: str = "default", layout: Layout = "auto"
) -> jax.Array:
    """``torch.rand_like``: ``U(0, 1)`` draws of ``x``'s shape and dtype."""
    x = jnp.asarray(x)
    return uniform(x.shape, x.dtype, rngs=rngs, stream=stream, layout=layout)


def normal(
    shape: Sequence[int],
    dtype: DTypeLike | None = None,
    *,
    mean: float = 0.0,
    std: float = 1.0,
    rngs: RngSource = None,
    stream: str = "default",
    layout: Layout = "auto",
) -> jax.Array:
    """``N(mean, std²)`` draws (torch's ``tensor.normal_(mean, std)``)."""
    shape, dtype = tuple(shape), _float_dtype(dtype)

    def fresh() -> jax.Array:
        z = jax.random.normal(key_from(rngs, stream, "normal"), shape, dtype)
        return z * jnp.asarray(std, dtype) + jnp.asarray(mean, dtype)

    params = [("mean", _scalar(mean)), ("std", _scalar(std))]
    return _draw("normal", shape, dtype, params, layout, fresh)


def randn(
    shape: Sequence[int],
    dtype: DTypeLike | None = None,
    *,
    rngs: RngSource = None,
    stream: str = "default",
    layout: Layout = "auto",
) -> jax.Array:
    """``torch.randn``: standard normal draws."""
    return normal(shape, dtype, rngs=rngs, stream=stream, layout=layout)


def randn_like(
    x: ArrayLike, *, rngs: RngSource = None, stream: str = "default", layout: Layout = "auto"
) -> jax.Array:
    """``torch.randn_like``: standard normal draws of ``x``'s shape and dtype."""
    x = jnp.asarray(x)
    return normal(x.shape, x.dtype, rngs=rngs, stream=stream, layout=layout)


def randint(
    low: int,
    high: int,
    shape: Sequence[int],
    dtype: DTypeLike = int,
    *,
    rngs: RngSource = None,
    stream: str = "default",
    layout: Layout = "auto",
) -> jax.Array:
    """``torch.randint(low, high, shape)``: integers in ``[low, high)``."""
    shape, dtype = tuple(shape), _canonical(dtype)
    return _draw(
        "randint",
        shape,
        dtype,
        [("low", _scalar(low)), ("high", _scalar(high))],
        layout,
        lambda: jax.random.randint(key_from(rngs, stream, "randint"), shape, low, high, dtype),
    )


def randperm(
    n: int, dtype: DTypeLike = int, *, rngs: RngSource = None, stream: str = "default"
) -> jax.Array:
    """``torch.randperm(n)``: a random permutation of ``0 .. n-1``."""
    dtype = _canonical(dtype)
    return _draw(
        "randperm",
        (int(n),),
        dtype,
        [],
        "torch",
        lambda: jax.random.permutation(key_from(rngs, stream, "randperm"), n).astype(dtype),
    )


def multinomial(
    probs: ArrayLike,
    num_samples: int,
    replacement: bool = False,
    *,
    rngs: RngSource = None,
    stream: str = "default",
) -> jax.Array:
    """``torch.multinomial``: ``num_samples`` indices per row of (unnormalised) ``probs``."""
    weights = jnp.asarray(probs)
    if weights.ndim not in (1, 2):
        raise ValueError(f"multinomial: probs must be 1-D or 2-D, got shape {weights.shape}")
    if not replacement and num_samples > weights.shape[-1]:
        raise ValueError(
            f"multinomial: cannot draw {num_samples} samples from {weights.shape[-1]} categories "
            "without replacement"
        )
    shape = (*weights.shape[:-1], int(num_samples))

    def fresh() -> jax.Array:
        key = key_from(rngs, stream, "multinomial")
        rows = weights.reshape(-1, weights.shape[-1])
        keys = jax.random.split(key, rows.shape[0])

        def one(k: jax.Array, w: jax.Array) -> jax.Array:
            n = w.shape[0]
            return jax.random.choice(k, n, (num_samples,), replacement, p=w / jnp.sum(w))

        return jax.vmap(one)(keys, rows).reshape(shape)

    return _draw("multinomial", shape, _canonical(int), [], "torch", fresh)
