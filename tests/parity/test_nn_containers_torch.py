"""The containers name their children as torch's do: ``state_dict`` keys, ``named_modules``
paths, loading torch's weights, and the forward pass of a named ``Sequential``."""

from __future__ import annotations

from collections import OrderedDict

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from jaxnets import nn


def _pair() -> tuple[torch.nn.Module, nnx.Module]:
    torch.manual_seed(0)
    theirs = torch.nn.ModuleDict(
        {
            "stem": torch.nn.Sequential(
                OrderedDict(
                    fc=torch.nn.Linear(3, 4), act=torch.nn.ReLU(), bn=torch.nn.BatchNorm1d(4)
                )
            ),
            "blocks": torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Tanh()]),
            "head": torch.nn.Sequential(torch.nn.Linear(4, 2)),
        }
    ).double()
    rngs = nnx.Rngs(0)
    ours = nn.ModuleDict(
        {
            "stem": nn.Sequential(
                OrderedDict(
                    fc=nn.Linear(3, 4, dtype=jnp.float64, rngs=rngs),
                    act=nn.ReLU(),
                    bn=nn.BatchNorm1d(4, dtype=jnp.float64),
                )
            ),
            "blocks": nn.ModuleList([nn.Linear(4, 4, dtype=jnp.float64, rngs=rngs), nn.Tanh()]),
            "head": nn.Sequential(nn.Linear(4, 2, dtype=jnp.float64, rngs=rngs)),
        }
    )
    return theirs, ours


def test_containers_name_children_as_torch():
    theirs, ours = _pair()
    assert list(nn.state_dict(ours)) == list(theirs.state_dict())
    assert [p for p, _ in nn.named_modules(ours)] == [p for p, _ in theirs.named_modules()]


def test_named_sequential_runs_torchs_weights():
    theirs, ours = _pair()
    nn.load_state_dict(ours, theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((5, 3))
    expected = torch.from_numpy(x)
    got = jnp.asarray(x)
    for key in ("stem", "blocks", "head"):
        many = key == "blocks"  # a ModuleList is not callable: its modules are
        theirs_layers = [*theirs[key]] if many else [theirs[key]]
        ours_layers = [*ours[key]] if many else [ours[key]]
        for other, mine in zip(theirs_layers, ours_layers, strict=True):
            expected, got = other(expected), mine(got)
    np.testing.assert_allclose(np.asarray(got), expected.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert type(ours["stem"].bn).__name__ == "BatchNorm1d"


def test_unflatten_inverts_flatten_in_torchs_order():
    x = np.random.default_rng(1).standard_normal((2, 3 * 4 * 5))
    expected = torch.nn.Unflatten(1, (3, 4, 5))(torch.from_numpy(x)).numpy()
    got = nn.Unflatten(1, (3, 4, 5))(jnp.asarray(x))
    np.testing.assert_array_equal(np.moveaxis(np.asarray(got), -1, 1), expected)
    np.testing.assert_array_equal(nn.Flatten()(got), x)
    plain = nn.Unflatten(-1, (-1, 5), channels_last=False)(jnp.asarray(x))
    np.testing.assert_array_equal(plain, torch.nn.Unflatten(-1, (-1, 5))(torch.from_numpy(x)))


def test_containers_refuse_what_is_not_a_module():
    with pytest.raises(TypeError, match="'a' is PjitFunction|'a' is function"):
        nn.ModuleDict({"a": jnp.tanh})
    with pytest.raises(TypeError, match="position 0"):
        nn.ModuleList([jnp.tanh])
    with pytest.raises(KeyError, match="without '.'"):
        nn.ModuleDict({"a.b": nn.ReLU()})


def test_parameter_containers_load_torchs_tensors_under_its_keys():
    class TorchHolder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(2)) for _ in "ab"])
            self.biases = torch.nn.ParameterDict({"x": torch.nn.Parameter(torch.randn(3))})

    class Holder(nnx.Module):
        def __init__(self):
            self.scales = nn.ParameterList([jnp.zeros(2), jnp.zeros(2)])
            self.biases = nn.ParameterDict({"x": jnp.zeros(3)})

    theirs, ours = TorchHolder(), Holder()
    assert (
        list(nn.state_dict(ours))
        == list(theirs.state_dict())
        == ["scales.0", "scales.1", "biases.x"]
    )
    nn.load_state_dict(ours, theirs.state_dict())
    np.testing.assert_array_equal(ours.scales[1], theirs.scales[1].detach().numpy())
    np.testing.assert_array_equal(ours.biases["x"], theirs.biases["x"].detach().numpy())
