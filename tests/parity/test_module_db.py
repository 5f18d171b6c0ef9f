"""Every module class in torch's own module database against its jaxnets.nn twin.

torch tests its modules on the sample inputs of ``torch.testing._internal.common_modules
.module_db``; here every sample of every non-lazy, non-loss class (constructor and forward
inputs, in training mode and, where the class says they differ, eval mode) runs through the
torch module and the jaxnets layer built with the same arguments and loaded with the torch
module's ``state_dict``. Outputs, input gradients, parameter gradients of ``sum(y * cotangent)``
and the buffers after the forward pass are compared: float64 within ``1e-10`` of each array's
largest entry (the same algorithm), float32 by the project's float32 rule against the float64
run of the same start (``parity.compare.float32_values``: as close to it as torch float32 is).

Layouts move by the layer's ``torch_channel_axis`` (an input or output of a rank listed there
is torch's array with that axis last); torch modules passed as constructor arguments
(``TransformerEncoder(encoder_layer)``) are rebuilt as jaxnets layers from the arguments torch
was given, and torch.nn.functional callables become jaxnets.nn.functional's. A class not yet in
jaxnets.nn is skipped with that reason; a sample jaxnets deliberately refuses is listed in
``REFUSED`` with the reason, and must raise a clear error naming the option.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import os
import warnings
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from torch.testing._internal.common_modules import module_db

from jaxnets import nn
from jaxnets.nn import functional as jF
from jaxnets.nn import random
from parity import compare
from parity.port.draws import Draws

INFOS = {
    info.module_cls.__name__: info
    for info in module_db
    if not info.module_cls.__name__.endswith("Loss")
    and not info.module_cls.__name__.startswith("Lazy")
}
CLASSES = sorted(INFOS)

# (class, sample description) -> (the words the error must contain, why it is refused).
REFUSED: dict[tuple[str, str], tuple[str, str]] = {}

F64_RTOL = 1e-10
# A run covers at most this many samples of a class per mode, spread evenly over torch's list
# (MultiheadAttention has 64 a mode, each a new program to compile); JAXNETS_TORCH_DB=full runs
# every one.
SAMPLES_PER_MODE = None if os.environ.get("JAXNETS_TORCH_DB") == "full" else 5


@contextlib.contextmanager
def recorded_constructors() -> Iterator[dict[int, tuple[type, tuple, dict]]]:
    """While active, every torch.nn module built records the arguments it was built with."""
    calls: dict[int, tuple[type, tuple, dict]] = {}
    originals = {}
    for name in dir(torch.nn):
        cls = getattr(torch.nn, name)
        if isinstance(cls, type) and issubclass(cls, torch.nn.Module) and "__init__" in vars(cls):
            originals[cls] = cls.__init__

            def init(self, *args, __cls=cls, **kwargs):
                calls.setdefault(id(self), (type(self), args, kwargs))
                originals[__cls](self, *args, **kwargs)

            functools.update_wrapper(init, originals[cls])
            cls.__init__ = init
    try:
        yield calls
    finally:
        for cls, original in originals.items():
            cls.__init__ = original


def _jax_dtype(dtype: str) -> jnp.dtype:
    return jnp.dtype(dtype)


def _build_ours(cls: type, args: tuple, kwargs: dict, calls: dict, dtype: str) -> nnx.Module:
    ours_type = getattr(nn, cls.__name__)
    args = tuple(_constructor_value(a, calls, dtype) for a in args)
    kwargs = {
        k: _constructor_value(v, calls, dtype)
        for k, v in kwargs.items()
        if k not in ("device", "dtype")
    }
    parameters = inspect.signature(ours_type.__init__).parameters
    extra: dict[str, Any] = {}
    if "dtype" in parameters:
        extra["dtype"] = _jax_dtype(dtype)
    if "rngs" in parameters:
        extra["rngs"] = nnx.Rngs(0)
    return ours_type(*args, **kwargs, **extra)


def _constructor_value(value: Any, calls: dict, dtype: str) -> Any:
    if isinstance(value, torch.nn.Module):
        cls, args, kwargs = calls[id(value)]
        return _build_ours(cls, args, kwargs, calls, dtype)
    name = getattr(value, "__name__", None)
    if callable(value) and name and getattr(torch.nn.functional, name, None) is value:
        return getattr(jF, name)
    if isinstance(value, torch.Tensor):
        return value.detach().numpy()
    return value


def _channel_axis(ours_type: type, ndim: int) -> int | None:
    return getattr(ours_type, "torch_channel_axis", {}).get(ndim)


def _to_jax(value: Any, ours_type: type, dtype: str) -> Any:
    """torch's forward argument in jaxnets' layout and ``dtype``."""
    if isinstance(value, tuple | list):
        return type(value)(_to_jax(v, ours_type, dtype) for v in value)
    if not isinstance(value, torch.Tensor):
        return value
    array = value.detach().numpy()
    if array.dtype.kind == "f":
        array = array.astype(dtype)
        axis = _channel_axis(ours_type, array.ndim)
        if axis is not None:
            array = np.moveaxis(array, axis, -1)
    return np.array(array, order="C")  # ascontiguousarray would make a 0-d array 1-d


def _from_jax(array: np.ndarray, ours_type: type) -> np.ndarray:
    axis = _channel_axis(ours_type, array.ndim)
    return array if axis is None else np.moveaxis(array, -1, axis)


def _leaves(value: Any) -> list[Any]:
    """Tensors/arrays of a nested output or argument, depth first (``None`` dropped)."""
    if isinstance(value, tuple | list):
        return [leaf for v in value for leaf in _leaves(v)]
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    return [] if value is None else [value]


def _is_float(x: Any) -> bool:
    if isinstance(x, torch.Tensor):
        return x.is_floating_point()
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)


def _cotangents(outputs: list[torch.Tensor]) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.standard_normal(tuple(out.shape)) for out in outputs if out.is_floating_point()]


class Run:
    """One side's results: outputs, input gradients, parameter gradients, buffers."""

    def __init__(self) -> None:
        self.outputs: dict[str, np.ndarray] = {}
        self.input_grads: dict[str, np.ndarray] = {}
        self.param_grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.draws: list[Any] = []  # torch's random draws (parity.port.draws.StepDraws)


def _torch_cast(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, tuple | list):
        return type(value)(_torch_cast(v, dtype) for v in value)
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().to(dtype).requires_grad_(value.requires_grad)
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return value


def _run_torch(module: torch.nn.Module, sample: Any, dtype: str, cotangents=None, replay=None):
    """torch's run; its random draws are recorded (``replay=None``) or replay another run's."""
    torch_dtype = getattr(torch, dtype)
    module = copy.deepcopy(module).to(torch_dtype)
    args = _torch_cast(tuple(sample.forward_input.args), torch_dtype)
    kwargs = {k: _torch_cast(v, torch_dtype) for k, v in sample.forward_input.kwargs.items()}
    inputs = [x for x in _flat(args, kwargs) if _is_float(x) and x.requires_grad]
    draws = Draws(module, replay)
    with warnings.catch_warnings(), draws.step():
        warnings.simplefilter("ignore")
        outputs = _leaves(module(*args, **kwargs))
    draws.close()
    if cotangents is None:
        cotangents = _cotangents(outputs)
    run = Run()
    floats = [out for out in outputs if out.is_floating_point()]
    for i, out in enumerate(outputs):
        run.outputs[str(i)] = out.detach().numpy().copy()
    if floats and any(out.requires_grad for out in floats):
        total = sum(
            (out * torch.from_numpy(c).to(torch_dtype)).sum()
            for out, c in zip(floats, cotangents, strict=True)
            if out.requires_grad
        )
        total.backward()
    for i, x in enumerate(inputs):
        grad = x.grad if x.grad is not None else torch.zeros_like(x)
        run.input_grads[str(i)] = grad.numpy().copy()
    for name, parameter in module.named_parameters():
        grad = parameter.grad if parameter.grad is not None else torch.zeros_like(parameter)
        run.param_grads[name] = grad.numpy().copy()
    run.buffers = {k: v.numpy().copy() for k, v in module.named_buffers()}
    run.draws = draws.steps
    return run, cotangents


def _flat(args: Any, kwargs: Any) -> list[Any]:
    """The forward arguments' leaves in one order for both sides (``None`` kept as a leaf)."""
    return jax.tree.leaves((args, kwargs), is_leaf=lambda x: x is None)


# Compiled for a check, not for speed: unoptimised XLA compiles several times faster, and each
# sample is a new program.
COMPILER = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


def _run_jax(
    ours: nnx.Module, sample: Any, dtype: str, cotangents, ours_type: type, draws=None
) -> Run:
    """Our run, given torch's random draws (``draws``: a ``StepDraws``) where it made any."""
    args = _to_jax(tuple(sample.forward_input.args), ours_type, dtype)
    kwargs = {k: _to_jax(v, ours_type, dtype) for k, v in sample.forward_input.kwargs.items()}
    tree = jax.tree.structure((args, kwargs), is_leaf=lambda x: x is None)
    flat = _flat(args, kwargs)
    torch_flat = _flat(tuple(sample.forward_input.args), sample.forward_input.kwargs)
    slots = [i for i, x in enumerate(torch_flat) if _is_float(x) and x.requires_grad]
    # Arrays enter the program as arguments (NumPy: no conversion program per shape).
    array_slots = [i for i, x in enumerate(flat) if isinstance(x, np.ndarray) and i not in slots]
    cots = [_to_jax_layout(c, ours_type, dtype) for c in cotangents]
    graphdef, params, rest = nnx.split(ours, nnx.Param, ...)

    recorded = draws.recorded if draws is not None else []

    def loss(params, wrt, rest, arrays, cots, draw_values):
        model = nnx.merge(graphdef, params, rest)
        values = list(flat)
        for slot, value in zip(slots + array_slots, [*wrt, *arrays], strict=True):
            values[slot] = value
        call_args, call_kwargs = jax.tree.unflatten(tree, values)
        replay = random.Replay(recorded, draw_values)
        with random.replaying(replay):
            outputs = _leaves(model(*call_args, **call_kwargs))
        replay.finish()
        floats = [out for out in outputs if _is_float(out)]
        total = sum(
            (jnp.sum(out * c) for out, c in zip(floats, cots, strict=True)),
            jnp.zeros((), dtype),
        )
        return total, (outputs, nnx.split(model, nnx.Param, ...)[2])

    # rest (buffers) is differentiated too, and its gradient dropped: a buffer written in place
    # in training mode must live at the same trace level as the parameters.
    run_program = jax.jit(
        jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True, allow_int=True),
        compiler_options=COMPILER,
    )
    arrays = [flat[i] for i in array_slots]
    draw_values = [
        v.astype(dtype) if v.dtype.kind == "f" else v for v in (draws.values if draws else [])
    ]
    (_, (outputs, new_rest)), (param_grads, input_grads, _) = run_program(
        params, [flat[i] for i in slots], rest, arrays, cots, draw_values
    )
    nnx.update(ours, new_rest)
    run = Run()
    for i, out in enumerate(outputs):
        run.outputs[str(i)] = _from_jax(np.asarray(out), ours_type)
    for i, grad in enumerate(input_grads):
        run.input_grads[str(i)] = _from_jax(np.asarray(grad), ours_type)
    run.param_grads = nn.state_dict(nnx.merge(graphdef, param_grads, new_rest))
    run.buffers = nn.state_dict(ours)
    return run


def _to_jax_layout(array: np.ndarray, ours_type: type, dtype: str) -> np.ndarray:
    """A torch-layout cotangent in jaxnets' layout."""
    array = array.astype(dtype)
    axis = _channel_axis(ours_type, array.ndim)
    return array if axis is None else np.moveaxis(array, axis, -1)


def _nan_aligned(ours: np.ndarray, theirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN where both sides have NaN counts as agreement (e.g. torch's fully masked rows)."""
    if ours.dtype.kind == "f" and theirs.dtype.kind == "f" and ours.shape == theirs.shape:
        both = np.isnan(ours) & np.isnan(theirs)
        if both.any():
            ours, theirs = np.where(both, 0.0, ours), np.where(both, 0.0, theirs)
    return ours, theirs


def _compare(label: str, ours: Run, theirs: Run, truth: Run | None) -> list[str]:
    problems = []
    for kind in ("outputs", "input_grads", "param_grads", "buffers"):
        mine, other = getattr(ours, kind), getattr(theirs, kind)
        if kind in ("param_grads", "buffers"):  # ours: the whole state_dict, by torch's keys
            mine = {k: mine[k] for k in other if k in mine}
        if sorted(mine) != sorted(other):
            problems.append(f"{label} {kind}: names {sorted(mine)} vs torch {sorted(other)}")
            continue
        floats_j, floats_t, floats_r = {}, {}, {}
        for key in other:
            a, b = np.asarray(mine[key]), np.asarray(other[key])
            if a.shape != b.shape:
                problems.append(f"{label} {kind} {key}: shape {a.shape} vs torch {b.shape}")
                continue
            if b.dtype.kind != "f":
                if not np.array_equal(a.astype(b.dtype), b):
                    problems.append(f"{label} {kind} {key}: integer values differ")
                continue
            a, b = _nan_aligned(a.astype(b.dtype), b)
            a, b = a.astype(np.float64), b.astype(np.float64)
            if truth is not None:
                r = np.asarray(getattr(truth, kind)[key], np.float64)
                # Where the float64 run is NaN (a pow of a negative sum, say) but float32 is not,
                # there is no truth to judge against: the two float32 runs must agree exactly.
                lost = np.isnan(r) & ~np.isnan(b)
                if lost.any():
                    if not np.array_equal(a[lost], b[lost]):
                        problems.append(
                            f"{label} {kind} {key}: differs from torch where float64 is NaN"
                        )
                    a, b, r = (np.where(lost, 0.0, v) for v in (a, b, r))
                floats_r[key] = _nan_aligned(r, b)[0]
            floats_j[key], floats_t[key] = a, b
        if not floats_t:
            continue
        if truth is None:
            checks = compare.float64_values(
                floats_j, floats_t, label=kind, rtol=F64_RTOL, floor=F64_RTOL
            )
        else:
            checks = compare.float32_values(floats_j, floats_t, floats_r, label=kind)
        problems += [f"{label}: {c.detail}" for c in checks if not c.passed]
    return problems


def _samples(info: Any, training: bool) -> tuple[list[Any], dict]:
    torch.manual_seed(0)
    # torch warns while building some samples (nested-tensor fast paths it cannot take).
    with recorded_constructors() as calls, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        samples = info.module_inputs_func(
            info, device="cpu", dtype=torch.float64, requires_grad=True, training=training
        )
        built = []
        for sample in samples:
            torch.manual_seed(0)
            args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
            built.append((sample, info.module_cls(*args, **kwargs)))
    return built, calls


def _check_sample(name: str, info, sample, theirs, training: bool, calls, label: str):
    ours_type = getattr(nn, name)
    theirs = theirs.to(torch.float64)
    theirs.train(training)
    refused = REFUSED.get((name, sample.desc))
    if refused is not None:
        words, _ = refused
        with pytest.raises((NotImplementedError, ValueError), match=words):
            ours = _build_ours(
                info.module_cls,
                sample.constructor_input.args,
                sample.constructor_input.kwargs,
                calls,
                "float64",
            )
            _run_jax(ours, sample, "float64", _cotangents([]), ours_type)
        return []
    problems = []
    # Random draws in training (dropout, attention dropout, fractional pooling) are torch's:
    # recorded in the float64 run, replayed into torch's float32 run and into ours.
    truth, cotangents = _run_torch(theirs, sample, "float64")
    for dtype in ("float64", "float32"):
        theirs_run = (
            truth
            if dtype == "float64"
            else _run_torch(theirs, sample, dtype, cotangents, truth.draws)[0]
        )
        args = sample.constructor_input.args
        kwargs = sample.constructor_input.kwargs
        ours = _build_ours(info.module_cls, args, kwargs, calls, dtype)
        nn.load_state_dict(ours, {k: v.detach() for k, v in theirs.state_dict().items()})
        ours.train() if training else ours.eval()
        ours_run = _run_jax(ours, sample, dtype, cotangents, ours_type, truth.draws[0])
        problems += _compare(
            f"{label} {dtype}", ours_run, theirs_run, None if dtype == "float64" else truth
        )
    return problems


@pytest.mark.parametrize("name", CLASSES)
def test_module_db_samples(name: str):
    if not hasattr(nn, name):
        pytest.skip(f"{name} is not in jaxnets.nn yet")
    info = INFOS[name]
    problems = []
    modes = (True, False) if info.train_and_eval_differ else (True,)
    for training in modes:
        samples, calls = _samples(info, training)
        chosen = range(len(samples))
        if SAMPLES_PER_MODE is not None and len(samples) > SAMPLES_PER_MODE:
            spread = np.linspace(0, len(samples) - 1, SAMPLES_PER_MODE)
            chosen = np.unique(spread.round().astype(int)).tolist()
        for index in chosen:
            sample, theirs = samples[index]
            label = f"{name}[{'train' if training else 'eval'} {index} {sample.desc!r}]"
            try:
                problems += _check_sample(name, info, sample, theirs, training, calls, label)
            except Exception as error:  # noqa: BLE001 - every sample reports, not the first
                problems.append(f"{label}: {type(error).__name__}: {error}")
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)
