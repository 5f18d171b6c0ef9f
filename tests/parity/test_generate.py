"""``parity.generate_port`` beyond the zoo: the source reads like a hand-written port, what cannot
be generated is refused naming the line, hand-written parts are used as given, torch's clamp
gradient at the bounds, and the ``python -m parity port`` command's files and exit statuses."""

from __future__ import annotations

import json
import re
import textwrap

import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
import torch
from flax import nnx

from jaxnets import nn
from parity import generate_port
from parity.generate import GenerateError, command
from parity.generate.port import import_source

from .zoo import ZOO

CASES = {case.name: case for case in ZOO}


def _generated(name: str):
    case = CASES[name]
    model = case.build()
    return model, generate_port(model, case.batch()[: case.n_inputs])


def _torch_attributes(model: torch.nn.Module) -> dict[str, set[str]]:
    """Per user class, the attributes its instances hold (modules, parameters, buffers)."""
    out: dict[str, set[str]] = {}
    for module in model.modules():
        if type(module).__module__.startswith("torch.nn"):
            continue
        names = set(module._modules) | set(module._parameters) | set(module._buffers)
        out.setdefault(type(module).__name__, set()).update(names)
    return out


@pytest.mark.parametrize("name", ["resnet", "gpt"])
def test_generated_source_keeps_torch_names_one_class_per_torch_class(name):
    model, port = _generated(name)
    classes = re.findall(r"^class (\w+)\(nnx\.Module\):", port.source, re.MULTILINE)
    assert sorted(classes) == sorted(_torch_attributes(model)), port.source
    for cls, attributes in _torch_attributes(model).items():
        body = port.source.split(f"class {cls}(nnx.Module):", 1)[1].split("\nclass ", 1)[0]
        for attribute in attributes:
            assert f"self.{attribute} = " in body, (cls, attribute, port.source)


def test_resnet_source_passes_downsample_in_and_reuses_relu():
    _, port = _generated("resnet")
    block = port.source.split("class BasicBlock(nnx.Module):", 1)[1].split("\nclass ", 1)[0]
    assert "downsample: nnx.Module | None = None" in block
    assert "if self.downsample is not None:" in block
    code = "\n".join(line for line in block.splitlines() if not line.strip().startswith("#"))
    assert code.count("self.relu(out)") == 2, block
    compact = "".join(port.source.split())  # the same text whatever ruff's line breaks
    assert "BasicBlock(4,8,2,downsample=nn.Sequential(nn.Conv2d(4,8,1,stride=2" in compact


def test_gpt_source_names_values_as_the_torch_code_does():
    _, port = _generated("gpt")
    attention = port.source.split("class CausalSelfAttention(nnx.Module):", 1)[1]
    attention = attention.split("\nclass ", 1)[0]
    for line in ("B, T, C = x.shape", "q, k, v = jnp.split(", "att = ", "y = att @ v"):
        assert line in attention, (line, attention)
    # The causal mask as torch built it, not zeros waiting for the state dict.
    assert "self.bias = nnx.BatchStat(jnp.tril(jnp.ones((8, 8)))" in attention
    assert "getitem" not in attention.split("att = ")[0], attention


class Gated(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return x


class WithGate(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = torch.nn.Linear(3, 4)
        self.gate = Gated()
        self.out = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.out(torch.tanh(self.gate(self.inp(x))))


class ShapeChecks(torch.nn.Module):
    """Control flow on shapes, as nanoGPT's ``assert t <= block_size`` (fx alone refuses it)."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)
        self.block_size = 8

    def forward(self, x):
        b, t, c = x.size()
        assert t <= self.block_size, "sequence too long"
        if x.dim() == 3:
            x = x.reshape(b * t, c)
        return self.fc(x)


def test_control_flow_on_shapes_is_decided_by_the_example():
    torch.manual_seed(0)
    model = ShapeChecks()
    x = torch.randn(2, 5, 4)
    port = generate_port(model, (x,), channels_last=False)
    assert "b, t, c = x.shape" in port.source and "x.reshape(b * t, c)" in port.source
    report = port.check((x, torch.randn(10, 4)), loss="mse_loss", dtype="float64")
    assert report.passed, report


class Cumulative(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, x):
        return torch.cumprod(self.fc(x), dim=1)


def test_data_dependent_control_flow_is_refused_naming_the_line():
    with pytest.raises(GenerateError) as error:
        generate_port(WithGate(), (torch.randn(2, 3),))
    message = str(error.value)
    assert "if x.sum() > 0:" in message and "Gated.forward" in message
    assert "torch.fx.wrap" in message and "leaves={'gate': jax_module}" in message


def test_an_op_without_translation_is_refused_naming_the_op_and_line():
    with pytest.raises(GenerateError) as error:
        generate_port(Cumulative(), (torch.randn(2, 4),))
    message = str(error.value)
    assert "cumprod" in message and "return torch.cumprod(self.fc(x), dim=1)" in message


class HandGate(nnx.Module):
    """The hand-written port of ``Gated``: both branches, chosen by value."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.fc = nn.Linear(4, 4, rngs=rngs)

    def __call__(self, x):
        return jnp.where(x.sum() > 0, self.fc(x), x)


def test_leaves_are_used_as_given_and_the_port_trains_as_torch():
    torch.manual_seed(0)
    model = WithGate()
    x, target = torch.randn(4, 3), torch.randn(4, 2)
    gate = HandGate(rngs=nnx.Rngs(0))
    port = generate_port(model, (x,), leaves={"gate": gate})
    assert port.model.gate is gate
    assert "gate: nnx.Module" in port.source and "self.gate = gate" in port.source
    report = port.check(
        (x, target),
        loss="mse_loss",
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        steps=3,
        dtype="float64",
    )
    assert report.passed, report


def test_leaves_must_be_attributes_of_the_root():
    with pytest.raises(GenerateError, match="not an attribute"):
        generate_port(
            WithGate(), (torch.randn(2, 3),), leaves={"gate.fc": HandGate(rngs=nnx.Rngs(0))}
        )


class Clamped(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 3)

    def forward(self, x):
        return self.fc(x.clamp(min=0.0, max=1.0)) + x.clamp(min=0.0) + x.clamp(max=1.0)


def test_clamp_passes_the_gradient_at_its_bounds_as_torch():
    torch.manual_seed(0)
    model = Clamped()
    x = torch.tensor([[0.0, 1.0, 0.5], [-1.0, 2.0, 0.0]], requires_grad=True)  # on the bounds
    port = generate_port(model, (x,), channels_last=False)
    report = port.check((x,), dtype="float64")
    assert report.passed, report


# ----------------------------------------------------------------------------- the command

MODELS = textwrap.dedent(
    """
    import torch
    import torch.nn as nn
    import torch.nn.functional as F


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 4, 3)
            self.fc = nn.Linear(4 * 3 * 3, 5)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = x.view(x.size(0), -1)
            return self.fc(x)


    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            if x.sum() > 0:
                return self.fc(x)
            return x


    class Cumulative(nn.Module):
        def forward(self, x):
            return torch.cumprod(x, dim=1)
    """
)


@pytest.fixture
def models(tmp_path, monkeypatch):
    (tmp_path / "models.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _port(*args: str) -> int:
    return command.main(list(args))


def test_command_writes_source_weights_checkpoint_and_report(models, capsys):
    status = _port(
        "models.py:Net",
        "--input-shape",
        "2,3,8,8",
        "--loss",
        "cross_entropy",
        "--optimizer",
        "SGD(lr=0.1, momentum=0.9)",
        "--out",
        "out/net_jax.py",
    )
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "PASSED" in printed
    out = models / "out"
    source = (out / "net_jax.py").read_text()
    assert "class Net(nnx.Module):" in source
    torch.manual_seed(0)
    with np.load(out / "net_jax.state_dict.npz") as weights:
        assert sorted(weights) == ["conv1.bias", "conv1.weight", "fc.bias", "fc.weight"]
        assert weights["conv1.weight"].shape == (4, 3, 3, 3)  # torch's layout
    # The orbax checkpoint restores into the written class and holds the same weights.
    restored_class = import_source(source, "restored_net").Net
    graphdef, target = nnx.split(nnx.eval_shape(lambda: restored_class(rngs=nnx.Rngs(0))))
    with ocp.StandardCheckpointer() as checkpointer:
        state = checkpointer.restore((out / "net_jax_checkpoint").absolute(), target)
    restored = nn.state_dict(nnx.merge(graphdef, state))
    with np.load(out / "net_jax.state_dict.npz") as weights:
        for key, value in restored.items():
            np.testing.assert_array_equal(value, weights[key])
    report = json.loads((out / "net_jax.report.json").read_text())
    assert report["passed"] is True
    assert "conv1" in (out / "net_jax.report.txt").read_text()


def test_command_exits_1_naming_the_first_divergence(models, capsys, monkeypatch):
    from parity.generate import ops

    # A generator that writes F.relu as F.silu makes a wrong port.
    monkeypatch.setitem(ops._HANDLERS, "F.relu", ops._HANDLERS["F.silu"])
    status = _port("models.py:Net", "--input-shape", "2,3,8,8", "--check-steps", "1")
    printed = capsys.readouterr().out
    assert status == 1, printed
    assert "FAILED: the port diverges first at" in printed


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["models.py:Gated", "--input-shape", "2,4"], "if x.sum() > 0:"),
        (["models.py:Cumulative", "--input-shape", "2,4"], "return torch.cumprod(x, dim=1)"),
        (["models.py:Missing", "--input-shape", "2,4"], "no callable 'Missing'"),
        (["models.py:Net", "--input-shape", "2,3,x"], "--input-shape"),
        (["models.py:Net", "--input-shape", "2,3,8,8", "--optimizer", "Nope()"], "Nope"),
    ],
)
def test_command_exits_2_with_one_line_on_bad_input(models, capsys, arguments, expected):
    status = _port(*arguments)
    captured = capsys.readouterr()
    assert status == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], captured.err
    assert not (models / "gated_jax.py").exists()
