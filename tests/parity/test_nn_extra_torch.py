"""Layers of torch.nn that torch's module database has no samples for, against torch: the bag
and unpooling layers and the distance modules (their functions are in the OpInfo test)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from jaxnets import nn


@pytest.mark.parametrize(
    "kwargs, offsets, per_sample",
    [
        ({"mode": "mean"}, [0, 2, 2, 5], False),  # an empty bag gives zeros
        ({"mode": "sum", "padding_idx": 3}, [0, 3], True),
        ({"mode": "max", "include_last_offset": True}, [0, 1, 4, 7], False),
        ({"mode": "mean", "padding_idx": 1}, None, False),
    ],
)
def test_embedding_bag_matches_torch(kwargs, offsets, per_sample):
    torch.manual_seed(0)
    theirs = torch.nn.EmbeddingBag(6, 4, **kwargs).double()
    ours = nn.EmbeddingBag(6, 4, **kwargs, dtype=jnp.float64, rngs=nnx.Rngs(0))
    nn.load_state_dict(ours, theirs.state_dict())
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 6, (7,) if offsets is not None else (3, 4))
    tokens.flat[:2] = [3, 1]
    weights = rng.standard_normal(tokens.shape) if per_sample else None

    def torch_run():
        args = [torch.from_numpy(tokens)]
        args.append(None if offsets is None else torch.tensor(offsets))
        args.append(None if weights is None else torch.from_numpy(weights))
        return theirs(*args)

    expected = torch_run()
    cot = np.random.default_rng(1).standard_normal(tuple(expected.shape))
    (expected * torch.from_numpy(cot)).sum().backward()

    def loss(layer):
        layer_offsets = None if offsets is None else jnp.asarray(offsets)
        layer_weights = None if weights is None else jnp.asarray(weights)
        y = layer(jnp.asarray(tokens), layer_offsets, layer_weights)
        return jnp.sum(y * cot), y

    (_, got), grads = nnx.value_and_grad(loss, has_aux=True)(ours)
    np.testing.assert_allclose(got, expected.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grads["weight"][...], theirs.weight.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_max_unpool_inverts_torchs_max_pool_indices(dims):
    shape = (2, 3) + (6,) * dims
    x = torch.from_numpy(np.random.default_rng(dims).standard_normal(shape))
    pool = getattr(torch.nn, f"MaxPool{dims}d")(2, return_indices=True)
    pooled, indices = pool(x)
    expected = getattr(torch.nn, f"MaxUnpool{dims}d")(2)(pooled, indices).numpy()
    layer = getattr(nn, f"MaxUnpool{dims}d")(2)
    last = lambda t: np.moveaxis(t.numpy(), 1, -1)  # noqa: E731 - channels-last view
    got = layer(jnp.asarray(last(pooled)), jnp.asarray(last(indices)))
    np.testing.assert_array_equal(np.moveaxis(np.asarray(got), -1, 1), expected)


def test_distance_modules_match_torch():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    for theirs, ours in [
        (torch.nn.CosineSimilarity(dim=1), nn.CosineSimilarity(dim=1)),
        (torch.nn.PairwiseDistance(p=3.0, keepdim=True), nn.PairwiseDistance(p=3.0, keepdim=True)),
    ]:
        np.testing.assert_allclose(ours(a, b), theirs(ta, tb).numpy(), rtol=1e-12)
