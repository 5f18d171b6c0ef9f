"""Seed 004's custom backward as ``torch.autograd.Function``s, in the model that
``jaxnets.experiments.custom_backward`` ports: binary weights with a straight-through sign, a
clamped gradient chain and an L2 pull added in the backward pass."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from parity.torch_ref import (
    GradHook,
    Reference,
    TrainingStep,
    first_grads,
    leaf,
    numpy,
    optimizer_step,
)

CLIP, PENALTY = 0.05, 1e-2


class RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


class SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sign(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (x.abs() <= 1).to(grad_output.dtype)


class ClipGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bound):
        ctx.bound = bound
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.clamp(-ctx.bound, ctx.bound), None


class GradientPenalty(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x)
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output + ctx.weight * x, None


def predict(W, scale, X):
    binary = SignSTE.apply(GradientPenalty.apply(W, PENALTY))
    return ClipGradient.apply(X.mm(binary), CLIP) * scale


def make_step(
    W: torch.Tensor,
    scale: torch.Tensor,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    learning_rate: float,
    on_backward: GradHook | None = None,
) -> TrainingStep:
    """One ``optim.SGD`` step of ``predict`` under MSE; ``W`` and ``scale`` are leaves that
    require grad."""
    optimizer = torch.optim.SGD([W, scale], lr=learning_rate)
    return optimizer_step(
        lambda: F.mse_loss(predict(W, scale, X), y),
        optimizer,
        {"W": W, "scale": scale},
        on_backward,
    )


def run(
    seed: int = 0,
    *,
    dtype: torch.dtype = torch.float32,
    steps: int = 100,
    learning_rate: float = 0.05,
    n: int = 32,
    d: int = 8,
    device: str = "cpu",
) -> Reference:
    torch.manual_seed(seed)
    W = leaf(torch.rand(d, 1) * 2 - 1, dtype, device)
    scale = leaf(torch.ones(1), dtype, device)
    X = torch.randn(n, d)
    teacher = torch.randn(d, 1).sign()
    y = 0.5 * X.mm(teacher) + 0.1 * torch.randn(n, 1)
    X, y = X.to(dtype=dtype, device=device), y.to(dtype=dtype, device=device)
    params = {"W": numpy(W), "scale": numpy(scale)}
    grads, keep_first = first_grads()
    step = make_step(W, scale, X, y, learning_rate=learning_rate, on_backward=keep_first).step
    losses = [step().item() for _ in range(steps)]
    return Reference(params, {"X": numpy(X), "y": numpy(y)}, np.asarray(losses), grads)
