"""The PyTorch originals, one module per experiment, each the tutorial's code after a seed.

Each ``run`` draws in the tutorial's order and dtype (float32) right after
``torch.manual_seed(seed)``, so the numbers are the tutorial's own; a float64 run casts those same
draws up, which makes it the exact-arithmetic reference for the float32 run.

Each trainable module's ``make_step`` binds the tutorial's training step to given tensors (the
criterion and optimiser built as the tutorial builds them) and returns it as a ``TrainingStep``;
``run`` trains with that step, and ``parity.bench`` times the same step on the same start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Reference:
    """What a torch run hands to the comparison, all as NumPy in torch's own layouts.

    ``params`` is the initial ``state_dict``, ``inputs`` the data, ``losses`` one ``loss.item()``
    per optimiser step, ``grads`` the gradient of the first step, keyed like ``params``, and
    ``metrics`` any end-of-run figures (e.g. held-out accuracy).
    """

    params: dict[str, np.ndarray]
    inputs: dict[str, np.ndarray]
    losses: np.ndarray
    grads: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def numpy(tensor: torch.Tensor) -> np.ndarray:
    """A detached host copy."""
    return tensor.detach().cpu().numpy().copy()


def leaf(tensor: torch.Tensor, dtype: torch.dtype, device: str) -> torch.Tensor:
    """``tensor`` cast to the run's dtype/device as a fresh leaf that requires grad."""
    return tensor.to(dtype=dtype, device=device).detach().requires_grad_(True)


GradHook = Callable[[Mapping[str, torch.Tensor]], None]


@dataclass(frozen=True)
class TrainingStep:
    """A tutorial's training step bound to the state it trains.

    ``step(*batch)`` runs one step of the tutorial's code and returns the loss, detached.
    ``parameters`` are the tensors it updates in place, named as in ``Reference.params``, and
    ``optimizer`` the torch optimiser whose state carries from step to step (``None`` where the
    tutorial updates by hand), so that a caller can put both back to the start.
    """

    step: Callable[..., torch.Tensor]
    parameters: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer | None = None


def first_grads() -> tuple[dict[str, np.ndarray], GradHook]:
    """An ``on_backward`` hook for the ``make_step`` functions and the dict it fills.

    A step calls its hook with its ``parameters`` between ``backward`` and the update (the
    tutorials that clear ``.grad`` do so after the update); the hook keeps the first call's
    gradients as NumPy and ignores later calls.
    """
    grads: dict[str, np.ndarray] = {}

    def keep_first(parameters: Mapping[str, torch.Tensor]) -> None:
        if not grads:
            grads.update({k: numpy(p.grad) for k, p in parameters.items()})

    return grads, keep_first


def optimizer_step(
    compute_loss: Callable[..., torch.Tensor],
    optimizer: torch.optim.Optimizer,
    parameters: dict[str, torch.Tensor],
    on_backward: GradHook | None = None,
) -> TrainingStep:
    """The step of the tutorials that clear gradients first: ``zero_grad``, the loss of the
    step's batch (``compute_loss(*batch)``), ``backward``, ``step``."""

    def step(*batch: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad()
        loss = compute_loss(*batch)
        loss.backward()
        if on_backward is not None:
            on_backward(parameters)
        optimizer.step()
        return loss.detach()

    return TrainingStep(step, parameters, optimizer)


def loader_step(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    on_backward: GradHook | None = None,
) -> TrainingStep:
    """The ``DataLoader`` tutorials' step on one batch ``(x, target)``."""
    return optimizer_step(
        lambda x, target: loss_fn(model(x), target),
        optimizer,
        dict(model.named_parameters()),
        on_backward,
    )


def loader_training(
    step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    loader: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    epochs: int,
) -> tuple[list[float], np.ndarray]:
    """The tutorials' ``DataLoader`` loop: ``step`` on every batch of every epoch.

    The loader yields ``(x, target, index)``: the dataset carries each sample's index so that
    the order torch's sampler drew can be handed to JAX.

    Returns:
      ``(losses, orders)``: one ``loss.item()`` per step and the ``(epochs, n)`` int64 sample
      orders.
    """
    losses, orders = [], []
    for _epoch in range(epochs):
        order = []
        for xb, yb, index in loader:
            losses.append(step(xb, yb).item())
            order += index.tolist()
        orders.append(order)
    return losses, np.asarray(orders, dtype=np.int64)
