"""A ``torch.optim`` optimiser and LR scheduler as the ``jaxnets.optim`` transformation they equal.

:func:`translate` reads the optimiser's class and every param group's options (all of them: the
keys torch stores in ``param_groups``), and the scheduler's settings, and builds one
``jaxnets.optim.<name>(lr=<schedule>, **options)`` per group, combined with
``optax.multi_transform`` over parameters labelled by their torch names. torch's kernel switches
(``foreach``, ``fused``, ``capturable``, ``differentiable``) select implementations of the same
arithmetic and are dropped. Anything else ``jaxnets.optim`` does not carry raises
:class:`UnsupportedOptimizer` before a step is run, naming the group and option.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import optax
import torch

from jaxnets import optim

# torch class name -> jaxnets.optim factory name.
FACTORIES = {
    "SGD": "sgd",
    "Adam": "adam",
    "AdamW": "adamw",
    "RMSprop": "rmsprop",
    "Adagrad": "adagrad",
    "Adadelta": "adadelta",
    "Adamax": "adamax",
    "NAdam": "nadam",
    "RAdam": "radam",
}
# Kernel choices, not arithmetic; "params" and what schedulers write into a group are read apart.
DROPPED = frozenset({"foreach", "fused", "capturable", "differentiable"})
SCHEDULER_KEYS = frozenset({"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"})
FROZEN = "frozen"


class UnsupportedOptimizer(ValueError):
    """An optimiser, option or scheduler that ``jaxnets.optim`` does not reproduce."""


def _scalar(value: Any) -> Any:
    """A torch scalar tensor as a Python float; tuples (betas) element by element."""
    if isinstance(value, torch.Tensor):
        return float(value.item())
    if isinstance(value, tuple):
        return tuple(_scalar(v) for v in value)
    return value


def group_label(index: int) -> str:
    """The ``optax.multi_transform`` label of param group ``index``.

    >>> group_label(0)
    'group0'
    """
    return f"group{index}"


def _schedule(scheduler: Any, group: Mapping[str, Any]) -> optax.Schedule:
    """The scheduler's rate for one group as a function of the optimiser step count."""
    name = type(scheduler).__name__
    base = float(_scalar(group["initial_lr"]))
    if name == "StepLR":
        return optim.step_lr(base, scheduler.step_size, scheduler.gamma)
    if name == "MultiStepLR":
        # torch keeps a Counter: a milestone listed twice decays twice.
        return optim.multi_step_lr(base, list(scheduler.milestones.elements()), scheduler.gamma)
    if name == "ExponentialLR":
        return optim.exponential_lr(base, scheduler.gamma)
    if name == "CosineAnnealingLR":
        return optim.cosine_annealing_lr(base, scheduler.T_max, scheduler.eta_min)
    if name == "LinearLR":
        return optim.linear_lr(
            base, scheduler.start_factor, scheduler.end_factor, scheduler.total_iters
        )
    if name == "OneCycleLR":
        if scheduler.cycle_momentum:
            raise UnsupportedOptimizer(
                "OneCycleLR(cycle_momentum=True) also cycles the optimiser's momentum, which "
                "jaxnets.optim.one_cycle_lr does not; build it with cycle_momentum=False"
            )
        phases = scheduler._schedule_phases  # torch keeps only the derived phase ends
        total = scheduler.total_steps
        max_lr = float(_scalar(group["max_lr"]))
        min_lr = float(_scalar(group["min_lr"]))
        return optim.one_cycle_lr(
            max_lr,
            total_steps=total,
            pct_start=(float(phases[0]["end_step"]) + 1) / total,
            anneal_strategy=scheduler._anneal_func_type,
            div_factor=max_lr / base,
            final_div_factor=base / min_lr,
            three_phase=len(phases) == 3,
        )
    raise UnsupportedOptimizer(
        f"scheduler {name} has no jaxnets.optim schedule (carried over: StepLR, MultiStepLR, "
        "ExponentialLR, CosineAnnealingLR, LinearLR, OneCycleLR)"
    )


def _group_options(
    factory: Callable[..., Any], class_name: str, group: Mapping[str, Any], index: int
) -> dict[str, Any]:
    """The group's options as keyword arguments of ``factory``; refuses what it cannot take."""
    accepted = set(inspect.signature(factory).parameters)
    options, refused = {}, []
    for key, value in group.items():
        if key == "params" or key in DROPPED or key in SCHEDULER_KEYS:
            continue
        if key == "decoupled_weight_decay" and class_name == "AdamW":
            # jaxnets.optim.adamw is decoupled by construction; torch's AdamW may say so.
            if not value:
                refused.append("decoupled_weight_decay=False (use Adam for coupled decay)")
            continue
        if key not in accepted:
            refused.append(f"{key}={value!r}")
            continue
        options[key] = _scalar(value)
    if refused:
        raise UnsupportedOptimizer(
            f"{class_name} param group {index}: jaxnets.optim.{factory.__name__} does not carry "
            f"over {', '.join(refused)}"
        )
    return options


def translate(
    optimizer: Any, scheduler: Any, param_names: Mapping[int, str]
) -> tuple[optax.GradientTransformation, dict[str, str]]:
    """The optax transformation equal to ``optimizer`` (stepped with ``scheduler``).

    Args:
      optimizer: a ``torch.optim.Optimizer`` that has not stepped yet.
      scheduler: ``None``, or a scheduler of ``optimizer`` that has not stepped yet; the
        transformation then follows torch's ``optimizer.step(); scheduler.step()`` per step.
      param_names: ``id(parameter) -> torch name`` for every parameter of the module.

    Returns:
      ``(transformation, labels)``: an ``optax.multi_transform`` over a dict keyed by torch
      parameter names, and ``labels`` mapping each name to its group's label (parameters in no
      group, or with ``requires_grad=False``, are labelled ``"frozen"`` and never move, as torch
      leaves them).

    Raises:
      UnsupportedOptimizer: an optimiser class, option or scheduler not carried over, or state
        that is not a fresh start.

    >>> layer = torch.nn.Linear(2, 1)
    >>> sgd = torch.optim.SGD(
    ...     [{"params": [layer.weight]}, {"params": [layer.bias], "lr": 0.5}], lr=0.1, momentum=0.9
    ... )
    >>> names = {id(p): name for name, p in layer.named_parameters()}
    >>> tx, labels = translate(sgd, None, names)
    >>> labels
    {'weight': 'group0', 'bias': 'group1'}
    """
    class_name = type(optimizer).__name__
    if class_name not in FACTORIES:
        raise UnsupportedOptimizer(
            f"torch.optim.{class_name} has no jaxnets.optim counterpart (carried over: "
            f"{', '.join(FACTORIES)})"
        )
    # A fresh optimiser holds no state, or (Adagrad) state it built with a step count of 0.
    if any(float(state.get("step", 1)) != 0 for state in optimizer.state.values()):
        raise UnsupportedOptimizer(
            f"{class_name} has already stepped (it holds state): pass a fresh optimiser"
        )
    if scheduler is not None:
        if scheduler.optimizer is not optimizer:
            raise UnsupportedOptimizer("scheduler= schedules a different optimiser")
        if scheduler.last_epoch != 0:
            raise UnsupportedOptimizer(
                f"{type(scheduler).__name__} has already stepped (last_epoch "
                f"{scheduler.last_epoch}): pass a fresh scheduler"
            )
    factory = getattr(optim, FACTORIES[class_name])
    transforms: dict[str, optax.GradientTransformation] = {FROZEN: optax.set_to_zero()}
    labels: dict[str, str] = {}
    for index, group in enumerate(optimizer.param_groups):
        options = _group_options(factory, class_name, group, index)
        if scheduler is not None:
            options["lr"] = _schedule(scheduler, group)
        elif isinstance(options.get("lr"), float) and not math.isfinite(options["lr"]):
            raise UnsupportedOptimizer(f"param group {index}: lr {options['lr']} is not finite")
        label = group_label(index)
        transforms[label] = factory(**options)
        for param in group["params"]:
            if id(param) not in param_names:
                raise UnsupportedOptimizer(
                    f"param group {index} holds a tensor of shape {tuple(param.shape)} that is "
                    "not a parameter of the torch module"
                )
            # torch skips a parameter without a gradient, weight decay and all.
            labels[param_names[id(param)]] = label if param.requires_grad else FROZEN
    for name in param_names.values():
        labels.setdefault(name, FROZEN)
    return optax.multi_transform(transforms, labels), labels
