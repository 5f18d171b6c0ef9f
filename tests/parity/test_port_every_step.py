"""``check_port(..., layers="every")``: every module's output at every step, so a port that
only drifts once training has moved the weights is named at its layer and step."""

from __future__ import annotations

import jax.numpy as jnp
import pytest
import torch
from flax import nnx

from jaxnets import nn
from parity import check_port


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = torch.nn.Linear(4, 8, dtype=torch.float64)
        self.fc2 = torch.nn.Linear(8, 2, dtype=torch.float64)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class ClippedLinear(nn.Linear):
    """Wrong only once a weight leaves [-0.5, 0.5]: torch's initial weights are inside
    (U(±1/2) for 4 inputs), so the first step, gradients included, is exact."""

    def __call__(self, x):
        kernel = jnp.clip(self.kernel[...], -0.5, 0.5)
        return x @ kernel + self.bias[...][None, :]


class JaxNet(nnx.Module):
    def __init__(self, first=nn.Linear):
        self.fc1 = first(4, 8, rngs=nnx.Rngs(0))
        self.fc2 = nn.Linear(8, 2, rngs=nnx.Rngs(0))

    def __call__(self, x):
        return self.fc2(jnp.tanh(self.fc1(x)))


def _check(port, layers):
    model = TorchNet()
    x = torch.randn(16, 4, dtype=torch.float64)
    y = torch.randn(16, 2, dtype=torch.float64) * 10
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    return check_port(
        model,
        port,
        (x, y),
        loss="mse_loss",
        optimizer=optimizer,
        steps=4,
        dtype="float64",
        layers=layers,
    )


def test_every_step_compares_every_layer_at_every_step():
    report = _check(JaxNet(), "every")
    assert report.passed, report
    steps = {row.step for row in report.rows if row.quantity == "output" and row.name == "fc1"}
    assert steps == {0, 1, 2, 3}


def test_a_port_that_drifts_later_is_named_at_its_layer_and_step():
    first = _check(JaxNet(ClippedLinear), "first").first_divergence
    assert first.quantity == "loss" and first.step > 0
    every = _check(JaxNet(ClippedLinear), "every").first_divergence
    assert (every.quantity, every.layer, every.step) == ("output", "fc1", first.step)


def test_layers_must_be_first_or_every():
    with pytest.raises(ValueError, match="layers must be 'first' or 'every'"):
        _check(JaxNet(), "all")
