"""parity.convert: bit-exact round trips, the flatten permutation, strict key/shape errors."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from jaxnets.experiments import cnn
from parity import convert
from parity.torch_ref.cnn import Net


@pytest.fixture(scope="module")
def torch_net():
    torch.manual_seed(0)
    return Net().double()


def _state(net):
    return {k: v.detach().numpy() for k, v in net.state_dict().items()}


def test_round_trip_is_bit_exact(torch_net):
    state = _state(torch_net)
    params = convert.to_jax(state, convert.NET_LAYOUT, cnn.param_shapes())
    assert params["fc1"]["kernel"].shape == (16 * 28 * 28, 512)
    assert params["conv1"]["kernel"].shape == (3, 3, 1, 6)
    back = convert.to_torch(params, convert.NET_LAYOUT)
    assert set(back) == set(state)
    for key in state:
        assert back[key].dtype == state[key].dtype
        np.testing.assert_array_equal(back[key], state[key])


def test_converted_net_computes_the_torch_forward(torch_net):
    params = convert.to_jax(_state(torch_net), convert.NET_LAYOUT, cnn.param_shapes())
    x = torch.randn(3, 1, 32, 32, dtype=torch.float64)
    got = cnn.apply(
        {k: {n: jnp.asarray(a) for n, a in v.items()} for k, v in params.items()},
        jnp.asarray(convert.nchw_to_nhwc(x.numpy())),
    )
    np.testing.assert_allclose(got, torch_net(x).detach().numpy(), rtol=1e-12, atol=1e-14)


def test_naive_flatten_is_wrong(torch_net):
    """Without the (C,H,W) -> (H,W,C) row permutation the network computes something else."""
    layout = dict(convert.NET_LAYOUT, **{"fc1.weight": convert.linear_kernel("fc1", "kernel")})
    params = convert.to_jax(_state(torch_net), layout, cnn.param_shapes())
    x = torch.randn(1, 1, 32, 32, dtype=torch.float64)
    got = cnn.apply(params, jnp.asarray(convert.nchw_to_nhwc(x.numpy())))
    assert not np.allclose(got, torch_net(x).detach().numpy(), rtol=1e-3)


def test_every_key_problem_is_listed_at_once(torch_net):
    state = _state(torch_net)
    del state["conv1.bias"], state["fc3.weight"]
    state["fc4.weight"] = np.zeros((2, 2))
    state["fc2.weight"] = np.zeros((64, 511))
    with pytest.raises(convert.StateDictError) as info:
        convert.to_jax(state, convert.NET_LAYOUT, cnn.param_shapes())
    message = str(info.value)
    for fragment in [
        'Missing key(s) in state_dict: "conv1.bias", "fc3.weight"',
        'Unexpected key(s) in state_dict: "fc4.weight"',
        "size mismatch for fc2.weight: copying a param with shape (64, 511), "
        "the shape in the jaxnets model is (64, 512)",
    ]:
        assert fragment in message


def test_to_torch_is_strict_too(torch_net):
    params = convert.to_jax(_state(torch_net), convert.NET_LAYOUT, cnn.param_shapes())
    del params["fc2"]["bias"]
    params["extra"] = {"kernel": np.zeros(3)}
    with pytest.raises(convert.StateDictError, match=r'"fc2.bias"[\s\S]*extra/kernel'):
        convert.to_torch(params, convert.NET_LAYOUT)
