"""Seed 000 as written: a raw-tensor two-layer network trained by hand under ``no_grad``."""

from __future__ import annotations

import numpy as np
import torch

from parity.torch_ref import Reference, leaf, numpy


def run(
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
    steps: int = 500,
    learning_rate: float = 1e-6,
    n: int = 64,
    d_in: int = 1000,
    hidden: int = 100,
    d_out: int = 10,
    device: str = "cpu",
) -> Reference:
    torch.manual_seed(seed)
    X = torch.randn(n, d_in).to(dtype=dtype, device=device)
    y = torch.randn(n, d_out).to(dtype=dtype, device=device)
    W1 = leaf(torch.randn(d_in, hidden), dtype, device)
    W2 = leaf(torch.randn(hidden, d_out), dtype, device)
    params = {"W1": numpy(W1), "W2": numpy(W2)}

    all_loss, grads = [], {}
    for t in range(steps):
        y_hat = X.mm(W1).clamp(min=0).mm(W2)
        loss = (y_hat - y).pow(2).sum()
        all_loss.append(loss.item())
        loss.backward()
        if t == 0:
            grads = {"W1": numpy(W1.grad), "W2": numpy(W2.grad)}
        with torch.no_grad():
            W1 -= learning_rate * W1.grad
            W2 -= learning_rate * W2.grad
            W1.grad.zero_()
            W2.grad.zero_()
    return Reference(params, {"X": numpy(X), "y": numpy(y)}, np.asarray(all_loss), grads)
