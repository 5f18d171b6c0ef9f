"""``parity.load_torch`` / ``to_torch``, ``check_port``'s refusals, report and torch-state hygiene.

Small Linear models only: what is tested here is the machinery around the layers.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from jaxnets import nn
from jaxnets.nn.random import ReplayError
from parity import assert_port, check_port, load_torch, optim_map, to_torch
from parity.port import StructureError


class TorchMLP(torch.nn.Module):
    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 6)
        self.bn = torch.nn.BatchNorm1d(6)
        self.drop = torch.nn.Dropout(dropout)
        self.fc2 = torch.nn.Linear(6, 3)

    def forward(self, x):
        return self.fc2(self.drop(torch.tanh(self.bn(self.fc1(x)))))


class MLP(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs, dropout: float = 0.0, momentum: float = 0.1):
        self.fc1 = nn.Linear(4, 6, rngs=rngs)
        self.bn = nn.BatchNorm1d(6, momentum=momentum)
        self.drop = nn.Dropout(dropout, rngs=rngs)
        self.fc2 = nn.Linear(6, 3, rngs=rngs)

    def __call__(self, x):
        return self.fc2(self.drop(jnp.tanh(self.bn(self.fc1(x)))))


def _batch():
    return (torch.randn(5, 4), torch.randint(0, 3, (5,)))


def _torch_mlp(**kwargs):
    torch.manual_seed(0)
    return TorchMLP(**kwargs)


def test_load_torch_then_to_torch_is_bit_exact():
    source, target = _torch_mlp(), TorchMLP()
    source(torch.randn(8, 4))  # non-trivial running statistics
    port = MLP(rngs=nnx.Rngs(0))
    load_torch(port, source)
    np.testing.assert_array_equal(port.fc1.kernel[...], source.fc1.weight.detach().numpy().T)
    to_torch(port, target)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_load_torch_lists_every_bad_key():
    port = MLP(rngs=nnx.Rngs(0))
    port.fc2 = nn.Linear(6, 2, rngs=nnx.Rngs(0))
    with pytest.raises(nn.StateDictError, match="size mismatch for fc2.weight"):
        load_torch(port, _torch_mlp())


def test_check_port_restores_the_torch_objects():
    model = _torch_mlp()
    model.fc1.weight.grad = torch.ones_like(model.fc1.weight)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    report = check_port(
        model,
        MLP(rngs=nnx.Rngs(0)),
        _batch(),
        loss="cross_entropy",
        optimizer=optimizer,
        scheduler=scheduler,
        steps=3,
        dtype="float64",
    )
    assert report.passed, str(report)
    for key, value in model.state_dict().items():
        assert value.dtype == before[key].dtype and torch.equal(value, before[key]), key
    assert torch.equal(model.fc1.weight.grad, torch.ones_like(model.fc1.weight))
    assert not optimizer.state and optimizer.param_groups[0]["lr"] == 0.1
    assert scheduler.last_epoch == 0


def test_forward_and_gradients_only_with_the_sum_of_outputs():
    model = _torch_mlp()
    report = check_port(model, MLP(rngs=nnx.Rngs(0)), (torch.randn(5, 4),), dtype="both")
    assert report.passed, str(report)
    grads = [row.name for row in report.rows if row.quantity == "grad" and row.dtype == "float64"]
    assert grads == ["fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "fc2.weight", "fc2.bias"]
    first_outputs = [row.name for row in report.rows if row.quantity == "output"][:4]
    assert first_outputs == ["fc1", "bn", "drop", "fc2"]  # torch's execution order


OPTIMIZERS = {
    "SGD": {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
    "Adam": {
        "lr": torch.tensor(0.05),
        "amsgrad": True,
        "weight_decay": 0.1,
        "decoupled_weight_decay": True,
    },
    "AdamW": {"lr": 0.05, "betas": (0.8, 0.9), "maximize": True},
    "RMSprop": {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.01},
    "Adagrad": {"lr": 0.1, "lr_decay": 0.1, "initial_accumulator_value": 0.1},
    "Adadelta": {"lr": 1.0, "rho": 0.5, "weight_decay": 0.01},
    "Adamax": {"lr": 0.05, "weight_decay": 0.01},
    "NAdam": {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
    "RAdam": {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True},
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimiser_is_translated_with_its_options(name):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = getattr(torch.optim, name)(model.parameters(), **OPTIMIZERS[name])
    report = check_port(
        model,
        nn.Linear(4, 3, rngs=nnx.Rngs(0)),
        _batch(),
        loss="cross_entropy",
        optimizer=optimizer,
        steps=6,  # past RAdam's switch to the adaptive step
        dtype="float64",
    )
    assert report.passed, str(report)


def test_a_wrong_buffer_update_is_named():
    model = _torch_mlp()
    report = check_port(
        model,
        MLP(rngs=nnx.Rngs(0), momentum=0.2),
        _batch(),
        loss="cross_entropy",
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        steps=2,
        dtype="float64",
    )
    first = report.first_divergence
    assert (first.quantity, first.layer, first.step) == ("buffer", "bn.running_mean", 2)


class TorchScale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.tensor([1.5, -0.5]))

    def forward(self, x):
        return x * self.weight


@jax.custom_vjp
def _scale(x, w):
    return x * w


def _scale_fwd(x, w):
    return x * w, (x, w)


def _scale_bwd(residuals, g):
    x, w = residuals
    return g * w, 2.0 * g * x  # twice the true weight gradient


_scale.defvjp(_scale_fwd, _scale_bwd)


class BadGradScale(nnx.Module):
    def __init__(self):
        self.weight = nnx.Param(jnp.zeros(2, jnp.float32))

    def __call__(self, x):
        return _scale(x, jnp.broadcast_to(self.weight[...], x.shape))


def test_a_wrong_gradient_is_named_when_outputs_and_loss_agree():
    report = check_port(TorchScale(), BadGradScale(), (torch.randn(3, 2),), dtype="float64")
    first = report.first_divergence
    assert (first.quantity, first.layer, first.step) == ("grad", "weight", 0)
    assert first.jax_value == pytest.approx(2 * first.torch_value)
    with pytest.raises(AssertionError, match=r"'weight' \(grad, step 0, float64\)"):
        assert_port(TorchScale(), BadGradScale(), (torch.randn(3, 2),), dtype="float64")


def test_report_renders_and_serialises():
    report = check_port(_torch_mlp(), MLP(rngs=nnx.Rngs(0)), (torch.randn(5, 4),), dtype="float64")
    text = str(report)
    assert text.startswith("port check passed") and "fc2.weight" in text
    doc = report.to_json()
    assert json.loads(json.dumps(doc)) == doc
    assert doc["passed"] and doc["first_divergence"] is None
    assert {"quantity", "name", "rule", "max_abs_diff"} <= set(doc["rows"][0])


def test_unmatched_structure_lists_both_sides():
    class Renamed(MLP):
        def __init__(self, *, rngs):
            super().__init__(rngs=rngs)
            self.head = self.fc2
            del self.fc2

        def __call__(self, x):
            return self.head(jnp.tanh(self.bn(self.fc1(x))))

    with pytest.raises(StructureError, match=r"only in torch: fc2; only in jax: head"):
        check_port(_torch_mlp(), Renamed(rngs=nnx.Rngs(0)), (torch.randn(5, 4),))


@pytest.mark.parametrize(
    ("side", "match"),
    [
        ("torch", r"torch drew bernoulli\(p=0\.5\) of shape \(5, 6\) in module 'drop'.*no more"),
        ("jax", r"torch drew only 0 times.*port's module 'drop' asked for bernoulli"),
    ],
)
def test_dropout_on_one_side_only_names_the_module(side, match):
    model = _torch_mlp(dropout=0.5 if side == "torch" else 0.0)
    port = MLP(rngs=nnx.Rngs(0), dropout=0.5 if side == "jax" else 0.0)
    with pytest.raises(ReplayError, match=match):
        check_port(model, port, (torch.randn(5, 4),), dtype="float64")
    model.eval()
    port.eval()
    assert check_port(model, port, (torch.randn(5, 4),), dtype="float64").passed


def test_unsupported_optimisers_options_and_schedulers_are_refused():
    model, port = _torch_mlp(), MLP(rngs=nnx.Rngs(0))

    def refused(optimizer, scheduler=None, match=""):
        with pytest.raises(optim_map.UnsupportedOptimizer, match=match):
            check_port(
                model,
                port,
                _batch(),
                loss="cross_entropy",
                optimizer=optimizer,
                scheduler=scheduler,
                steps=2,
            )

    refused(torch.optim.LBFGS(model.parameters()), match="LBFGS has no jaxnets.optim")
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    sgd.param_groups[0]["trust_ratio"] = 0.5
    refused(sgd, match="param group 0.*trust_ratio=0.5")
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    refused(
        sgd, torch.optim.lr_scheduler.OneCycleLR(sgd, 1.0, total_steps=4), match="cycle_momentum"
    )
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    refused(sgd, torch.optim.lr_scheduler.LambdaLR(sgd, lambda step: 1.0), match="LambdaLR")
    stepped = torch.optim.Adam(model.parameters())
    model(torch.randn(5, 4)).sum().backward()
    stepped.step()
    refused(stepped, match="already stepped")


def test_wrong_input_layouts_are_refused():
    class TorchConv(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3)

        def forward(self, x):
            return self.conv(x)

    class Conv(nnx.Module):
        def __init__(self):
            self.conv = nn.Conv2d(3, 2, 3, rngs=nnx.Rngs(0))

        def __call__(self, x):
            return self.conv(x)

    torch_conv, conv = TorchConv(), Conv()
    with pytest.raises(ValueError, match="pass channels_last=True"):
        check_port(torch_conv, conv, (torch.randn(2, 3, 6, 6),))
    with pytest.raises(ValueError, match=r"got shape \(2, 6, 6, 3\).*3 input channels"):
        check_port(torch_conv, conv, (torch.randn(2, 6, 6, 3),), channels_last=True)
    report = check_port(
        torch_conv, conv, (torch.randn(2, 3, 6, 6),), channels_last=True, dtype="float64"
    )
    assert report.passed, str(report)


def test_bad_arguments_are_refused_before_running():
    model, port = _torch_mlp(), MLP(rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="dtype must be"):
        check_port(model, port, _batch(), loss="cross_entropy", dtype="float16")
    with pytest.raises(ValueError, match="list of 2 per-step batches but steps=3"):
        check_port(
            model,
            port,
            [_batch()] * 2,
            loss="cross_entropy",
            steps=3,
            optimizer=torch.optim.SGD(model.parameters()),
        )
    with pytest.raises(ValueError, match="need an optimizer"):
        check_port(model, port, _batch(), loss="cross_entropy", steps=2)
    with pytest.raises(ValueError, match="must name a function of both"):
        check_port(model, port, _batch(), loss="no_such_loss")
