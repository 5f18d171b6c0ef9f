"""Seed 003 as written: autograd on scalars and vectors, ``detach``, accumulation, the graph,
and the five losses with ``reduction`` mean and sum. Each result is recorded by the name that
``jaxnets.lessons.autograd_basics.lessons`` gives it."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from parity.torch_ref import numpy

LOSSES = {
    "mse": nn.MSELoss,
    "l1": nn.L1Loss,
    "cross_entropy": nn.CrossEntropyLoss,
    "bce": nn.BCELoss,
    "bce_with_logits": nn.BCEWithLogitsLoss,
}


def draw_inputs(seed: int, dtype: torch.dtype, batch: int = 4, classes: int = 5) -> dict:
    torch.manual_seed(seed)
    return {
        "x_scalar": torch.tensor(1.0, dtype=dtype),
        "x_vector": torch.tensor([1.0, 2.0, 3.0], dtype=dtype),
        "cotangent": torch.ones(3, dtype=dtype),
        "graph_x": torch.randn(3).to(dtype),
        "graph_y": torch.randn(3).to(dtype),
        "prediction": torch.randn(batch, classes).to(dtype),
        "regression_target": torch.randn(batch, classes).to(dtype),
        "logits": torch.randn(batch, classes).to(dtype),
        "classes": torch.randint(0, classes, (batch,)),
        "binary_logits": torch.randn(batch, classes).to(dtype),
        "binary_target": torch.bernoulli(torch.full((batch, classes), 0.5)).to(dtype),
    }


def _grad_of(make_loss, x: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    x = x.detach().clone().requires_grad_(True)
    loss = make_loss(x)
    loss.backward()
    return loss, numpy(x.grad)


def run(seed: int = 0, *, dtype: torch.dtype = torch.float32, device: str = "cpu"):
    """Returns ``(inputs, results, vector_backward_error)`` as NumPy / str."""
    inputs = {k: v.to(device) for k, v in draw_inputs(seed, dtype).items()}
    results: dict[str, np.ndarray] = {}

    x = inputs["x_scalar"].clone().requires_grad_(True)
    y = x**2
    y.backward()
    results["scalar_grad"] = numpy(x.grad)

    x = inputs["x_vector"].clone().requires_grad_(True)
    y = x**2
    try:
        y.backward()
        error = ""
    except RuntimeError as err:
        error = str(err)
    y.backward(inputs["cotangent"])
    results["vector_vjp"] = numpy(x.grad)
    results["vector_mean_grad"] = _grad_of(lambda v: (v**2).mean(), x)[1]
    results["detach_grad"] = _grad_of(lambda v: ((v**2).detach() * v).sum(), x)[1]

    x = inputs["x_vector"].clone().requires_grad_(True)
    for _ in range(3):
        (x**2).sum().backward()  # no zero_(): .grad accumulates
    results["accumulated_grad_x3"] = numpy(x.grad)

    gx = inputs["graph_x"].clone().requires_grad_(True)
    gy = inputs["graph_y"].clone().requires_grad_(True)
    z = gx * gy
    loss = z.sum()
    loss.backward()
    results["graph_loss"], results["graph_grad_x"], results["graph_grad_y"] = (
        numpy(loss),
        numpy(gx.grad),
        numpy(gy.grad),
    )

    pairs = {
        "mse": (inputs["prediction"], inputs["regression_target"]),
        "l1": (inputs["prediction"], inputs["regression_target"]),
        "cross_entropy": (inputs["logits"], inputs["classes"]),
        "bce": (torch.sigmoid(inputs["binary_logits"]), inputs["binary_target"]),
        "bce_with_logits": (inputs["binary_logits"], inputs["binary_target"]),
    }
    for name, (input, target) in pairs.items():
        for reduction in ("mean", "sum"):
            criterion = LOSSES[name](reduction=reduction)
            value, grad = _grad_of(lambda v, c=criterion, t=target: c(v, t), input)
            results[f"{name}_{reduction}"] = numpy(value)
            results[f"{name}_{reduction}_grad"] = grad
    return {k: numpy(v) for k, v in inputs.items()}, results, error
