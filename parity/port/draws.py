"""torch's random draws in a port check: recorded at the ATen level, replayed into later runs.

:class:`Draws` is a ``TorchDispatchMode`` that sees every ATen op a training step's forward pass
and loss run. An op tagged ``nondeterministic_seeded`` (dropout's ``bernoulli_``,
``native_dropout``, ``randn``/``randn_like``, ``rand``/``rand_like``, ``normal_``/``uniform_``,
``randint``, ``multinomial``, ``randperm``, ``rrelu_with_noise``, ...) is a draw: in a recording
run its values are kept, in call order, with the kind of draw, its scalar parameters, its shape
and the module whose forward drew it; in a replaying run (the other dtype's torch run) the op
still runs, then its random values are overwritten with the recorded ones, so every torch run
of a check trains with the same masks and noise. The JAX side hands the same values to
``jaxnets.nn.random``.

A draw torch makes inside a fused kernel whose random values are not an output (cuDNN's RNN
dropout) cannot be replayed; the check refuses it with the op's name. Scaled dot-product
attention is run with torch's math backend in a check so that its dropout is a visible draw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from jaxnets.nn.random import Recorded, ReplayError

__all__ = ["Draws", "StepDraws", "recorded_in"]


@dataclass
class StepDraws:
    """One step's draws: descriptions and values (NumPy, in torch's layout), in call order."""

    recorded: list[Recorded]
    values: list[np.ndarray]


def _scalar(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _arg(args: Sequence[Any], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _params(name: str, overload: str, args, kwargs) -> tuple[str, tuple[tuple[str, float], ...]]:
    """The draw's kind and scalar parameters, from the op's name and arguments."""

    def pairs(**values: Any) -> tuple[tuple[str, float], ...]:
        return tuple((k, float(v)) for k, v in values.items() if _scalar(v) is not None)

    if name in ("bernoulli", "bernoulli_"):
        p = _arg(args, kwargs, 1, "p", 0.5 if name == "bernoulli_" else None)
        return "bernoulli", pairs(p=p)
    if name in ("native_dropout", "_fused_dropout"):
        p = _arg(args, kwargs, 1, "p", None)
        keep = 1.0 - p if name == "native_dropout" else p
        return "bernoulli", pairs(p=keep)
    if name in ("randn", "randn_like"):
        return "normal", pairs(mean=0.0, std=1.0)
    if name == "normal_":
        return "normal", pairs(
            mean=_arg(args, kwargs, 1, "mean", 0.0), std=_arg(args, kwargs, 2, "std", 1.0)
        )
    if name == "normal":
        if overload == "float_float":
            return "normal", pairs(mean=args[0], std=args[1])
        return "normal", ()
    if name in ("rand", "rand_like"):
        return "uniform", pairs(low=0.0, high=1.0)
    if name == "uniform_":
        return "uniform", pairs(
            low=_arg(args, kwargs, 1, "from", 0.0), high=_arg(args, kwargs, 2, "to", 1.0)
        )
    if name in ("rrelu_with_noise", "rrelu_with_noise_"):
        return "uniform", pairs(
            low=_arg(args, kwargs, 2, "lower", 1 / 8), high=_arg(args, kwargs, 3, "upper", 1 / 3)
        )
    if name == "randint":
        low, high = (args[0], args[1]) if overload.startswith("low") else (0, args[0])
        return "randint", pairs(low=low, high=high)
    if name in ("randint_like", "random_"):
        return "randint", ()
    return name, ()


def _opaque(name: str, args: Sequence[Any]) -> bool:
    """A draw inside a fused kernel whose random values are not among its outputs."""
    if name == "_cudnn_rnn":
        return len(args) > 12 and float(args[11]) > 0 and bool(args[12])
    return False


def _draws_now(name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    """Whether a seeded op draws in this call (some only do in training)."""
    if name in ("rrelu_with_noise", "rrelu_with_noise_"):
        return bool(_arg(args, kwargs, 4, "training", False))
    if name == "native_dropout":
        train = _arg(args, kwargs, 2, "train", True)
        return train is None or bool(train)
    return True


def _value(name: str, args: Sequence[Any], out: Any) -> torch.Tensor:
    """The drawn values of an op's call (the part a replay overwrites)."""
    if name in ("native_dropout", "_fused_dropout"):
        return out[1]
    if name in ("rrelu_with_noise", "rrelu_with_noise_"):
        return args[1]
    return out


def _replayed(name: str, args: Sequence[Any], kwargs: dict[str, Any], out: Any, value: np.ndarray):
    """``out`` with its drawn part replaced by ``value`` (and what depends on it recomputed)."""
    if name in ("native_dropout", "_fused_dropout"):
        mask = torch.as_tensor(value, device=out[1].device).to(out[1].dtype)
        p = float(_arg(args, kwargs, 1, "p", 0.5))
        scale = 1.0 / (1.0 - p) if name == "native_dropout" else 1.0 / p
        return args[0] * mask * scale, mask
    if name in ("rrelu_with_noise", "rrelu_with_noise_"):
        noise = args[1]
        noise.copy_(torch.as_tensor(value, device=noise.device))
        # torch's rule: slope 1 where the input is positive (noise 1 there), else the draw.
        result = args[0] * noise
        if name.endswith("_"):
            args[0].copy_(result)
            return args[0]
        return result
    out.copy_(torch.as_tensor(value, device=out.device))
    return out


class Draws(TorchDispatchMode):
    """Record (``replay=None``) or replay torch's draws, step by step; see the module docstring.

    Args:
      module: the module trained, whose submodules' paths name each draw.
      replay: per-step draws to replay (another run's :attr:`steps`), or ``None`` to record.
      label: the run (e.g. ``"float32"``), for errors.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        replay: Sequence[StepDraws] | None = None,
        label: str = "",
    ):
        super().__init__()
        self.replay = replay
        self.label = label
        self.steps: list[StepDraws] = []
        self._stack: list[str] = []
        self._handles: list[Any] = []
        self._position = 0
        for path, sub in module.named_modules():
            self._handles.append(sub.register_forward_pre_hook(self._enter(path)))
            self._handles.append(sub.register_forward_hook(self._leave, always_call=True))

    def _enter(self, path: str) -> Callable[..., None]:
        def hook(_module: torch.nn.Module, _args: Any) -> None:
            self._stack.append(path)

        return hook

    def _leave(self, _module: torch.nn.Module, _args: Any, _out: Any) -> None:
        if self._stack:
            self._stack.pop()

    def close(self) -> None:
        """Remove the hooks from the module."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """Record or replay the draws of one training step's forward pass and loss."""
        self.steps.append(StepDraws([], []))
        self._position = 0
        self._stack.clear()
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([SDPBackend.MATH]), self:
            yield
        if self.replay is not None:
            expected = self.replay[len(self.steps) - 1].recorded
            if self._position != len(expected):
                raise ReplayError(
                    f"torch's {self.label} run drew {self._position} times at step "
                    f"{len(self.steps) - 1} where the recorded run drew {len(expected)}: the "
                    "model's randomness depends on the dtype, and cannot be replayed"
                )

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if torch.Tag.nondeterministic_seeded not in func.tags:
            return out
        name, overload = func.overloadpacket.__name__, func._overloadname
        op = f"aten.{name}.{overload}"
        where = self._stack[-1] if self._stack else None
        if _opaque(name, args):
            raise ReplayError(
                f"torch draws inside {op} (in {where!r}), whose random values cannot be read, "
                "so the port cannot be given the same draws; run the check on the CPU"
            )
        if not _draws_now(name, args, kwargs):
            return out
        value = _value(name, args, out)
        kind, params = _params(name, overload, args, kwargs)
        record = Recorded(kind, tuple(value.shape), params, where, op)
        step = self.steps[-1]
        if self.replay is None:
            step.recorded.append(record)
            step.values.append(value.detach().cpu().numpy().copy())
            return out
        expected = self.replay[len(self.steps) - 1]
        if self._position >= len(expected.recorded) or (
            expected.recorded[self._position].kind,
            expected.recorded[self._position].shape,
        ) != (kind, record.shape):
            raise ReplayError(
                f"torch's {self.label} run draws {record.describe()} as draw "
                f"{self._position + 1} of step {len(self.steps) - 1}, which the recorded run "
                "did not: the model's randomness depends on the dtype, and cannot be replayed"
            )
        replayed = _replayed(name, args, kwargs, out, expected.values[self._position])
        step.recorded.append(record)
        step.values.append(expected.values[self._position])
        self._position += 1
        return replayed


def recorded_in(steps: Sequence[StepDraws]) -> int:
    """How many draws the steps hold in all."""
    return sum(len(step.recorded) for step in steps)
