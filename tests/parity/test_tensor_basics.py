"""Seed 004's tensor creation and attributes: JAX values and dtypes against torch's."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import torch

from jaxnets.lessons import tensor_basics


def test_deterministic_creation_matches_torch():
    ours = tensor_basics.created(jax.random.key(0))
    theirs = {
        "tensor": torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
        "from_numpy": torch.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3)),
        "zeros": torch.zeros(2, 3),
        "ones": torch.ones(2, 3),
        "full": torch.full((2, 3), 7.5),
        "arange": torch.arange(0, 10, 3),
        "arange_float": torch.arange(0.0, 1.0, 0.25),
        "linspace": torch.linspace(-1.0, 1.0, 5),
        "logspace": torch.logspace(0.0, 3.0, 4),
        "eye": torch.eye(3, 4),
    }
    for name, expected in theirs.items():
        np.testing.assert_allclose(ours[name], expected.numpy(), rtol=1e-6, err_msg=name)
        assert ours[name].shape == tuple(expected.shape)


def test_random_creation_has_torchs_distribution():
    key = jax.random.key(1)
    samples = jnp.concatenate(
        [tensor_basics.created(k)["normal"].ravel() for k in jax.random.split(key, 400)]
    )
    torch.manual_seed(0)
    reference = torch.normal(torch.full((2400,), 1.0), torch.full((2400,), 2.0)).numpy()
    for ours, theirs in [
        (float(samples.mean()), reference.mean()),
        (float(samples.std()), reference.std()),
    ]:
        assert abs(ours - theirs) < 0.2
    bern = tensor_basics.created(key)["bernoulli"]
    assert set(np.unique(bern).tolist()) <= {0.0, 1.0} and bern.dtype == jnp.float32


def _jax_default_dtypes(**env):
    code = (
        "import json; from jaxnets.lessons import tensor_basics as t; "
        "print(json.dumps(t.default_dtypes()))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return json.loads(run.stdout)


def test_default_dtypes_differ_as_documented():
    assert str(torch.tensor([1, 2, 3]).dtype) == "torch.int64"
    assert str(torch.arange(3).dtype) == "torch.int64"
    assert str(torch.tensor([1.0]).dtype) == "torch.float32"
    names = ("integer list", "float list", "arange(int)", "zeros")
    x32 = _jax_default_dtypes(JAX_ENABLE_X64="0")
    assert x32 == dict(zip(names, ("int32", "float32", "int32", "float32"), strict=True))
    x64 = _jax_default_dtypes(JAX_ENABLE_X64="1")
    assert x64 == dict(zip(names, ("int64", "float64", "int64", "float64"), strict=True))


def test_attributes_answer_torchs_questions():
    attrs = tensor_basics.attributes(jnp.array([1.0, 2.0, 3.0], jnp.float32))
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x**2).sum().backward()
    np.testing.assert_array_equal(attrs["grad"], x.grad.numpy())
    assert attrs["shape"] == tuple(x.shape) and str(attrs["dtype"]) == "float32"
    assert "integer_pow" in attrs["grad_fn"] and x.is_leaf
