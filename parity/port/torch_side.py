"""The torch half of a port check: borrow the user's module and optimiser, train, give them back.

:func:`borrowed` casts the module's floating parameters and buffers to the run's dtype (as
copies), and on exit puts back every original tensor object, gradient, optimiser option, optimiser
state and scheduler state, so the caller's objects end as they started. :func:`train` runs torch's
loop ``zero_grad; loss = loss_fn(module(*inputs), target); backward; step; scheduler.step`` and
records the losses, the first step's gradients, per-module outputs at the first step or at every
step (forward hooks, in the order they fire: torch's execution order), the buffers after the
run, and every step's random draws.
"""

from __future__ import annotations

import collections
import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from parity.port.draws import Draws, StepDraws

Batch = tuple[tuple[Any, ...], Any]


@dataclass
class TorchRun:
    """What one torch run recorded (arrays in torch's layouts)."""

    losses: np.ndarray
    grads: dict[str, np.ndarray]
    outputs: list[dict[str, list[np.ndarray]]]
    order: list[str]
    buffers: dict[str, np.ndarray]
    draws: list[StepDraws]


def tensor_leaves(value: Any) -> list[torch.Tensor]:
    """The tensors in a module output (a tensor, or nested tuples, lists and dicts of them)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in tensor_leaves(v)]
    if isinstance(value, dict):
        return [t for k in sorted(value) for t in tensor_leaves(value[k])]
    return []


def host(tensor: torch.Tensor) -> np.ndarray:
    """A detached NumPy copy (the tensor may change in place later)."""
    return tensor.detach().cpu().numpy().copy()


def _cast_state(state: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """A copy of one parameter's optimiser state (Adagrad fills it when built) for a ``dtype``
    run: floating tensors cast, ``step`` kept, as torch's ``Optimizer.load_state_dict`` does."""
    out = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            cast = value.is_floating_point() and key != "step"
            out[key] = value.to(dtype, copy=True) if cast else value.clone()
        else:
            out[key] = copy.deepcopy(value)
    return out


@contextlib.contextmanager
def borrowed(
    module: torch.nn.Module, optimizer: Any, scheduler: Any, dtype: torch.dtype
) -> Iterator[None]:
    """Cast ``module`` to ``dtype`` for the block, and restore it, ``optimizer``, ``scheduler``.

    Parameters keep their identity (the optimiser refers to them) and get copies as data, so
    training in the block never writes to the caller's tensors.
    """
    params = list(module.parameters())
    saved_params = [(p, p.data, p.grad) for p in params]
    saved_buffers = [
        (owner, name, buf)
        for owner in module.modules()
        for name, buf in owner._buffers.items()
        if buf is not None
    ]
    saved_groups = (
        [
            {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
            for g in optimizer.param_groups
        ]
        if optimizer is not None
        else []
    )
    # Swapped, not copied: the state is keyed by the parameters themselves.
    saved_state = optimizer.state if optimizer is not None else {}
    saved_flag = getattr(optimizer, "_opt_called", None)
    saved_scheduler = copy.deepcopy(scheduler.state_dict()) if scheduler is not None else None
    try:
        if optimizer is not None:
            optimizer.state = collections.defaultdict(
                dict, {p: _cast_state(s, dtype) for p, s in saved_state.items()}
            )
        with torch.no_grad():
            for p in params:
                p.data = p.data.to(dtype, copy=True) if p.is_floating_point() else p.data.clone()
                p.grad = None
            for owner, name, buf in saved_buffers:
                owner._buffers[name] = (
                    buf.to(dtype, copy=True) if buf.is_floating_point() else buf.clone()
                )
        yield
    finally:
        for p, data, grad in saved_params:
            p.data = data
            p.grad = grad
        for owner, name, buf in saved_buffers:
            owner._buffers[name] = buf
        if optimizer is not None:
            for group, options in zip(optimizer.param_groups, saved_groups, strict=True):
                params_of_group = group["params"]
                group.clear()
                group.update(options, params=params_of_group)
            optimizer.state = saved_state
            if saved_flag is None:
                optimizer.__dict__.pop("_opt_called", None)
            else:
                optimizer._opt_called = saved_flag
        if scheduler is not None:
            scheduler.load_state_dict(saved_scheduler)


def _record_outputs(module: torch.nn.Module) -> tuple[dict[str, list], list[str], list[Any]]:
    """Forward hooks on every module: ``({path: [arrays]}, firing order, handles)``."""
    outputs: dict[str, list[np.ndarray]] = {}
    order: list[str] = []
    handles = []
    for path, sub in module.named_modules():

        def hook(_mod: torch.nn.Module, _args: Any, out: Any, path: str = path) -> None:
            if path not in outputs:
                order.append(path)
            outputs.setdefault(path, []).extend(host(t) for t in tensor_leaves(out))

        handles.append(sub.register_forward_hook(hook))
    return outputs, order, handles


def train(
    module: torch.nn.Module,
    batches: Sequence[Batch],
    loss_fn: Callable[[Any, Any], torch.Tensor],
    optimizer: Any,
    scheduler: Any,
    draws: Draws,
    every_step: bool = False,
) -> TorchRun:
    """Run one torch training step per batch; see the module docstring for what is recorded.
    ``draws`` records (or replays) each step's random draws of the forward pass and loss;
    per-module outputs are recorded at the first step, or at every step with ``every_step``."""
    param_names = [name for name, p in module.named_parameters() if p.requires_grad]
    outputs_by_step: list[dict[str, list[np.ndarray]]] = []
    order: list[str] = []
    handles: list[Any] = []
    losses, grads = [], {}
    try:
        for step, (inputs, target) in enumerate(batches):
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)
            if step == 0 or every_step:
                outputs, step_order, handles = _record_outputs(module)
                outputs_by_step.append(outputs)
                order = order or step_order
            with draws.step():
                loss = loss_fn(module(*inputs), target)
            for handle in handles:
                handle.remove()
            loss.backward()
            losses.append(loss.item())
            if step == 0:
                params = dict(module.named_parameters())
                grads = {n: host(params[n].grad) for n in param_names if params[n].grad is not None}
            if optimizer is not None:
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
    finally:
        for handle in handles:
            handle.remove()
        draws.close()
    param_keys = set(dict(module.named_parameters(remove_duplicate=False)))
    buffers = {k: host(v) for k, v in module.state_dict().items() if k not in param_keys}
    return TorchRun(
        np.asarray(losses, np.float64), grads, outputs_by_step, order, buffers, draws.steps
    )
