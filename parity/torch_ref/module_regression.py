"""Seed 004's ``nn.Module`` linear regression with a shuffled ``DataLoader`` and ``optim.SGD``.

The loader draws its permutation from the global generator seeded by ``torch.manual_seed``, as
the tutorial's would; the dataset carries each sample's index as a third field so the order
torch used can be handed to JAX.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from parity.torch_ref import (
    GradHook,
    Reference,
    TrainingStep,
    first_grads,
    loader_step,
    loader_training,
    numpy,
)


class LinearRegression(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x):
        return self.linear(x)


def make_step(
    model: LinearRegression, *, learning_rate: float, on_backward: GradHook | None = None
) -> TrainingStep:
    """The tutorial's step on one batch, ``step(x, y)``: ``MSELoss`` and ``optim.SGD``."""
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    return loader_step(model, nn.MSELoss(), optimizer, on_backward)


def run(
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
    epochs: int = 20,
    batch_size: int = 10,
    learning_rate: float = 0.05,
    n: int = 100,
    device: str = "cpu",
) -> Reference:
    torch.manual_seed(seed)
    model = LinearRegression()
    x = torch.randn(n, 1)
    y = 3 * x + 2 + 0.1 * torch.randn(n, 1)
    model = model.to(dtype=dtype, device=device)
    x, y = x.to(dtype=dtype, device=device), y.to(dtype=dtype, device=device)
    params = {k: numpy(v) for k, v in model.state_dict().items()}
    loader = DataLoader(TensorDataset(x, y, torch.arange(n)), batch_size=batch_size, shuffle=True)
    grads, keep_first = first_grads()
    step = make_step(model, learning_rate=learning_rate, on_backward=keep_first).step
    losses, orders = loader_training(step, loader, epochs)
    inputs = {
        "x": numpy(x),
        "y": numpy(y),
        "orders": orders,
        "batch_size": np.asarray(batch_size),
    }
    return Reference(params, inputs, np.asarray(losses), grads)
