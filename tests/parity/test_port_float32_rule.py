"""The float32 rule by backward error, on cases built to reproduce on any machine.

A correct port whose float32 rounding puts a ReLU pre-activation on the other side of the kink
than float64 (while torch's rounding happens not to) must pass: the float64 ensemble from starts
perturbed at float32's rounding level flips there too. A port that is wrong in float32 only
(a LayerNorm eps, a bias rounded to bfloat16) must still fail.

The kink is placed by hand: ``z = x0 + x1 + x2`` with ``x0 = 1``, ``x2 = -1`` and ``x1`` 0.625
float32 ulps of 1 below 1, so the exact ``z`` is ``0.625 * 2**-24 > 0``. torch adds
``x0 + (x1 + x2)``, which rounds to ``2**-24 > 0``; the port adds ``(x0 + x1) + x2``, which
rounds ``x0 + x1`` to 1 and gives ``z = 0``, where ReLU's slope is 0. Both orders are the same
algorithm (float64 agrees to the last bit), so the port is correct; only the rounding differs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from jaxnets import nn
from jaxnets.nn import functional as F
from parity import check_port

N = 4
X1 = 5 * 2.0**-27  # 0.625 * 2**-24, exact in float32


class TorchKink(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))

    def forward(self, x):
        p = x * self.w
        return torch.relu(p[:, 0] + (p[:, 1] + p[:, 2]))


class JaxKink(nnx.Module):
    def __init__(self):
        self.w = nnx.Param(jnp.ones(3))

    def __call__(self, x):
        p = x * self.w[...][None, :]
        return jax.nn.relu((p[:, 0] + p[:, 1]) + p[:, 2])


def _kink_batch():
    x = torch.tensor([[1.0, X1, -1.0]] * N, dtype=torch.float64)
    return (x,)


def _grad_row(report, name, dtype="float32"):
    return next(
        r for r in report.rows if r.quantity == "grad" and r.name == name and r.dtype == dtype
    )


def test_the_constructed_kink_flips_in_the_port_only():
    x = np.array([1.0, X1, -1.0], np.float32)
    assert (x[0] + (x[1] + x[2])) > 0  # torch's order keeps float64's side
    assert float((jnp.float32(x[0]) + jnp.float32(x[1])) + jnp.float32(x[2])) == 0.0
    assert 1.0 + X1 - 1.0 > 0  # float64


def test_a_kink_flip_in_a_correct_port_passes_by_backward_error():
    report = check_port(TorchKink(), JaxKink(), _kink_batch(), dtype="both")
    assert report.passed, report
    row = _grad_row(report, "w")
    # The port's float32 gradient really is off by the flip, far beyond torch's error ...
    assert row.max_abs_diff >= 1.0
    assert abs(row.torch_value - row.reference_value) < 1e-6
    # ... and the ensemble's spread is what admits it.
    assert "s=" in row.rule


def test_without_the_ensemble_the_same_correct_port_fails():
    report = check_port(TorchKink(), JaxKink(), _kink_batch(), dtype="float32", members=0)
    assert not report.passed
    first = report.first_divergence
    assert (first.quantity, first.layer) == ("grad", "w")


class TorchNormed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8, dtype=torch.float64)
        self.norm = torch.nn.LayerNorm(8, dtype=torch.float64)

    def forward(self, x):
        return self.norm(self.fc(x))


class Float32Eps(nn.LayerNorm):
    """A LayerNorm whose eps is 1e-3 in float32 only: wrong in float32, right in float64."""

    def __call__(self, x):
        if x.dtype == jnp.float32:
            return F.layer_norm(x, self.normalized_shape, self.weight[...], self.bias[...], 1e-3)
        return super().__call__(x)


class Bfloat16Bias(nn.Linear):
    """A Linear whose bias is rounded to bfloat16 in float32 only."""

    def __call__(self, x):
        out = super().__call__(x)
        if x.dtype == jnp.float32:
            bias = self.bias[...][None, :]
            out = out - bias + bias.astype(jnp.bfloat16).astype(jnp.float32)
        return out


class JaxNormed(nnx.Module):
    def __init__(self, linear=nn.Linear, norm=nn.LayerNorm):
        self.fc = linear(8, 8, rngs=nnx.Rngs(0))
        self.norm = norm(8)

    def __call__(self, x):
        return self.norm(self.fc(x))


@pytest.mark.parametrize(
    ("port", "layer"),
    [
        (lambda: JaxNormed(norm=Float32Eps), "norm"),
        (lambda: JaxNormed(linear=Bfloat16Bias), "fc"),
    ],
    ids=["layernorm-eps-1e-3", "bias-bfloat16"],
)
def test_a_port_wrong_in_float32_only_still_fails(port, layer):
    torch.manual_seed(0)
    model = TorchNormed()
    with torch.no_grad():
        model.fc.bias.uniform_(-1.0, 1.0)  # a bias bfloat16 cannot hold
    x = torch.randn(16, 8, dtype=torch.float64)
    target = torch.randn(16, 8, dtype=torch.float64)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    report = check_port(
        model, port(), (x, target), loss="mse_loss", optimizer=optimizer, steps=3, dtype="both"
    )
    assert not report.passed
    assert all(r.passed for r in report.rows if r.dtype == "float64")
    first = report.first_divergence
    assert (first.dtype, first.quantity, first.layer) == ("float32", "output", layer)


def test_the_ensemble_runs_only_where_torch_error_alone_does_not_bound():
    torch.manual_seed(0)
    model = TorchNormed()
    x = torch.randn(16, 8, dtype=torch.float64)
    report = check_port(model, JaxNormed(), (x,), dtype="float32")
    assert report.passed, report
    assert not any("s=" in row.rule for row in report.rows)  # no spread: no ensemble ran
