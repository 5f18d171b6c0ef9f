"""The PyTorch originals, one module per experiment, each the tutorial's code after a seed.

Each ``run`` draws in the tutorial's order and dtype (float32) right after
``torch.manual_seed(seed)``, so the numbers are the tutorial's own; a float64 run casts those same
draws up, which makes it the exact-arithmetic reference for the float32 run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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


def loader_training(
    model: torch.nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    epochs: int,
) -> tuple[list[float], np.ndarray, dict[str, np.ndarray]]:
    """The tutorials' ``DataLoader`` loop: per batch ``zero_grad``, loss, ``backward``, ``step``.

    The loader yields ``(x, target, index)``: the dataset carries each sample's index so that
    the order torch's sampler drew can be handed to JAX.

    Returns:
      ``(losses, orders, grads)``: one ``loss.item()`` per step, the ``(epochs, n)`` int64 sample
      orders, and the first step's gradients keyed like ``named_parameters``.
    """
    losses, orders, grads = [], [], {}
    for _epoch in range(epochs):
        order = []
        for xb, yb, index in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            if not grads:
                grads = {k: numpy(p.grad) for k, p in model.named_parameters()}
            optimizer.step()
            losses.append(loss.item())
            order += index.tolist()
        orders.append(order)
    return losses, np.asarray(orders, dtype=np.int64), grads
