"""jaxnets.nn against torch.nn: initialiser distributions (KS test) and layer outputs."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx
from scipy import stats

from jaxnets import nn
from parity import convert

KS_LEVEL = 0.01


def _torch_linear(fan_in, fan_out):
    torch.manual_seed(0)
    layer = torch.nn.Linear(fan_in, fan_out)
    return layer.weight.detach().numpy().ravel(), layer.bias.detach().numpy()


def _torch_layer(name, *args, **kwargs):
    torch.manual_seed(0)
    layer = getattr(torch.nn, name)(*args, **kwargs)
    return layer.weight.detach().numpy().ravel(), layer.bias.detach().numpy()


@pytest.mark.parametrize(
    "make_jax,make_torch,fan_in",
    [
        (lambda r: nn.Linear(64, 3000, rngs=r), lambda: _torch_linear(64, 3000), 64),
        (
            lambda r: nn.Conv2d(16, 2000, 3, rngs=r),
            lambda: _torch_layer("Conv2d", 16, 2000, 3),
            144,
        ),
        (
            lambda r: nn.Conv1d(8, 2000, 5, groups=2, rngs=r),
            lambda: _torch_layer("Conv1d", 8, 2000, 5, groups=2),
            20,
        ),
        # torch's fan-in for a transposed convolution is its weight's axis 1: out/groups * k*k.
        (
            lambda r: nn.ConvTranspose2d(6, 2000, 3, groups=2, rngs=r),
            lambda: _torch_layer("ConvTranspose2d", 6, 2000, 3, groups=2),
            9000,
        ),
    ],
    ids=["Linear", "Conv2d", "Conv1d", "ConvTranspose2d"],
)
def test_torch_default_init_is_torch_distribution(make_jax, make_torch, fan_in):
    layer = make_jax(nnx.Rngs(0))
    torch_weight, torch_bias = make_torch()
    bound = 1.0 / np.sqrt(fan_in)
    for ours, theirs in [(layer.kernel[...], torch_weight), (layer.bias[...], torch_bias)]:
        ours = np.asarray(ours).ravel()
        assert ours.size >= 2000 and theirs.size >= 2000
        assert np.all(np.abs(ours) <= bound) and np.all(np.abs(theirs) <= bound)
        assert np.max(np.abs(ours)) > 0.99 * bound
        assert stats.ks_2samp(ours, theirs).pvalue > KS_LEVEL


def test_embedding_init_is_standard_normal_like_torch():
    ours = nn.Embedding(1000, 8, padding_idx=3, rngs=nnx.Rngs(0)).weight[...]
    torch.manual_seed(0)
    theirs = torch.nn.Embedding(1000, 8, padding_idx=3).weight.detach().numpy()
    np.testing.assert_array_equal(ours[3], theirs[3])  # both zero
    rows = np.arange(1000) != 3
    ours, theirs = np.asarray(ours)[rows].ravel(), theirs[rows].ravel()
    assert stats.ks_2samp(ours, theirs).pvalue > KS_LEVEL
    assert stats.kstest(ours, "norm").pvalue > KS_LEVEL


@pytest.mark.parametrize(
    "make_jax,make_torch",
    [
        (lambda: nn.BatchNorm2d(5), lambda: torch.nn.BatchNorm2d(5)),
        (lambda: nn.LayerNorm((2, 3)), lambda: torch.nn.LayerNorm((2, 3))),
        (lambda: nn.GroupNorm(1, 4), lambda: torch.nn.GroupNorm(1, 4)),
    ],
    ids=["BatchNorm2d", "LayerNorm", "GroupNorm"],
)
def test_norm_init_equals_torch(make_jax, make_torch):
    ours, theirs = nn.state_dict(make_jax()), make_torch().state_dict()
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        np.testing.assert_array_equal(ours[key], value.numpy(), err_msg=key)
        assert ours[key].dtype == value.numpy().dtype, key


def test_flax_default_init_fails_the_same_check():
    flax_layer = nnx.Linear(64, 3000, rngs=nnx.Rngs(0))
    torch_weight, torch_bias = _torch_linear(64, 3000)
    assert (
        stats.ks_2samp(np.asarray(flax_layer.kernel[...]).ravel(), torch_weight).pvalue < KS_LEVEL
    )
    assert stats.ks_2samp(np.asarray(flax_layer.bias[...]), torch_bias).pvalue < KS_LEVEL


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stride": 2, "padding": 1},
        {"padding": (1, 2), "dilation": 2},
        {"padding": "same"},
        {"padding": 2, "padding_mode": "reflect"},
        {"padding": 1, "padding_mode": "replicate"},
        {"padding": 1, "padding_mode": "circular"},
        {"groups": 2, "bias": False},
    ],
)
def test_conv2d_matches_torch(kwargs):
    torch.manual_seed(0)
    theirs = torch.nn.Conv2d(4, 6, 3, **kwargs).double()
    ours = nn.Conv2d(4, 6, 3, rngs=nnx.Rngs(0), dtype=jnp.float64, **kwargs)
    nn.load_state_dict(ours, {k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = torch.randn(2, 4, 9, 10, dtype=torch.float64)
    expected = convert.nchw_to_nhwc(theirs(x).detach().numpy())
    got = ours(jnp.asarray(convert.nchw_to_nhwc(x.numpy())))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_linear_matches_torch():
    torch.manual_seed(0)
    theirs = torch.nn.Linear(7, 5).double()
    ours = nn.Linear(7, 5, rngs=nnx.Rngs(0), dtype=jnp.float64)
    ours.kernel[...] = jnp.asarray(theirs.weight.detach().numpy().T)
    ours.bias[...] = jnp.asarray(theirs.bias.detach().numpy())
    x = torch.randn(3, 7, dtype=torch.float64)
    np.testing.assert_allclose(ours(jnp.asarray(x.numpy())), theirs(x).detach().numpy(), rtol=1e-12)
    assert jax.tree.map(jnp.shape, nnx.to_pure_dict(nnx.state(ours))) == {
        "kernel": (7, 5),
        "bias": (5,),
    }


# Every jaxnets.nn layer that has a torch.nn twin of the same name.
LAYERS = sorted(
    name
    for name in nn.__all__
    if name[0].isupper() and isinstance(getattr(torch.nn, name, None), type)
)
# Arguments torch takes that have no meaning here: placement, and Embedding's private ones.
TORCH_ONLY = {"device", "dtype", "_weight", "_freeze"}
# torch.nn.RNN/LSTM/GRU take (*args, **kwargs) and read them in RNNBase's order (RNN's
# nonlinearity fourth); the documented signatures:
_RNN_BASE = [
    ("input_size", inspect.Parameter.empty),
    ("hidden_size", inspect.Parameter.empty),
    ("num_layers", 1),
    ("bias", True),
    ("batch_first", False),
    ("dropout", 0.0),
    ("bidirectional", False),
]
RECURRENT_ORDER = {
    "RNN": [*_RNN_BASE[:3], ("nonlinearity", "tanh"), *_RNN_BASE[3:]],
    "LSTM": [*_RNN_BASE, ("proj_size", 0)],
    "GRU": _RNN_BASE,
}


@pytest.mark.parametrize("name", LAYERS)
def test_constructor_takes_torchs_arguments_in_order_with_its_defaults(name):
    def positional(cls, skip):
        parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
        # A *args parameter's name is invisible to callers; a callable default (an
        # activation) is compared by name, torch's F.relu against jaxnets.nn.functional's.
        return [
            (
                "*" if p.kind is inspect.Parameter.VAR_POSITIONAL else p.name,
                p.default.__name__
                if callable(p.default) and p.default is not inspect.Parameter.empty
                else p.default,
            )
            for p in parameters
            if p.kind not in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD)
            and p.name not in skip
        ]

    expected = positional(getattr(torch.nn, name), TORCH_ONLY)
    if name in RECURRENT_ORDER:  # torch's take *args; their documented order
        expected = RECURRENT_ORDER[name]
    assert positional(getattr(nn, name), TORCH_ONLY) == expected
