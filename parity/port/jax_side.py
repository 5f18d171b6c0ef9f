"""The JAX half of a port check: a copy of the NNX module, trained by one jit-compiled step.

The user's module is never changed: :func:`prepared` casts a copy to the run's dtype and loads the
torch weights into it. :func:`train` splits it (``nnx.split``) into parameters, keyed by their
torch names so that torch's param groups label them directly, and the rest (BatchNorm statistics,
random streams); the compiled step merges them back, takes ``jax.value_and_grad`` of the loss,
returns the updated rest and applies the translated optimiser. The same traced forward pass
records every submodule's output (:func:`recording`): each instance's class is swapped for a
cached subclass whose ``__call__`` records, then swapped back, so the user's classes and
instances are never changed.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxnets import nn
from jaxnets.nn import random
from parity import ensemble
from parity.port.draws import StepDraws

Batch = tuple[tuple[Any, ...], Any]
NnxPath = tuple[Any, ...]


class StructureError(ValueError):
    """The torch and NNX modules cannot be matched path for path."""


@dataclass
class JaxRun:
    """What one JAX run recorded; gradients and buffers in torch's layouts and names."""

    losses: np.ndarray
    grads: dict[str, np.ndarray]
    outputs: list[dict[str, list[np.ndarray]]]
    buffers: dict[str, np.ndarray]


def _dotted(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _param_attrs(sub: nnx.Module) -> dict[str, str]:
    """``{torch local name: attribute}`` of a module's own tensors, as ``jaxnets.nn`` names them:
    a layer's ``torch_state()``, else (a user's module) its ``nnx.Param`` attributes as they are.
    """
    hook = getattr(sub, "torch_state", None)
    if callable(hook):
        return {local: entry.attr for local, entry in hook().items()}
    return {name: name for name, value in vars(sub).items() if isinstance(value, nnx.Param)}


def param_paths(module: nnx.Module) -> dict[str, NnxPath]:
    """Each ``nnx.Param``'s torch name, keyed to its path in the NNX state.

    Raises:
      StructureError: a parameter that no torch key names.
    """
    names: dict[int, str] = {}
    for path, sub in nn.named_modules(module):
        for local, attr in _param_attrs(sub).items():
            variable = operator.attrgetter(attr)(sub)
            names.setdefault(id(variable), _dotted(path, local))
    paths, unnamed = {}, []
    for nnx_path, variable in nnx.to_flat_state(nnx.state(module, nnx.Param)):
        if id(variable) in names:
            paths[names[id(variable)]] = tuple(nnx_path)
        else:
            unnamed.append("/".join(str(p) for p in nnx_path))
    if unnamed:
        raise StructureError(
            "nnx.Param(s) with no torch name (no layer's torch_state() lists them): "
            + ", ".join(unnamed)
        )
    return paths


def _cast(value: Any, dtype: jnp.dtype) -> Any:
    floating = hasattr(value, "dtype") and jnp.issubdtype(value.dtype, jnp.floating)
    if isinstance(value, jax.Array) and floating:
        return value.astype(dtype)
    if isinstance(value, jax.ShapeDtypeStruct) and floating:
        # A model built under nnx.eval_shape (shapes only, every value about to be loaded).
        return jax.ShapeDtypeStruct(value.shape, dtype)
    return value


def prepared(module: nnx.Module, torch_state: dict[str, np.ndarray], dtype: Any) -> nnx.Module:
    """A copy of ``module`` with floating state in ``dtype`` holding ``torch_state``."""
    graphdef, state = nnx.split(module)
    copy = nnx.merge(graphdef, jax.tree.map(lambda v: _cast(v, dtype), state))
    nn.load_state_dict(copy, torch_state)
    return copy


class _Recorder:
    """The active recording: outputs by torch path, and the stack of modules now running."""

    def __init__(self, path_of: dict[int, str]):
        self.path_of = path_of
        self.outputs: dict[str, list[Any]] = {}
        self.stack: list[str] = []

    def current(self) -> str | None:
        return self.stack[-1] if self.stack else None


_RECORDER: contextvars.ContextVar[_Recorder | None] = contextvars.ContextVar(
    "parity_port_recorder", default=None
)


@functools.cache
def _recording_class(cls: type) -> type:
    """``cls`` with a ``__call__`` that also hands its output to the active recorder."""

    def __call__(self: nnx.Module, *args: Any, **kwargs: Any) -> Any:
        recorder = _RECORDER.get()
        path = None if recorder is None else recorder.path_of.get(id(self))
        if path is None:
            return cls.__call__(self, *args, **kwargs)
        recorder.stack.append(path)
        try:
            out = cls.__call__(self, *args, **kwargs)
        finally:
            recorder.stack.pop()
        recorder.outputs.setdefault(path, []).extend(jax.tree.leaves(out))
        return out

    namespace = {
        "__call__": __call__,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
    }
    return type(cls.__name__, (cls,), namespace)


@contextlib.contextmanager
def recording(module: nnx.Module) -> Iterator[_Recorder]:
    """Within the block, every call of a submodule appends its output leaves to the recorder's
    ``outputs``, ``{torch path: [arrays]}`` (call order per module), and ``current()`` names the
    innermost module running; works while tracing too."""
    named = nn.named_modules(module)
    recorder = _Recorder({id(sub): path for path, sub in named})
    swapped = {id(sub): (sub, type(sub)) for _, sub in named}
    token = _RECORDER.set(recorder)
    try:
        # object.__setattr__: nnx.Module's own __setattr__ would treat __class__ as a field.
        for sub, cls in swapped.values():
            object.__setattr__(sub, "__class__", _recording_class(cls))
        yield recorder
    finally:
        for sub, cls in swapped.values():
            object.__setattr__(sub, "__class__", cls)
        _RECORDER.reset(token)


def _float_dtype(params: dict[str, jax.Array]) -> Any:
    floating = [a.dtype for a in params.values() if jnp.issubdtype(a.dtype, jnp.floating)]
    return floating[0] if floating else jnp.result_type(float)


def _draw_value(value: np.ndarray, dtype: Any) -> jax.Array:
    """A recorded torch draw as a JAX array: floating values in the run's dtype."""
    if np.issubdtype(value.dtype, np.floating):
        return jnp.asarray(value, dtype)
    return jnp.asarray(value)


def _state(arrays: dict[str, jax.Array], paths: dict[str, NnxPath]) -> nnx.State:
    return nnx.from_flat_state([(paths[name], value) for name, value in arrays.items()])


def _train_step(
    graphdef: nnx.GraphDef,
    paths: dict[str, NnxPath],
    loss_fn: Callable[[Any, Any], jax.Array],
    tx: optax.GradientTransformation | None,
    channels_last: bool,
    recorded: tuple[random.Recorded, ...],
    label: str,
    params: dict[str, jax.Array],
    rest: nnx.State,
    opt_state: Any,
    inputs: tuple[Any, ...],
    target: Any,
    draws: tuple[jax.Array, ...],
) -> tuple[Any, ...]:
    """One step: ``(params, rest, opt_state)`` after it, and this step's loss, gradients and
    per-module outputs (recorded in the traced forward pass itself). Every random draw of the
    forward pass and loss is torch's, replayed from ``draws`` (described by ``recorded``)."""

    def loss_of(params: dict[str, jax.Array]) -> tuple[jax.Array, nnx.State]:
        # Fresh variables at this trace level: BatchNorm writes its statistics into them.
        model = nnx.merge(graphdef, _state(params, paths), jax.tree.map(lambda v: v, rest))
        with recording(model) as recorder:
            replay = random.Replay(
                recorded, draws, channels_last=channels_last, locate=recorder.current, label=label
            )
            with random.replaying(replay):
                output = model(*inputs)
                loss = loss_fn(output, target)
            replay.finish()
        return loss, (nnx.split(model, nnx.Param, ...)[2], recorder.outputs)

    (loss, (new_rest, outputs)), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    if tx is not None:
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    return params, new_rest, opt_state, loss, grads, outputs


def train(
    module: nnx.Module,
    batches: Sequence[Batch],
    loss_fn: Callable[[Any, Any], jax.Array],
    tx: optax.GradientTransformation | None,
    draws: Sequence[StepDraws],
    *,
    channels_last: bool = False,
    label: str = "",
    members: int = 0,
    seed: int = 0,
    every_step: bool = False,
) -> JaxRun:
    """Train a copy of ``module`` one compiled step per batch, replaying each step's ``draws``
    (torch's, cast to the run's dtype); record what ``JaxRun`` holds.

    With ``members > 0`` it trains ``1 + members`` copies at once (``jax.vmap``): the start as it
    is, then ``members`` starts whose parameters, state, inputs and draws carry relative noise of
    float32's unit roundoff (``parity.ensemble``, keyed by ``seed``); every array of the ``JaxRun``
    then has that leading axis. Run in float64, this is the ensemble of the float32 rule. Per-module
    outputs are kept for the first step, or for every step with ``every_step``.
    """
    paths = param_paths(module)
    graphdef, param_state, rest = nnx.split(module, nnx.Param, ...)
    flat = dict(nnx.to_flat_state(param_state))
    params = {name: flat[path].get_value() for name, path in paths.items()}
    dtype = _float_dtype(params)
    key = jax.random.key(seed)
    if members:
        key, start = jax.random.split(key)
        params, rest = ensemble.perturbed((params, rest), start, members)
    init = jax.vmap(tx.init) if members and tx is not None else getattr(tx, "init", None)
    opt_state = init(params) if init is not None else None
    quick = len(batches) <= QUICK_COMPILE_STEPS
    step = _compiled_step(graphdef, paths, loss_fn, tx, channels_last, bool(members), quick)
    losses, first_grads, kept_outputs = [], None, []
    for index, ((inputs, target), step_draws) in enumerate(zip(batches, draws, strict=True)):
        values = tuple(_draw_value(v, dtype) for v in step_draws.values)
        arrays = (inputs, target, values)
        if members:
            key, noise = jax.random.split(key)
            arrays = ensemble.perturbed(arrays, noise, members)
        try:
            params, rest, opt_state, loss, grads, outputs = step(
                tuple(step_draws.recorded), label, params, rest, opt_state, *arrays
            )
        except random.ReplayError as error:
            raise random.ReplayError(f"step {index}: {error}") from None
        losses.append(np.asarray(loss, np.float64))
        if first_grads is None:
            first_grads = grads
        if index == 0 or every_step:
            kept_outputs.append({p: [np.asarray(a) for a in out] for p, out in outputs.items()})
    # The protocol's own state_dict turns the gradients into torch's layouts.
    if not members:
        grads_torch, final = _torch_layout(graphdef, paths, first_grads, params, rest)
    else:
        per_member = [
            _torch_layout(graphdef, paths, *ensemble.member((first_grads, params, rest), m))
            for m in range(members + 1)
        ]
        grads_torch, final = (
            {k: np.stack([part[i][k] for part in per_member]) for k in per_member[0][i]}
            for i in (0, 1)
        )
    return JaxRun(
        np.stack(losses, axis=-1),
        {name: grads_torch[name] for name in paths},
        kept_outputs,
        {k: v for k, v in final.items() if k not in paths},
    )


def _torch_layout(graphdef, paths, grads, params, rest) -> tuple[dict, dict]:
    """``(gradients, final state)`` as torch-named, torch-layout state dicts."""
    grads_torch = nn.state_dict(nnx.merge(graphdef, _state(grads, paths), rest))
    final = nn.state_dict(nnx.merge(graphdef, _state(params, paths), rest))
    return grads_torch, final


# A check of a few steps is mostly compilation: up to this many steps the step compiles without
# XLA's optimisation passes on CPU (the zoo of generated ports checks in 33 s instead of 77 s on
# two cores); a long check runs the optimised program.
QUICK_COMPILE_STEPS = 32
QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


def _compiled_step(
    graphdef, paths, loss_fn, tx, channels_last: bool, vmapped: bool, quick: bool = False
):
    """The jit-compiled training step (vmapped over an ensemble's leading axis when asked);
    the draws' descriptions and the run's label are static, their values arguments."""

    def run(recorded, label, *arrays):
        body = functools.partial(
            _train_step, graphdef, paths, loss_fn, tx, channels_last, recorded, label
        )
        return jax.vmap(body)(*arrays) if vmapped else body(*arrays)

    options = QUICK_COMPILE if quick and jax.default_backend() == "cpu" else None
    return jax.jit(run, static_argnums=(0, 1), compiler_options=options)
