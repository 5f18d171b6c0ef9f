"""jaxnets.nn's state_dict protocol and modes against torch: keys, order, layouts, round trips.

One model uses every layer; its torch twin has the same structure. The state_dict keys (in
order) and named_modules paths must equal torch's, a torch state_dict must load and come back
bit for bit, and the two forwards must agree in eval mode. BatchNorm's running statistics must
follow torch's over several training steps, in place under ``nnx.jit``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from jaxnets import nn

TOKENS, LENGTH, BATCH = 12, 16, 3


class TorchNet(torch.nn.Module):
    """Tokens -> embedding -> Conv1d -> a 4x4 image -> 2-D features -> two linear heads."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(TOKENS, 6, padding_idx=0)
        self.conv1d = torch.nn.Conv1d(6, 8, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm1d(8)
        self.gate = torch.nn.Sigmoid()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(8, 8, 3, padding=1),
            torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.ConvTranspose2d(8, 6, 2, stride=2),
            torch.nn.Conv2d(6, 8, 3, padding="same", groups=2, padding_mode="reflect"),
            torch.nn.GroupNorm(2, 8),
            torch.nn.GELU(),
            torch.nn.AvgPool2d(3, 1, 1, count_include_pad=False),
            torch.nn.SiLU(),
            torch.nn.AdaptiveAvgPool2d((2, 3)),
            torch.nn.Flatten(),
            torch.nn.Dropout(0.5),
        )
        self.heads = torch.nn.ModuleList(
            [torch.nn.Linear(48, 16), torch.nn.LayerNorm(16), torch.nn.Tanh()]
        )
        self.out = torch.nn.Sequential(torch.nn.Linear(16, 5), torch.nn.Identity())
        self.softmax = torch.nn.Softmax(dim=1)
        self.temperature = torch.nn.Parameter(torch.tensor([1.5]))

    def forward(self, tokens):
        h = self.embed(tokens).transpose(1, 2)  # (N, 6, L)
        h = self.gate(self.bn1(self.conv1d(h)))
        h = self.features(h.reshape(h.shape[0], 8, 4, 4))
        for layer in self.heads:
            h = layer(h)
        return self.softmax(self.out(h) * self.temperature)


class JaxNet(nnx.Module):
    """The same network in jaxnets.nn, channels-last; ``heads`` an ``nnx.List``."""

    def __init__(self, *, dtype=jnp.float32, rngs: nnx.Rngs):
        self.embed = nn.Embedding(TOKENS, 6, padding_idx=0, dtype=dtype, rngs=rngs)
        self.conv1d = nn.Conv1d(6, 8, 3, padding=1, dtype=dtype, rngs=rngs)
        self.bn1 = nn.BatchNorm1d(8, dtype=dtype)
        self.gate = nn.Sigmoid()
        self.features = nn.Sequential(
            nn.Conv2d(8, 8, 3, padding=1, dtype=dtype, rngs=rngs),
            nn.BatchNorm2d(8, dtype=dtype),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.ConvTranspose2d(8, 6, 2, stride=2, dtype=dtype, rngs=rngs),
            nn.Conv2d(
                6, 8, 3, padding="same", groups=2, padding_mode="reflect", dtype=dtype, rngs=rngs
            ),
            nn.GroupNorm(2, 8, dtype=dtype),
            nn.GELU(),
            nn.AvgPool2d(3, 1, 1, count_include_pad=False),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d((2, 3)),
            nn.Flatten(),
            nn.Dropout(0.5, rngs=rngs),
        )
        self.heads = nnx.List(
            [nn.Linear(48, 16, dtype=dtype, rngs=rngs), nn.LayerNorm(16, dtype=dtype), nn.Tanh()]
        )
        self.out = nn.Sequential(nn.Linear(16, 5, dtype=dtype, rngs=rngs), nn.Identity())
        self.softmax = nn.Softmax(dim=1)
        self.temperature = nnx.Param(jnp.asarray([1.5], dtype))

    def __call__(self, tokens):
        h = self.gate(self.bn1(self.conv1d(self.embed(tokens))))  # (N, L, 8)
        h = self.features(h.reshape(h.shape[0], 4, 4, 8))
        for layer in self.heads:
            h = layer(h)
        logits = self.out(h)
        return self.softmax(logits * jnp.broadcast_to(self.temperature[...], logits.shape))


def _randomised_torch_net() -> TorchNet:
    torch.manual_seed(0)
    net = TorchNet().double()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0, generator=generator)
            elif tensor.is_floating_point() and not name.endswith("running_mean"):
                tensor.normal_(0.0, 0.5, generator=generator)
    return net


def _tokens() -> np.ndarray:
    tokens = np.random.default_rng(0).integers(0, TOKENS, (BATCH, LENGTH))
    tokens[0, :3] = 0  # the padding index
    return tokens


def test_every_layer_model_keys_modules_round_trip_and_forward():
    theirs = _randomised_torch_net()
    ours = JaxNet(dtype=jnp.float64, rngs=nnx.Rngs(0))
    torch_state = {k: v.numpy() for k, v in theirs.state_dict().items()}

    assert list(nn.state_dict(ours)) == list(torch_state)
    assert [path for path, _ in nn.named_modules(ours)] == [
        path for path, _ in theirs.named_modules()
    ]
    assert [name for name, _ in nn.named_children(ours)] == [
        name for name, _ in theirs.named_children()
    ]

    nn.load_state_dict(ours, theirs.state_dict())
    back = nn.state_dict(ours)
    for key, value in torch_state.items():
        assert back[key].dtype == value.dtype, key
        np.testing.assert_array_equal(back[key], value, err_msg=key)

    theirs.eval()
    ours.eval()
    tokens = _tokens()
    expected = theirs(torch.from_numpy(tokens)).detach().numpy()
    got = nnx.jit(lambda model, tokens: model(tokens))(ours, jnp.asarray(tokens))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_eval_and_train_switch_batchnorm_and_dropout_inside_containers():
    model = nnx.eval_shape(lambda: JaxNet(rngs=nnx.Rngs(0)))  # modes need no arrays
    batch_norms = [model.bn1, model.features[1]]
    dropout = model.features[12]
    assert not any(bn.use_running_average for bn in batch_norms)  # torch starts in training
    assert not dropout.deterministic
    model.eval()
    assert all(bn.use_running_average for bn in batch_norms) and dropout.deterministic
    model.train()
    assert not any(bn.use_running_average for bn in batch_norms) and not dropout.deterministic
    view = nnx.view(model, use_running_average=True, deterministic=True)
    assert view.features[1].use_running_average and view.features[12].deterministic
    assert not model.features[1].use_running_average


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_batchnorm_running_statistics_follow_torch_under_nnx_jit(momentum, dtype):
    tolerance = {"float64": 1e-12, "float32": 1e-5}[dtype]
    theirs = torch.nn.Sequential(
        torch.nn.BatchNorm2d(3, momentum=momentum), torch.nn.Conv2d(3, 2, 1)
    ).to(getattr(torch, dtype))
    ours = nn.Sequential(
        nn.BatchNorm2d(3, momentum=momentum, dtype=dtype),
        nn.Conv2d(3, 2, 1, dtype=dtype, rngs=nnx.Rngs(0)),
    )
    nn.load_state_dict(ours, theirs.state_dict())
    step = nnx.jit(lambda model, x: model(x))
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = rng.normal(2.0, 3.0, (5, 3, 4, 4)).astype(dtype)
        theirs(torch.from_numpy(x))
        step(ours, jnp.asarray(x.transpose(0, 2, 3, 1)))
    got, want = nn.state_dict(ours), theirs.state_dict()
    assert int(got["0.num_batches_tracked"]) == 4
    for key in ("0.running_mean", "0.running_var"):
        np.testing.assert_allclose(got[key], want[key].numpy(), rtol=tolerance, err_msg=key)

    theirs.eval()
    ours.eval()
    x = rng.normal(2.0, 3.0, (2, 3, 4, 4)).astype(dtype)
    expected = theirs(torch.from_numpy(x)).detach().numpy().transpose(0, 2, 3, 1)
    got = step(ours, jnp.asarray(x.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(got, expected, rtol=tolerance * 10, atol=tolerance)
    assert int(ours[0].num_batches_tracked[...]) == 4  # eval mode leaves the buffers alone


def test_functional_split_merge_carries_batch_statistics():
    ours = nn.Sequential(nn.Linear(3, 4, rngs=nnx.Rngs(0)), nn.BatchNorm1d(4))
    graphdef, params, stats = nnx.split(ours, nnx.Param, nnx.BatchStat)

    @jax.jit
    def forward(params, stats, x):
        model = nnx.merge(graphdef, params, stats)
        y = model(x)
        return y, nnx.state(model, nnx.BatchStat)

    _, stats = forward(params, stats, jnp.ones((5, 3), jnp.float32))
    _, stats = forward(params, stats, 2 * jnp.ones((5, 3), jnp.float32))
    nnx.update(ours, stats)
    assert int(ours[1].num_batches_tracked[...]) == 2


def test_strict_load_lists_every_problem_at_once_and_writes_nothing():
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    ours = nn.Sequential(nn.Linear(3, 4, rngs=nnx.Rngs(0)), nn.BatchNorm1d(5))
    before = nn.state_dict(ours)
    state = dict(theirs.state_dict())
    del state["0.bias"]
    state["2.weight"] = torch.zeros(4)
    with pytest.raises(nn.StateDictError) as error:
        nn.load_state_dict(ours, state)
    message = str(error.value)
    assert 'Missing key(s) in state_dict: "0.bias".' in message
    assert 'Unexpected key(s) in state_dict: "2.weight".' in message
    for key in ("1.weight", "1.bias", "1.running_mean", "1.running_var"):
        assert f"size mismatch for {key}: copying a param with shape (4,)" in message
    assert "1.num_batches_tracked" not in message
    for key, value in nn.state_dict(ours).items():
        np.testing.assert_array_equal(value, before[key])

    # Not strict: missing and unexpected keys are allowed, wrong shapes still are not.
    with pytest.raises(nn.StateDictError, match="size mismatch") as error:
        nn.load_state_dict(ours, state, strict=False)
    assert "Missing" not in str(error.value)
    nn.load_state_dict(ours, {"0.weight": theirs[0].weight, "extra": np.zeros(1)}, strict=False)
    np.testing.assert_array_equal(ours[0].kernel[...], theirs[0].weight.detach().numpy().T)


class _ListNet(nnx.Module):
    """Python lists (as ``nnx.data``) and ``nnx.Dict`` of layers under user attribute names."""

    def __init__(self, rngs: nnx.Rngs):
        self.blocks = nnx.data(
            [nn.Conv2d(2, 3, 3, rngs=rngs), nn.ConvTranspose2d(3, 2, 2, rngs=rngs)]
        )
        self.norms = nnx.Dict({"first": nn.GroupNorm(1, 3), "second": nn.BatchNorm2d(2)})
        self.shift = nnx.BatchStat(jnp.zeros((2,), jnp.float32))


class _TorchListNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = torch.nn.ModuleList(
            [torch.nn.Conv2d(2, 3, 3), torch.nn.ConvTranspose2d(3, 2, 2)]
        )
        self.norms = torch.nn.ModuleDict(
            {"first": torch.nn.GroupNorm(1, 3), "second": torch.nn.BatchNorm2d(2)}
        )
        self.register_buffer("shift", torch.zeros(2))


def test_python_lists_and_dicts_of_layers_map_to_module_lists_and_dicts():
    theirs, ours = _TorchListNet(), _ListNet(nnx.Rngs(0))
    assert list(nn.state_dict(ours)) == list(theirs.state_dict())
    # A Python list is not a module: torch's ModuleList container itself has no counterpart.
    torch_paths = [path for path, _ in theirs.named_modules() if path != "blocks"]
    assert [path for path, _ in nn.named_modules(ours)] == torch_paths
    with torch.no_grad():
        for tensor in theirs.state_dict().values():
            if tensor.is_floating_point():
                tensor.normal_()
    nn.load_state_dict(ours, theirs.state_dict())
    for key, value in nn.state_dict(ours).items():
        np.testing.assert_array_equal(value, theirs.state_dict()[key].numpy(), err_msg=key)


def test_state_dict_arrays_are_writable_copies_in_torch_layout():
    layer = nn.ConvTranspose2d(4, 6, (2, 3), groups=2, rngs=nnx.Rngs(0))
    weight = nn.state_dict(layer)["weight"]
    assert weight.shape == torch.nn.ConvTranspose2d(4, 6, (2, 3), groups=2).weight.shape
    assert weight.flags.writeable and weight.flags.c_contiguous
    weight[...] = 0
    assert float(jnp.max(jnp.abs(layer.kernel[...]))) > 0
    torch.from_numpy(weight)  # no "not writable" warning (warnings are errors here)


def test_loaded_arrays_do_not_alias_torch_tensors():
    theirs = torch.nn.BatchNorm1d(3)
    ours = nn.BatchNorm1d(3)
    nn.load_state_dict(ours, theirs.state_dict())
    theirs(torch.randn(4, 3))  # updates torch's buffers in place
    np.testing.assert_array_equal(ours.running_mean[...], np.zeros(3, np.float32))
