"""check_port / assert_port: cast, load, train both sides, judge each quantity by parity.compare.

Everything that can be refused is refused before anything runs: modules that do not match path
for path, an optimiser or option ``jaxnets.optim`` does not carry over, inputs in the wrong layout.
Random draws are not refused: torch's (dropout masks, ``randn_like`` noise, ...) are recorded in
its first run, replayed into its other dtype's run, and handed to the port through
``jaxnets.nn.random`` (``parity.port.draws``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

from jaxnets import losses as jax_losses
from jaxnets import nn
from jaxnets._arrays import to_device
from parity import ensemble, optim_map
from parity.port import jax_side, report, torch_side
from parity.port.draws import Draws
from parity.port.jax_side import StructureError
from parity.port.report import PortReport

__all__ = ["check_port", "assert_port"]

DTypeName = Literal["float64", "float32", "both"]
TORCH_DTYPES = {"float64": torch.float64, "float32": torch.float32}
LossSpec = str | tuple[Callable[..., Any], Callable[..., Any]] | None


def _dtypes(dtype: str) -> list[str]:
    if dtype == "both":
        return ["float64", "float32"]
    if dtype in TORCH_DTYPES:
        return [dtype]
    raise ValueError(f"dtype must be 'float64', 'float32' or 'both', got {dtype!r}")


def _batches(batch: Any, steps: int, has_target: bool) -> list[tuple[tuple[Any, ...], Any]]:
    """``[(inputs, target)]`` per step from one tuple or a list of per-step tuples."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if isinstance(batch, list):
        if len(batch) != steps:
            raise ValueError(f"batch is a list of {len(batch)} per-step batches but steps={steps}")
        per_step = batch
    elif isinstance(batch, tuple):
        per_step = [batch] * steps
    else:
        raise TypeError(
            "batch must be a tuple (inputs..., target) of tensors, or a list of them (one per "
            f"step), got {type(batch).__name__}"
        )
    out = []
    for i, item in enumerate(per_step):
        if not isinstance(item, tuple) or len(item) < (2 if has_target else 1):
            want = "(inputs..., target)" if has_target else "(inputs...) (loss=None: no target)"
            raise ValueError(f"batch for step {i} must be a tuple {want}, got {item!r:.80}")
        out.append((item[:-1], item[-1]) if has_target else (item, None))
    return out


def _loss_pair(
    loss: LossSpec, loss_kwargs: dict[str, Any] | None
) -> tuple[Callable[[Any, Any], Any], Callable[[Any, Any], Any]]:
    """``(torch_loss, jax_loss)``, each ``(output, target) -> scalar``."""
    kwargs = dict(loss_kwargs or {})
    if loss is None:
        if kwargs:
            raise ValueError("loss_kwargs given without a loss")

        def torch_sum(output: Any, _: Any) -> torch.Tensor:
            return sum(t.sum() for t in torch_side.tensor_leaves(output))

        def jax_sum(output: Any, _: Any) -> jax.Array:
            return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(output))

        return torch_sum, jax_sum
    if isinstance(loss, str):
        torch_fn = getattr(torch.nn.functional, loss, None)
        jax_fn = getattr(jax_losses, loss, None)
        if torch_fn is None or jax_fn is None:
            raise ValueError(
                f"loss {loss!r} must name a function of both torch.nn.functional and "
                f"jaxnets.losses ({', '.join(jax_losses.__all__)}), or be a (torch_fn, jax_fn) pair"
            )
    elif isinstance(loss, tuple) and len(loss) == 2 and all(map(callable, loss)):
        torch_fn, jax_fn = loss
    else:
        raise TypeError(f"loss must be a name, a (torch_fn, jax_fn) pair or None, got {loss!r}")
    return (lambda out, target: torch_fn(out, target, **kwargs)), (
        lambda out, target: jax_fn(out, target, **kwargs)
    )


def _check_structure(torch_module: torch.nn.Module, jax_module: nnx.Module) -> None:
    torch_paths = [path for path, _ in torch_module.named_modules()]
    jax_paths = [path for path, _ in nn.named_modules(jax_module)]
    only_torch = [p or "(root)" for p in torch_paths if p not in set(jax_paths)]
    only_jax = [p or "(root)" for p in jax_paths if p not in set(torch_paths)]
    if only_torch or only_jax:
        raise StructureError(
            "the modules cannot be matched path for path: only in torch: "
            f"{', '.join(only_torch) or '-'}; only in jax: {', '.join(only_jax) or '-'}"
        )


def _check_layout(torch_module: torch.nn.Module, inputs: Sequence[Any], channels_last: bool):
    """When the first layer with parameters is a convolution, its input's channel axis."""
    first = next(
        (
            (path, sub)
            for path, sub in torch_module.named_modules()
            if next(sub.children(), None) is None and next(sub.parameters(), None) is not None
        ),
        None,
    )
    if first is None or not isinstance(first[1], torch.nn.modules.conv._ConvNd):
        return
    path, conv = first
    images = [
        x for x in inputs if isinstance(x, torch.Tensor) and x.is_floating_point() and x.ndim >= 3
    ]
    if not images:
        return
    shape, channels = tuple(images[0].shape), conv.in_channels
    if channels_last and shape[1] != channels:
        raise ValueError(
            f"channels_last=True takes inputs in torch's layout (N, C, *spatial) and moves C "
            f"last for JAX; got shape {shape}, but the first convolution {path!r} has "
            f"{channels} input channels"
        )
    if not channels_last and shape[1] == channels and shape[-1] != channels:
        raise ValueError(
            f"input of shape {shape} is channels-first, but jaxnets convolutions take "
            f"channels-last inputs; pass channels_last=True (first convolution {path!r})"
        )


def _torch_value(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.detach().to(dtype)
    return value


def _jax_value(value: Any, dtype: str, channels_last: bool) -> Any:
    if not isinstance(value, torch.Tensor):
        return value
    array = value.detach().cpu().numpy()
    if np.issubdtype(array.dtype, np.floating):
        array = array.astype(dtype)
        if channels_last and array.ndim >= 3:
            array = np.moveaxis(array, 1, -1)
    return to_device(array)


def _channels_last(outputs: dict[str, list[np.ndarray]]) -> dict[str, list[np.ndarray]]:
    return {
        path: [np.moveaxis(a, 1, -1) if a.ndim >= 3 else a for a in arrays]
        for path, arrays in outputs.items()
    }


def _laid_out(
    outputs: dict[str, list[np.ndarray]], layouts: Mapping[str, Sequence[Sequence[int]]]
) -> dict[str, list[np.ndarray]]:
    """torch's outputs in the port's layouts: ``layouts[path][k]`` is the axis permutation of
    the path's ``k``-th output array (torch's order where the path or entry is missing)."""
    arranged = {}
    for path, arrays in outputs.items():
        perms = list(layouts.get(path, ()))
        arranged[path] = [
            np.transpose(a, perms[k]) if k < len(perms) and len(perms[k]) == a.ndim else a
            for k, a in enumerate(arrays)
        ]
    return arranged


def _run_torch(
    torch_module, batches, loss_fn, optimizer, scheduler, dtype: str, replay, every_step
) -> torch_side.TorchRun:
    """The torch run in ``dtype``, recording its random draws, or replaying ``replay`` (another
    run's); the caller's objects are restored after it."""
    torch_dtype = TORCH_DTYPES[dtype]
    cast = [
        (tuple(_torch_value(x, torch_dtype) for x in inputs), _torch_value(target, torch_dtype))
        for inputs, target in batches
    ]
    draws = Draws(torch_module, replay, label=dtype)
    with torch_side.borrowed(torch_module, optimizer, scheduler, torch_dtype):
        return torch_side.train(
            torch_module, cast, loss_fn, optimizer, scheduler, draws, every_step
        )


def _run_torch_all(torch_module, batches, loss_fn, optimizer, scheduler, dtypes, every_step):
    """Every torch run, the first recording the draws and the others replaying them; torch's
    random state is the same at the start of each and restored after them."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    runs: dict[str, torch_side.TorchRun] = {}
    with torch.random.fork_rng(devices=devices):
        state = torch.random.get_rng_state()
        for dtype in dtypes:
            torch.random.set_rng_state(state)
            replay = next(iter(runs.values())).draws if runs else None
            runs[dtype] = _run_torch(
                torch_module, batches, loss_fn, optimizer, scheduler, dtype, replay, every_step
            )
    return runs


def _start_state(torch_module: torch.nn.Module, dtype: str) -> dict[str, np.ndarray]:
    """torch's state as ``torch_side.borrowed`` casts it for a ``dtype`` run."""
    state = {}
    for key, value in torch_module.state_dict().items():
        array = torch_side.host(value)
        state[key] = array.astype(dtype) if np.issubdtype(array.dtype, np.floating) else array
    return state


def check_port(
    torch_module: torch.nn.Module,
    jax_module: nnx.Module,
    batch: tuple[Any, ...] | list[tuple[Any, ...]],
    *,
    loss: LossSpec = None,
    loss_kwargs: dict[str, Any] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    steps: int = 1,
    dtype: DTypeName = "both",
    channels_last: bool = False,
    members: int = ensemble.MEMBERS,
    layers: Literal["first", "every"] = "first",
    output_layouts: Mapping[str, Sequence[Sequence[int]]] | None = None,
) -> PortReport:
    """Train ``torch_module`` and its NNX port side by side and judge every step's numbers.

    Args:
      torch_module: the original; its parameters, buffers and gradients, and the optimiser's
        and scheduler's state, are restored afterwards.
      jax_module: the port, made of ``jaxnets.nn`` layers with torch's attribute names; it is
        not changed (a copy is loaded and trained).
      batch: a tuple of tensors ``(inputs..., target)`` used at every step, or a list of such
        tuples, one per step; with ``loss=None`` the tuple is all inputs.
      loss: a ``torch.nn.functional`` name that ``jaxnets.losses`` also has, a
        ``(torch_fn, jax_fn)`` pair called as ``fn(output, target, **loss_kwargs)``, or ``None``
        for the sum of the outputs.
      loss_kwargs: keyword arguments of the loss.
      optimizer: a fresh ``torch.optim`` optimiser of ``torch_module``'s parameters, translated
        group by group to ``jaxnets.optim``; ``None`` compares one forward and backward pass.
      scheduler: a fresh LR scheduler of ``optimizer``, stepped after every optimiser step.
      steps: training steps.
      dtype: ``"float64"`` (the proof of equal algorithms), ``"float32"`` (judged against the
        float64 run, which it then also needs from torch) or ``"both"``.
      channels_last: float inputs of rank >= 3 go to the JAX model as ``(N, *spatial, C)``, and
        torch's per-module outputs of rank >= 3 are compared after the same move (and so are
        its random draws, where the port's draw does not say its layout).
      members: the float32 rule's ensemble: float64 runs of the port from starts perturbed at
        float32's rounding level, whose spread widens the float32 bound where a kink flips
        (``parity.compare``). They run only when torch float32's error alone does not bound
        every float32 quantity (the spread can only widen the bound); 0 judges float32 by
        torch float32's error alone.
      layers: compare every module's output at the first step (``"first"``) or at every step
        (``"every"``: a port that drifts only once training has moved the weights is named at
        the step and layer where it starts).
      output_layouts: where the port's modules keep their outputs in other layouts than the
        ``channels_last`` rule says (a generated port knows each one): ``{torch module path:
        [axis permutation per output array, call after call]}``, the port's axis ``i`` holding
        torch's axis ``perm[i]``; paths not listed are compared in torch's layout, and the
        inputs are not checked against the first convolution.

    Returns:
      A :class:`PortReport`: ``passed``, ``first_divergence``, a row per module output,
      parameter gradient, buffer and loss trajectory in each dtype; ``str()`` is a table.

    Raises:
      StructureError: module paths that do not match (both sides' leftovers listed).
      jaxnets.nn.StateDictError: parameters or buffers that do not fit.
      parity.optim_map.UnsupportedOptimizer: what ``jaxnets.optim`` does not carry over.
      jaxnets.nn.random.ReplayError: the port draws a different number, kind or shape of
        random values than torch (naming both sides' module and draw).
      ValueError: inputs in the wrong layout, bad arguments.
    """
    dtypes = _dtypes(dtype)
    if layers not in ("first", "every"):
        raise ValueError(f"layers must be 'first' or 'every', got {layers!r}")
    every_step = layers == "every"
    if isinstance(members, bool) or not isinstance(members, int) or members < 0:
        raise ValueError(f"members must be a non-negative integer, got {members!r}")
    batches = _batches(batch, steps, has_target=loss is not None)
    torch_loss, jax_loss = _loss_pair(loss, loss_kwargs)
    if optimizer is None and (scheduler is not None or steps > 1):
        raise ValueError("scheduler= and steps > 1 need an optimizer= to train with")
    _check_structure(torch_module, jax_module)
    param_names = {id(p): name for name, p in torch_module.named_parameters()}
    tx = None
    if optimizer is not None:
        tx, _ = optim_map.translate(optimizer, scheduler, param_names)
    if output_layouts is None:
        _check_layout(torch_module, batches[0][0], channels_last)
    torch_dtypes = ["float64"] if dtypes == ["float32"] else []  # float32's truth
    torch_dtypes += dtypes
    with jax.enable_x64(True):  # float64 runs need it; float32 runs keep double scalars too
        # Loading the weights first raises a StateDictError before anything runs.
        models = {
            d: jax_side.prepared(jax_module, _start_state(torch_module, d), d) for d in dtypes
        }
        torch_runs = _run_torch_all(
            torch_module, batches, torch_loss, optimizer, scheduler, torch_dtypes, every_step
        )
        leaves = {p for p, m in torch_module.named_modules() if next(m.children(), None) is None}
        rows: list[report.Row] = []
        loss_log: dict[str, dict[str, list[float]]] = {}
        for d in dtypes:
            jax_batches = _jax_batches(batches, d, channels_last)
            jax_run = jax_side.train(
                models[d],
                jax_batches,
                jax_loss,
                tx,
                torch_runs[d].draws,
                channels_last=channels_last,
                label=d,
                every_step=every_step,
            )
            run = torch_runs[d]
            truth = torch_runs["float64"]
            judged = _judge(d, run, jax_run, truth, leaves, channels_last, output_layouts)
            if d == "float32" and members and not all(row.passed for row in judged):
                # The ensemble can only widen the bound: it runs where torch's error is not enough.
                if "float64" in models:
                    model64 = models["float64"]
                else:
                    state64 = _start_state(torch_module, "float64")
                    model64 = jax_side.prepared(jax_module, state64, "float64")
                ensemble = jax_side.train(
                    model64,
                    _jax_batches(batches, "float64", channels_last),
                    jax_loss,
                    tx,
                    torch_runs["float64"].draws,
                    channels_last=channels_last,
                    label="float64 ensemble",
                    members=members,
                    every_step=every_step,
                )
                judged = _judge(
                    d, run, jax_run, truth, leaves, channels_last, output_layouts, ensemble
                )
            rows += judged
            loss_log[d] = {"torch": run.losses.tolist(), "jax": jax_run.losses.tolist()}
    return PortReport(rows, loss_log)


def _jax_batches(batches, dtype: str, channels_last: bool):
    return [
        (
            tuple(_jax_value(x, dtype, channels_last) for x in inputs),
            _jax_value(target, dtype, channels_last=False),
        )
        for inputs, target in batches
    ]


def _judge(
    dtype, run, jax_run, truth, leaves, channels_last, layouts, ensemble=None
) -> list[report.Row]:
    """Every row of one dtype run, in the order the report reads them."""

    def moved(outputs):
        if layouts is not None:
            return [_laid_out(o, layouts) for o in outputs]
        return [_channels_last(o) for o in outputs] if channels_last else outputs

    torch_outputs = moved(run.outputs)
    sides = [jax_run.outputs, torch_outputs]  # each a list over the recorded steps
    grads = [jax_run.grads, run.grads]
    buffers = [jax_run.buffers, run.buffers]
    losses = [jax_run.losses, run.losses]
    if dtype == "float32":
        sides.append(moved(truth.outputs)[: len(run.outputs)])
        grads.append(truth.grads)
        buffers.append(truth.buffers)
        losses.append(truth.losses)
        if ensemble is not None:
            sides.append(ensemble.outputs)
            grads.append(ensemble.grads)
            buffers.append(ensemble.buffers)
            losses.append(ensemble.losses)
    steps = len(run.losses)
    per_step = [
        report.output_rows(dtype, run.order, leaves, [side[t] for side in sides], step=t)
        for t in range(len(run.outputs))
    ]
    return [
        *per_step[0],
        report.loss_row(dtype, losses),
        *(row for rows in per_step[1:] for row in rows),
        *report.grad_rows(dtype, list(run.grads), grads),
        *report.buffer_rows(dtype, list(run.buffers), buffers, steps),
    ]


def assert_port(
    torch_module: torch.nn.Module,
    jax_module: nnx.Module,
    batch: tuple[Any, ...] | list[tuple[Any, ...]],
    *,
    loss: LossSpec = None,
    loss_kwargs: dict[str, Any] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    steps: int = 1,
    dtype: DTypeName = "both",
    channels_last: bool = False,
    members: int = ensemble.MEMBERS,
) -> PortReport:
    """:func:`check_port` (same arguments), raising when the port breaks any rule.

    Returns:
      The report, when the port passes.

    Raises:
      AssertionError: naming the first diverging layer (or parameter, buffer, loss), the step
        and dtype, the values there, followed by the whole report table.
    """
    result = check_port(
        torch_module,
        jax_module,
        batch,
        loss=loss,
        loss_kwargs=loss_kwargs,
        optimizer=optimizer,
        scheduler=scheduler,
        steps=steps,
        dtype=dtype,
        channels_last=channels_last,
        members=members,
    )
    first = result.first_divergence
    if first is not None:
        raise AssertionError(
            f"port diverges first at {first.layer!r} ({first.quantity}, step {first.step}, "
            f"{first.dtype}): {first.detail}\n{result}"
        )
    return result
