"""Seed 000 as written: a raw-tensor two-layer network trained by hand under ``no_grad``."""

from __future__ import annotations

import numpy as np
import torch

from parity.torch_ref import GradHook, Reference, TrainingStep, first_grads, leaf, numpy, script


def make_step(
    X: torch.Tensor,
    y: torch.Tensor,
    W1: torch.Tensor,
    W2: torch.Tensor,
    *,
    learning_rate: float,
    on_backward: GradHook | None = None,
) -> TrainingStep:
    """The tutorial's step: forward, sum of squares, ``backward``, manual SGD, grads zeroed.

    ``W1`` and ``W2`` are leaves that require grad; the step updates them in place.
    """
    parameters = {"W1": W1, "W2": W2}

    def step() -> torch.Tensor:
        y_hat = X.mm(W1).clamp(min=0).mm(W2)
        loss = (y_hat - y).pow(2).sum()
        loss.backward()
        if on_backward is not None:
            on_backward(parameters)
        with torch.no_grad():
            # The tutorial's ``W1 -= learning_rate * W1.grad`` is this in-place op; spelled as a
            # call because a closure cannot rebind W1.
            W1.sub_(learning_rate * W1.grad)
            W2.sub_(learning_rate * W2.grad)
            W1.grad.zero_()
            W2.grad.zero_()
        return loss.detach()

    return TrainingStep(step, parameters)


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

    grads, keep_first = first_grads()
    step = make_step(X, y, W1, W2, learning_rate=learning_rate, on_backward=keep_first).step
    all_loss = [step().item() for _ in range(steps)]
    return Reference(params, {"X": numpy(X), "y": numpy(y)}, np.asarray(all_loss), grads)


def main(argv: list[str] | None = None) -> None:
    """The tutorial as a script: ``Epoch:<t>   Loss:<loss>`` every step, then the loss plot."""
    script.run_steps(
        run,
        argv,
        description=__doc__,
        name="mlp",
        steps=500,
        line="Epoch:{t}   Loss:{loss}",
        xlabel="Epoch",
    )


if __name__ == "__main__":
    main()
