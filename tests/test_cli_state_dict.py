"""``jaxnets train`` writes the final parameters as a torch ``state_dict`` (``state_dict.npz``).

torch's keys and layouts, checked here without torch: key names and shapes per experiment,
and the values as the layout maps say they are (a transpose of ``params.npz``, never a
different number). ``tests/parity/test_state_dict_export.py`` loads the file into torch.
"""

import numpy as np
import pytest

from jaxnets import cli
from jaxnets.cli.outputs import torch_state_dict
from jaxnets.experiments import registry

from .helpers import tiny_experiment


def train(argv, out, capsys) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run ``jaxnets train ARGV --out OUT`` in this process: ``(state_dict, params)`` it wrote."""
    code = cli.main(["train", *map(str, argv), "--out", str(out), "--no-progress"])
    capsys.readouterr()
    assert code == 0
    with np.load(out / "state_dict.npz") as state, np.load(out / "params.npz") as params:
        return dict(state), dict(params)


def test_cnn_state_dict_has_torch_keys_layouts_and_the_trained_values(capsys, tmp_path):
    state, params = train(["cnn", "--steps", 2, "--batch-size", 2], tmp_path, capsys)
    shapes = {key: value.shape for key, value in state.items()}
    assert shapes == {  # torch Net's state_dict, in its order
        "conv1.weight": (6, 1, 3, 3),
        "conv1.bias": (6,),
        "conv2.weight": (16, 6, 3, 3),
        "conv2.bias": (16,),
        "fc1.weight": (512, 12544),
        "fc1.bias": (512,),
        "fc2.weight": (64, 512),
        "fc2.bias": (64,),
        "fc3.weight": (2, 64),
        "fc3.bias": (2,),
    }
    assert list(state) == list(shapes)
    assert all(value.dtype == np.float32 for value in state.values())
    # HWIO -> OIHW and (in, out) -> (out, in): the same numbers, bit for bit.
    np.testing.assert_array_equal(
        state["conv2.weight"], params["conv2/kernel"].transpose(3, 2, 0, 1)
    )
    np.testing.assert_array_equal(state["fc1.weight"], params["fc1/kernel"].T)
    np.testing.assert_array_equal(state["fc3.bias"], params["fc3/bias"])


def test_raw_tensor_experiments_keep_the_tutorials_names(capsys, tmp_path):
    state, params = train(["mlp", "--steps", 2, "--dtype", "float64"], tmp_path / "mlp", capsys)
    assert {key: value.shape for key, value in state.items()} == {
        "W1": (1000, 100),
        "W2": (100, 10),
    }
    for key in state:  # torch's W1, W2 have the tutorial's (in, out) layout too
        assert state[key].dtype == np.float64
        np.testing.assert_array_equal(state[key], params[key])

    state, params = train(["linear", "--epochs", 1], tmp_path / "linear", capsys)
    assert list(state) == ["w"] and state["w"].shape == (1,)  # a bare array: TORCH_NAME
    np.testing.assert_array_equal(state["w"], params["params"])


def test_module_experiment_with_one_layer(capsys, tmp_path):
    state, params = train(["module_regression", "--epochs", 1], tmp_path, capsys)
    assert {key: value.shape for key, value in state.items()} == {
        "linear.weight": (1, 1),
        "linear.bias": (1,),
    }
    np.testing.assert_array_equal(state["linear.weight"], params["linear/kernel"].T)


def test_no_state_dict_without_final_parameters(capsys, tmp_path, monkeypatch):
    # A run stopped by a non-finite loss has no usable parameters: neither file is written.
    monkeypatch.setitem(registry._REGISTERED, "diverge", tiny_experiment("diverge", nan_steps=(2,)))
    argv = ["train", "diverge", "--steps", "4", "--out", str(tmp_path), "--no-progress"]
    assert cli.main(argv) == cli.EXIT_NONFINITE
    capsys.readouterr()
    assert not (tmp_path / "params.npz").exists()
    assert not (tmp_path / "state_dict.npz").exists()
    assert not list(tmp_path.glob("*.tmp.npz"))


@pytest.mark.parametrize(
    ("params", "torch_name", "expected"),
    [
        ({"W": np.zeros((3, 1)), "scale": np.ones(1)}, None, {"W": (3, 1), "scale": (1,)}),
        ({"block": {"w": np.zeros(2)}}, None, {"block.w": (2,)}),  # torch joins paths with "."
        (np.zeros(1), "w", {"w": (1,)}),
        (np.zeros(1), None, None),  # a bare array no experiment named: nothing to write
    ],
)
def test_raw_parameters_map_to_torch_names(params, torch_name, expected):
    state = torch_state_dict(params, torch_name=torch_name)
    shapes = None if state is None else {key: value.shape for key, value in state.items()}
    assert shapes == expected
