"""``parity.check_port`` on two models that are not in the library, ported layer for layer.

A conv net (strided, padded, bias-free convolutions, BatchNorm, both poolings, GELU, Flatten,
``Dropout(0.0)``; SGD with momentum and weight decay; cross entropy) and a sequence model
(Embedding, LayerNorm, Tanh, a mean over time; AdamW; MSE) pass over 8 steps with no hand-written
conversion; the same ports with one deliberate error fail, and the report names that layer.
"""

from __future__ import annotations

import jax.numpy as jnp
import pytest
import torch
from flax import nnx

from jaxnets import nn
from parity import check_port

STEPS = 8


class TorchConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 6, 3, padding=1, bias=False),
            torch.nn.BatchNorm2d(6),
            torch.nn.GELU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(6, 8, 3, stride=2, padding=1),
            torch.nn.AvgPool2d(2),
        )
        self.flatten = torch.nn.Flatten()
        self.dropout = torch.nn.Dropout(0.0)
        self.classifier = torch.nn.Linear(8 * 2 * 2, 5)

    def forward(self, x):
        return self.classifier(self.dropout(self.flatten(self.features(x))))


class ConvNet(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs, flatten_channels_last: bool = True):
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1, bias=False, rngs=rngs),
            nn.BatchNorm2d(6),
            nn.GELU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, stride=2, padding=1, rngs=rngs),
            nn.AvgPool2d(2),
        )
        # channels_last=False is the deliberate error: a plain reshape in (H, W, C) order.
        self.flatten = nn.Flatten(channels_last=flatten_channels_last)
        self.dropout = nn.Dropout(0.0)
        self.classifier = nn.Linear(8 * 2 * 2, 5, rngs=rngs)

    def __call__(self, x):
        return self.classifier(self.dropout(self.flatten(self.features(x))))


class TorchSequenceModel(torch.nn.Module):
    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.embedding = torch.nn.Embedding(12, 6)
        self.norm = torch.nn.LayerNorm(6, eps=eps)
        self.act = torch.nn.Tanh()
        self.head = torch.nn.Linear(6, 2)

    def forward(self, tokens):
        return self.head(self.act(self.norm(self.embedding(tokens))).mean(dim=1))


class SequenceModel(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs, eps: float = 1e-5):
        self.embedding = nn.Embedding(12, 6, rngs=rngs)
        self.norm = nn.LayerNorm(6, eps=eps)
        self.act = nn.Tanh()
        self.head = nn.Linear(6, 2, rngs=rngs)

    def __call__(self, tokens):
        return self.head(jnp.mean(self.act(self.norm(self.embedding(tokens))), axis=1))


def _conv_case():
    torch.manual_seed(0)
    model = TorchConvNet()
    batches = [(torch.randn(2, 3, 16, 16), torch.randint(0, 5, (2,))) for _ in range(STEPS)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    return model, batches, optimizer


def _sequence_case():
    torch.manual_seed(0)
    model = TorchSequenceModel()
    batch = (torch.randint(0, 12, (4, 5)), torch.randn(4, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01, weight_decay=0.1)
    return model, batch, optimizer


def test_conv_net_port_passes_float64():
    model, batches, optimizer = _conv_case()
    report = check_port(
        model,
        ConvNet(rngs=nnx.Rngs(0)),
        batches,
        loss="cross_entropy",
        optimizer=optimizer,
        steps=STEPS,
        dtype="float64",
        channels_last=True,
    )
    assert report.passed, str(report)
    assert report.first_divergence is None
    assert len(report.losses["float64"]["jax"]) == STEPS
    names = {(row.quantity, row.name) for row in report.rows}
    assert {("output", "features.3"), ("grad", "features.0.weight")} <= names
    assert ("buffer", "features.1.running_var") in names


def test_conv_net_with_a_reshape_flatten_fails_at_the_flatten():
    model, batches, optimizer = _conv_case()
    report = check_port(
        model,
        ConvNet(rngs=nnx.Rngs(0), flatten_channels_last=False),
        batches,
        loss="cross_entropy",
        optimizer=optimizer,
        steps=STEPS,
        dtype="float64",
        channels_last=True,
    )
    assert not report.passed
    first = report.first_divergence
    assert (first.layer, first.quantity, first.step) == ("flatten", "output", 0)
    assert first.jax_value != first.torch_value


def test_sequence_model_port_passes_float64():
    model, batch, optimizer = _sequence_case()
    report = check_port(
        model,
        SequenceModel(rngs=nnx.Rngs(0)),
        batch,
        loss="mse_loss",
        optimizer=optimizer,
        steps=STEPS,
        dtype="float64",
    )
    assert report.passed, str(report)
    losses = report.losses["float64"]["torch"]
    assert losses[-1] < losses[0]  # it trained


def test_sequence_model_with_the_wrong_layer_norm_eps_fails_at_the_norm():
    model, batch, optimizer = _sequence_case()
    report = check_port(
        model,
        SequenceModel(rngs=nnx.Rngs(0), eps=1e-6),
        batch,
        loss="mse_loss",
        optimizer=optimizer,
        steps=STEPS,
        dtype="float64",
    )
    first = report.first_divergence
    assert (first.layer, first.quantity, first.step, first.dtype) == (
        "norm",
        "output",
        0,
        "float64",
    )
    assert "norm" in str(report) and "FAIL" in str(report)


SCHEDULERS = {
    "step": lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
    "multi_step": lambda opt: torch.optim.lr_scheduler.MultiStepLR(opt, [1, 3, 3], gamma=0.7),
    "cosine": lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5, eta_min=0.01),
    "linear": lambda opt: torch.optim.lr_scheduler.LinearLR(opt, 0.25, total_iters=4),
    "one_cycle": lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[0.5, 0.2], total_steps=STEPS, cycle_momentum=False
    ),
}


@pytest.mark.parametrize("scheduler_name", sorted(SCHEDULERS))
def test_two_param_groups_and_a_scheduler(scheduler_name):
    torch.manual_seed(1)
    model = TorchSequenceModel()
    optimizer = torch.optim.SGD(
        [
            {"params": model.embedding.parameters(), "lr": 0.3, "momentum": 0.5},
            {"params": [*model.norm.parameters(), *model.head.parameters()], "nesterov": True},
        ],
        lr=0.1,
        momentum=0.9,
        weight_decay=0.01,
    )
    scheduler = SCHEDULERS[scheduler_name](optimizer)
    batch = (torch.randint(0, 12, (4, 5)), torch.randn(4, 2))
    report = check_port(
        model,
        SequenceModel(rngs=nnx.Rngs(0)),
        batch,
        loss="mse_loss",
        optimizer=optimizer,
        scheduler=scheduler,
        steps=STEPS,
        dtype="float64",
    )
    assert report.passed, str(report)
    # torch's objects are given back as they were: a fresh scheduler, the groups' options.
    assert scheduler.last_epoch == 0 and not optimizer.state
    assert [g["momentum"] for g in optimizer.param_groups] == [0.5, 0.9]


def test_both_dtypes_judge_float32_against_float64():
    model, batch, optimizer = _sequence_case()
    report = check_port(
        model,
        SequenceModel(rngs=nnx.Rngs(0)),
        batch,
        loss="mse_loss",
        optimizer=optimizer,
        steps=3,
        dtype="both",
    )
    assert report.passed, str(report)
    assert {row.dtype for row in report.rows} == {"float64", "float32"}
    float32_rows = [row for row in report.rows if row.dtype == "float32"]
    assert all(row.reference_value is not None for row in float32_rows if row.quantity != "loss")
    assert "jax32" in float32_rows[0].rule
