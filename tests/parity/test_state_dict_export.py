"""``state_dict.npz`` from ``jaxnets train`` is the way back to PyTorch: the tutorial's torch
module loads it strictly and computes what the trained jaxnets module computes."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxnets import cli, nn
from jaxnets.experiments import registry
from parity.torch_ref import cnn as cnn_ref
from parity.torch_ref import digits as digits_ref
from parity.torch_ref import module_regression as module_regression_ref


def train(argv: list[str], out) -> tuple[dict[str, np.ndarray], dict]:
    """``jaxnets train ARGV --out OUT``: ``(state_dict.npz, params.npz as a nested dict)``."""
    assert cli.main([*argv, "--out", str(out), "--no-progress"]) == 0
    with np.load(out / "state_dict.npz") as state, np.load(out / "params.npz") as flat:
        params: dict = {}
        for key, value in flat.items():
            *parents, leaf = key.split("/")
            node = params
            for name in parents:
                node = node.setdefault(name, {})
            node[leaf] = value
        return dict(state), params


def load_into(torch_module: torch.nn.Module, state: dict[str, np.ndarray]) -> None:
    """The README's recipe, strict: every key of the torch module and no other."""
    torch_module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})


def test_torch_net_loads_a_trained_cnn_and_computes_the_same(tmp_path, capsys):
    state, params = train(["train", "cnn", "--steps", "2", "--batch-size", "2"], tmp_path)
    capsys.readouterr()
    torch.manual_seed(0)
    net = cnn_ref.Net()
    load_into(net, state)
    images = torch.randn(4, 1, 32, 32)  # torch's (N, C, H, W)
    with torch.no_grad():
        expected = net(images).numpy()
    channels_last = jnp.asarray(images.numpy().transpose(0, 2, 3, 1))
    got = np.asarray(nn.apply_pure(registry.get("cnn").MODEL, params, channels_last))
    assert got.dtype == np.float32
    # Two float32 forwards of 12544-term sums, rounded differently: float32 rounding, no more.
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize(
    ("argv", "torch_module", "inputs"),
    [
        (["train", "digits", "--epochs", "1"], digits_ref.Classifier, (5, 64)),
        (
            ["train", "module_regression", "--epochs", "2"],
            module_regression_ref.LinearRegression,
            (5, 1),
        ),
    ],
    ids=["digits", "module_regression"],
)
def test_float64_runs_load_into_their_torch_modules(argv, torch_module, inputs, tmp_path, capsys):
    state, params = train([*argv, "--dtype", "float64"], tmp_path)
    capsys.readouterr()
    module = torch_module().double()
    load_into(module, state)
    for key, value in module.state_dict().items():  # loaded bit for bit
        np.testing.assert_array_equal(value.numpy(), state[key])
    x = torch.randn(*inputs, dtype=torch.float64)
    with torch.no_grad():
        expected = module(x).numpy()
    got = np.asarray(nn.apply_pure(registry.get(argv[1]).MODEL, params, jnp.asarray(x.numpy())))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
