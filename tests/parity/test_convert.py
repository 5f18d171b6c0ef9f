"""parity.convert: torch tensors become an experiment's parameters by layer type or by name,
strictly, with no layout written by hand."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxnets.experiments import cnn, mlp
from parity import convert
from parity.torch_ref.cnn import Net


@pytest.fixture(scope="module")
def torch_net():
    torch.manual_seed(0)
    return Net().double()


def _state(net):
    return {k: v.detach().numpy() for k, v in net.state_dict().items()}


def test_the_tutorials_net_loads_by_layer_type(torch_net):
    params = convert.from_torch(cnn, _state(torch_net), None)
    assert params["fc1"]["kernel"].shape == (16 * 28 * 28, 512)
    assert params["conv1"]["kernel"].shape == (3, 3, 1, 6)
    torch.manual_seed(1)
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64)
    expected = torch_net(x).detach().numpy()
    got = cnn.apply(params, jnp.asarray(convert.nchw_to_nhwc(x.numpy())))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_strict_errors_list_every_key(torch_net):
    state = _state(torch_net)
    state.pop("fc2.bias")
    state["extra.weight"] = np.zeros(3)
    state["fc3.weight"] = np.zeros((3, 64))
    with pytest.raises(convert.StateDictError) as info:
        convert.from_torch(cnn, state, None)
    message = str(info.value)
    assert '"fc2.bias"' in message and '"extra.weight"' in message and "fc3.weight" in message


def test_raw_tensors_are_taken_by_name():
    state = {"W1": np.ones((5, 3)), "W2": np.ones((3, 2))}
    params = convert.from_torch(mlp, state, {"W1": (5, 3), "W2": (3, 2)})
    assert sorted(params) == ["W1", "W2"] and params["W1"].shape == (5, 3)
    single = convert.from_torch(mlp, {"w": np.ones(1)}, (1,))
    assert single.shape == (1,)
    with pytest.raises(convert.StateDictError, match=r'Missing key\(s\) in state_dict: "W2"'):
        convert.from_torch(mlp, {"W1": np.ones((5, 3))}, {"W1": (5, 3), "W2": (3, 2)})
    with pytest.raises(convert.StateDictError, match="size mismatch for W1"):
        convert.from_torch(mlp, {"W1": np.ones((4, 3)), "W2": np.ones((3, 2))},
                           {"W1": (5, 3), "W2": (3, 2)})  # fmt: skip
