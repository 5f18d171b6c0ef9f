"""Seed 002 as written: ``y = w*x`` by per-sample SGD on ``w.data``, gradient zeroed by hand."""

from __future__ import annotations

import numpy as np
import torch

from parity.torch_ref import Reference, numpy

x_data = [1.0, 2.0, 3.0]
y_data = [2.0, 4.0, 6.0]


def run(
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
    epochs: int = 100,
    learning_rate: float = 0.01,
    device: str = "cpu",
) -> Reference:
    # The tutorial draws nothing at random; the seed is set for uniformity with the others.
    torch.manual_seed(seed)
    w = torch.tensor([1.0], dtype=dtype, device=device)
    w.requires_grad = True
    params = {"w": numpy(w)}

    def forward(x):
        return x * w

    def loss(x, y):
        y_val = forward(x)
        return (y_val - y) ** 2

    losses, grads = [], {}
    for _epoch in range(epochs):
        for x, y in zip(x_data, y_data, strict=True):
            l = loss(x, y)  # noqa: E741 - the tutorial's name
            l.backward()
            losses.append(l.item())
            if not grads:
                grads = {"w": numpy(w.grad)}
            w.data = w.data - learning_rate * w.grad.data
            w.grad.data.zero_()
    # Python floats enter torch's arithmetic in w's dtype; JAX gets them as arrays of that dtype.
    inputs = {
        "xs": np.asarray(x_data, params["w"].dtype),
        "ys": np.asarray(y_data, params["w"].dtype),
    }
    return Reference(params, inputs, np.asarray(losses), grads)
