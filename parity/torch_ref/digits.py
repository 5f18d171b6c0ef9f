"""The digits classifier in PyTorch: scikit-learn's ``load_digits`` data (read by
``jaxnets.data.bundled``, which skips scikit-learn's one-second import), a ``randperm`` hold-out
split, ``nn.Module`` classifier, shuffled ``DataLoader`` (global generator), ``F.cross_entropy``
and ``optim.Adam``."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from jaxnets.data import bundled
from parity.torch_ref import (
    GradHook,
    Reference,
    TrainingStep,
    first_grads,
    loader_step,
    loader_training,
    numpy,
)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def make_step(
    model: Classifier, *, learning_rate: float, on_backward: GradHook | None = None
) -> TrainingStep:
    """One step on one batch, ``step(x, labels)``: ``F.cross_entropy`` and ``optim.Adam``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    return loader_step(model, F.cross_entropy, optimizer, on_backward)


def run(
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    n_test: int = 360,
    device: str = "cpu",
) -> Reference:
    torch.manual_seed(seed)
    data, target = bundled.digits()
    images = torch.tensor(data / 16.0, dtype=torch.float32)
    labels = torch.tensor(target, dtype=torch.int64)
    perm = torch.randperm(len(images))
    test, training = perm[:n_test], perm[n_test:]
    model = Classifier()
    model = model.to(dtype=dtype, device=device)
    images = images.to(dtype=dtype, device=device)
    labels = labels.to(device)
    params = {k: numpy(v) for k, v in model.state_dict().items()}
    dataset = TensorDataset(images[training], labels[training], torch.arange(len(training)))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    grads, keep_first = first_grads()
    step = make_step(model, learning_rate=learning_rate, on_backward=keep_first).step
    losses, orders = loader_training(step, loader, epochs)
    with torch.no_grad():
        accuracy = (model(images[test]).argmax(-1) == labels[test]).double().mean().item()
    inputs = {
        "x": numpy(images[training]),
        "labels": numpy(labels[training]),
        "x_test": numpy(images[test]),
        "labels_test": numpy(labels[test]),
        "orders": orders,
        "batch_size": np.asarray(batch_size),
    }
    return Reference(params, inputs, np.asarray(losses), grads, metrics={"accuracy": accuracy})
