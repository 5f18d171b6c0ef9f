"""torch.nn.functional's OpInfo samples against jaxnets.nn.functional, values and gradients.

For every ``OpInfo`` of ``torch.testing._internal.common_methods_invocations.op_db`` whose
function jaxnets.nn.functional mirrors (losses are jaxnets.losses' and tested there), every
sample input runs through torch and through the jaxnets function in torch's own layout
(``layout="channels_first"`` where the function has a layout), in float64: outputs, and the
gradients of ``sum(y * cotangent)`` with respect to every floating input torch differentiates,
within ``1e-10`` of each array's largest entry. Random functions (dropouts in training,
``rrelu``, attention dropout) get torch's own draws, recorded at the ATen level
(``parity.port.draws``) and replayed through ``jaxnets.nn.random``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch.testing._internal.common_methods_invocations import op_db

from jaxnets.nn import functional as jF
from jaxnets.nn import random
from parity import compare
from parity.port.draws import Draws

F64_RTOL = 1e-10
COMPILER = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}
# A run covers at most this many samples of an OpInfo, spread evenly over its list (torch's
# max-pool OpInfos have thousands); JAXNETS_TORCH_DB=full runs every one.
SAMPLES_PER_OP = None if os.environ.get("JAXNETS_TORCH_DB") == "full" else 5
# (function, sample index) -> (the words the error must contain, why it is refused).
REFUSED: dict[tuple[str, int], tuple[str, str]] = {}


def _function_name(op: Any) -> str:
    return op.name.removeprefix("nn.functional.")


OPS = {
    f"{_function_name(op)}{'.' + op.variant_test_name if op.variant_test_name else ''}": op
    for op in op_db
    if (op.name.startswith("nn.functional.") or op.name in ("softmax", "log_softmax"))
    and not _function_name(op).endswith("_loss")
    and _function_name(op)
    not in (
        "binary_cross_entropy",
        "binary_cross_entropy_with_logits",
        "cross_entropy",
        "linear_cross_entropy",
        "nll_loss",
        "kl_div",
    )
    and op.variant_test_name != "complex"
}


def _to_jax(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return type(value)(_to_jax(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_jax(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return np.array(value.detach().numpy(), order="C")  # NumPy: no conversion program
    if isinstance(value, torch.dtype):
        return jnp.dtype(str(value).removeprefix("torch."))
    return value


@contextlib.contextmanager
def _replaced(name: str, function: Any):
    original = getattr(torch.nn.functional, name)
    setattr(torch.nn.functional, name, function)
    try:
        yield
    finally:
        setattr(torch.nn.functional, name, original)


def _flat(value: Any) -> list[Any]:
    return jax.tree.leaves(value, is_leaf=lambda x: x is None)


def _outputs(value: Any) -> list[Any]:
    return [leaf for leaf in _flat(value) if leaf is not None]


def _with_fractional_samples(name: str, sample: Any, kwargs: dict) -> dict:
    """A fractional max pool's random window offsets, drawn once by torch and given to both
    sides (torch draws them inside the call otherwise)."""
    if not name.startswith("fractional") or "_random_samples" in kwargs:
        return kwargs
    dims = int(name[-2])
    x = sample.input
    batch, channels = (x.shape[0], x.shape[1]) if x.ndim == dims + 2 else (1, x.shape[0])
    generator = torch.Generator().manual_seed(0)
    draws = torch.rand(batch, channels, dims, dtype=x.dtype, generator=generator)
    return {**kwargs, "_random_samples": draws}


def _check(name: str, fn: Any, op: Any, sample: Any, label: str) -> list[str]:
    args = (sample.input, *sample.args)
    kwargs = _with_fractional_samples(name, sample, dict(sample.kwargs))
    torch_flat = _flat((args, kwargs))
    wrt = [i for i, x in enumerate(torch_flat) if isinstance(x, torch.Tensor) and x.requires_grad]
    # torch's random draws (dropout masks, rrelu's slopes) are recorded and replayed into ours.
    draws = Draws(torch.nn.Module())
    with warnings.catch_warnings(), draws.step():
        warnings.simplefilter("ignore")
        theirs = _outputs(op.op(*args, **kwargs))
    (recorded,) = draws.steps
    rng = np.random.default_rng(7)
    cotangents = [
        rng.standard_normal(tuple(out.shape)) if out.is_floating_point() else None for out in theirs
    ]
    differentiable = [
        (out, c) for out, c in zip(theirs, cotangents, strict=True) if out.requires_grad
    ]
    torch_grads = [np.zeros(tuple(torch_flat[i].shape)) for i in wrt]
    if differentiable:
        total = sum((out * torch.from_numpy(c)).sum() for out, c in differentiable)
        grads = torch.autograd.grad(
            total, [torch_flat[i] for i in wrt], allow_unused=True, materialize_grads=True
        )
        torch_grads = [g.numpy() for g in grads]

    jax_args, jax_kwargs = _to_jax(args), _to_jax(kwargs)
    tree = jax.tree.structure((jax_args, jax_kwargs), is_leaf=lambda x: x is None)
    flat = _flat((jax_args, jax_kwargs))
    ours_fn = fn
    if "layout" in inspect.signature(fn).parameters:
        ours_fn = functools.partial(fn, layout="channels_first")
    torch_fn = getattr(torch.nn.functional, name, None)

    def call(*values):
        leaves = list(flat)
        for i, value in zip(wrt, values, strict=True):
            leaves[i] = value
        call_args, call_kwargs = jax.tree.unflatten(tree, leaves)
        wrapped = (
            getattr(op.op, "__module__", "") == "torch.testing._internal.common_methods_invocations"
        )
        if not wrapped or torch_fn is None:
            return _outputs(ours_fn(*call_args, **call_kwargs))
        # The OpInfo wraps torch's function (to reorder arguments, say): run the wrapper with
        # ours in its place, so that both sides get the same call.
        with _replaced(name, ours_fn):
            return _outputs(op.op(*call_args, **call_kwargs))

    def forward(*values):
        replay = random.Replay(recorded.recorded, [jnp.asarray(v) for v in recorded.values])
        with random.replaying(replay):
            out = call(*values)
        replay.finish()
        return out

    # One compiled program for values and gradients (cheaper than tracing primitives one by one),
    # unoptimised: it runs once.
    program = jax.jit(functools.partial(jax.vjp, forward), compiler_options=COMPILER)
    ours, vjp = program(*[flat[i] for i in wrt])
    problems = []
    if len(ours) != len(theirs):
        return [f"{label}: {len(ours)} outputs, torch {len(theirs)}"]
    values_j, values_t = {}, {}
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        a, b = np.asarray(a), b.detach().numpy()
        if a.shape != b.shape:
            problems.append(f"{label}: output {k} shape {a.shape}, torch {b.shape}")
        elif b.dtype.kind != "f":
            if not np.array_equal(a, b):
                problems.append(f"{label}: output {k} values differ (integers)")
        else:
            values_j[f"output {k}"], values_t[f"output {k}"] = a, b
    if wrt and not problems:
        cots = [
            jnp.asarray(c) if c is not None else np.zeros(np.shape(o), jax.dtypes.float0)
            for o, c in zip(ours, cotangents, strict=True)
        ]
        for k, (a, b) in enumerate(zip(vjp(cots), torch_grads, strict=True)):
            values_j[f"grad {k}"], values_t[f"grad {k}"] = np.asarray(a), b
    for key in list(values_t):
        values_j[key] = values_j[key].astype(np.float64)
        both = np.isnan(values_j[key]) & np.isnan(values_t[key])
        values_j[key] = np.where(both, 0.0, values_j[key])
        values_t[key] = np.where(both, 0.0, values_t[key])
    checks = compare.float64_values(values_j, values_t, rtol=F64_RTOL, floor=F64_RTOL)
    problems += [f"{label}: {c.detail}" for c in checks if not c.passed]
    return problems


@pytest.mark.parametrize("key", sorted(OPS))
def test_op_db_samples(key: str):
    op = OPS[key]
    name = _function_name(op)
    fn = getattr(jF, name, None)
    if fn is None:
        pytest.skip(f"{name} is not in jaxnets.nn.functional yet")
    problems = []
    supported = op.supported_dtypes("cpu")
    if torch.float64 not in supported and torch.int64 not in supported:
        pytest.skip(f"{key} has no CPU samples in float64 or int64")
    dtype = torch.float64 if torch.float64 in supported else torch.int64
    grad = op.supports_autograd and dtype.is_floating_point
    samples = list(op.sample_inputs("cpu", dtype, requires_grad=grad))
    chosen = range(len(samples))
    if SAMPLES_PER_OP is not None and len(samples) > SAMPLES_PER_OP:
        chosen = np.unique(np.linspace(0, len(samples) - 1, SAMPLES_PER_OP).round().astype(int))
    for index in chosen:
        sample = samples[index]
        label = f"{key}[{index}]"
        refused = REFUSED.get((name, index))
        if refused is not None:
            with pytest.raises((NotImplementedError, ValueError), match=refused[0]):
                _check(name, fn, op, sample, label)
            continue
        try:
            problems += _check(name, fn, op, sample, label)
        except Exception as error:  # noqa: BLE001 - every sample reports, not the first
            problems.append(f"{label}: {type(error).__name__}: {error}")
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)
