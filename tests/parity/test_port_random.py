"""``parity.check_port`` with randomness on: torch's dropout masks and noise replayed into the port.

Each test trains a small torch model beside its NNX port in the same test (torch's draws are
recorded in its first run and handed to the port through ``jaxnets.nn.random``): an MNIST-style
convolutional net with two dropouts, a VAE drawing ``randn_like`` noise, a transformer block and
a ``MultiheadAttention`` with attention dropout. Ports that draw differently (elsewhere, another
shape, another kind, another ``p``) raise ``ReplayError`` naming torch's module.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from flax import nnx

from jaxnets import losses, nn
from jaxnets.nn import functional as F
from jaxnets.nn import random
from jaxnets.nn.random import ReplayError
from parity import check_port

# --- MNIST classic (pytorch/examples' mnist/main.py, shrunk) ---------------------------------


class TorchMnist(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3, 1)
        self.conv2 = torch.nn.Conv2d(4, 8, 3, 1)
        self.dropout1 = torch.nn.Dropout(0.25)
        self.dropout2 = torch.nn.Dropout(0.5)
        self.fc1 = torch.nn.Linear(8 * 4 * 4, 16)
        self.fc2 = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = TF.relu(self.conv1(x))
        x = TF.relu(self.conv2(x))
        x = TF.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = TF.relu(self.fc1(x))
        x = self.dropout2(x)
        return TF.log_softmax(self.fc2(x), dim=1)


class Mnist(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs, p1: float = 0.25, dropout1_after_conv1: bool = False):
        self.conv1 = nn.Conv2d(1, 4, 3, 1, rngs=rngs)
        self.conv2 = nn.Conv2d(4, 8, 3, 1, rngs=rngs)
        self.dropout1 = nn.Dropout(p1, rngs=rngs)
        self.dropout2 = nn.Dropout(0.5, rngs=rngs)
        self.fc1 = nn.Linear(8 * 4 * 4, 16, rngs=rngs)
        self.fc2 = nn.Linear(16, 10, rngs=rngs)
        self.dropout1_after_conv1 = dropout1_after_conv1

    def __call__(self, x):
        x = F.relu(self.conv1(x))
        if self.dropout1_after_conv1:  # a wrong port: the mask drawn on another activation
            x = self.dropout1(x)
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        if not self.dropout1_after_conv1:
            x = self.dropout1(x)
        x = jnp.moveaxis(x, -1, 1).reshape(x.shape[0], -1)  # torch.flatten of (N, C, H, W)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def _check_mnist(port: Mnist | None = None, *, dtype: str = "both", steps: int = 5):
    torch.manual_seed(0)
    model = TorchMnist()
    images, labels = torch.randn(8, 1, 12, 12), torch.randint(0, 10, (8,))
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    return check_port(
        model,
        Mnist(rngs=nnx.Rngs(0)) if port is None else port,
        (images, labels),
        loss="nll_loss",
        optimizer=optimizer,
        scheduler=scheduler,
        steps=steps,
        dtype=dtype,
        channels_last=True,
    )


def _output_rows(report, dtype: str) -> dict[str, bool]:
    return {r.name: r.passed for r in report.rows if r.dtype == dtype and r.quantity == "output"}


def test_mnist_with_dropout_trains_as_torch():
    report = _check_mnist()
    assert report.passed, str(report)
    for dtype in ("float64", "float32"):
        outputs = _output_rows(report, dtype)
        # The dropouts' outputs were compared: the replayed masks are the ones torch applied.
        assert outputs.get("dropout1") and outputs.get("dropout2"), (dtype, outputs)
        trajectory = np.asarray(report.losses[dtype]["jax"])
        assert trajectory.shape == (5,) and np.all(np.diff(trajectory) != 0), trajectory
        np.testing.assert_allclose(trajectory, report.losses[dtype]["torch"], rtol=1e-4)


def test_mnist_with_dropout_float32_only_judged_against_torch_float64():
    report = _check_mnist(dtype="float32")
    assert report.passed, str(report)
    assert {r.dtype for r in report.rows} == {"float32"}
    assert _output_rows(report, "float32").get("dropout1"), str(report)


def test_mnist_port_dropping_after_another_layer_names_the_module():
    port = Mnist(rngs=nnx.Rngs(0), dropout1_after_conv1=True)
    with pytest.raises(ReplayError, match=r"module 'dropout1'") as error:
        _check_mnist(port, dtype="float64", steps=1)
    message = str(error.value)
    assert "step 0" in message and "of another shape" in message, message
    # torch's mask after the pool (N, C, H, W); the port's after conv1, channels last.
    assert "of shape (8, 8, 4, 4) in module 'dropout1'" in message, message
    assert "the port's module 'dropout1' asked for bernoulli(p=0.75) of shape (8, 10, 10, 4)" in (
        message
    ), message


def test_mnist_port_with_another_dropout_rate_names_the_module():
    port = Mnist(rngs=nnx.Rngs(0), p1=0.3)
    with pytest.raises(ReplayError, match=r"with another p") as error:
        _check_mnist(port, dtype="float64", steps=1)
    message = str(error.value)
    assert "bernoulli(p=0.75) of shape (8, 8, 4, 4) in module 'dropout1'" in message, message
    assert "the port's module 'dropout1' asked for bernoulli(p=0.7)" in message, message


# --- VAE (pytorch/examples' vae/main.py, shrunk) ---------------------------------------------

PIXELS, HIDDEN, LATENT = 12, 8, 3


class TorchVAE(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(PIXELS, HIDDEN)
        self.fc21 = torch.nn.Linear(HIDDEN, LATENT)
        self.fc22 = torch.nn.Linear(HIDDEN, LATENT)
        self.fc3 = torch.nn.Linear(LATENT, HIDDEN)
        self.fc4 = torch.nn.Linear(HIDDEN, PIXELS)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def forward(self, x):
        h = TF.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = self.reparameterize(mu, logvar)
        return torch.sigmoid(self.fc4(TF.relu(self.fc3(z)))), mu, logvar


class VAE(nnx.Module):
    """The port; ``noise`` says how it draws (``"randn_like"`` is the right port)."""

    def __init__(self, *, rngs: nnx.Rngs, noise: str = "randn_like"):
        self.fc1 = nn.Linear(PIXELS, HIDDEN, rngs=rngs)
        self.fc21 = nn.Linear(HIDDEN, LATENT, rngs=rngs)
        self.fc22 = nn.Linear(HIDDEN, LATENT, rngs=rngs)
        self.fc3 = nn.Linear(LATENT, HIDDEN, rngs=rngs)
        self.fc4 = nn.Linear(HIDDEN, PIXELS, rngs=rngs)
        # Its own stream, so that it also runs standalone; a replay needs none.
        self.rngs = nnx.Rngs(1)
        self.noise = noise

    def reparameterize(self, mu, logvar):
        std = jnp.exp(0.5 * logvar)
        if self.noise == "randn_like":
            eps = random.randn_like(std, rngs=self.rngs)
        elif self.noise == "wrong_shape":  # one draw per sample, broadcast
            eps = random.randn(std.shape[:1] + (1,), std.dtype, rngs=self.rngs)
        else:  # "rand_like": uniform noise where torch draws normal
            eps = random.rand_like(std, rngs=self.rngs)
        return mu + eps * std

    def __call__(self, x):
        h = F.relu(self.fc1(x))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = self.reparameterize(mu, logvar)
        return F.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def _torch_vae_loss(output, x):
    recon, mu, logvar = output
    bce = TF.binary_cross_entropy(recon, x, reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def _jax_vae_loss(output, x):
    recon, mu, logvar = output
    bce = losses.binary_cross_entropy(recon, x, reduction="sum")
    return bce - 0.5 * jnp.sum(1 + logvar - mu**2 - jnp.exp(logvar))


def _check_vae(port: VAE, *, dtype: str = "both", steps: int = 5):
    torch.manual_seed(0)
    model = TorchVAE()
    x = torch.rand(6, PIXELS)
    return check_port(
        model,
        port,
        (x, x),
        loss=(_torch_vae_loss, _jax_vae_loss),
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        steps=steps,
        dtype=dtype,
    )


def test_vae_with_randn_like_noise_trains_as_torch():
    port = VAE(rngs=nnx.Rngs(0))
    # Standalone the port draws from its own stream, and two calls draw different noise.
    x = jnp.full((2, PIXELS), 0.5)
    first, second = port(x)[0], port(x)[0]
    assert first.shape == (2, PIXELS) and not np.allclose(first, second)
    report = _check_vae(port)
    assert report.passed, str(report)
    for dtype in ("float64", "float32"):
        trajectory = np.asarray(report.losses[dtype]["jax"])
        assert trajectory[-1] < trajectory[0], trajectory


def test_vae_port_drawing_another_shape_names_the_module():
    with pytest.raises(ReplayError, match=r"of another shape") as error:
        _check_vae(VAE(rngs=nnx.Rngs(0), noise="wrong_shape"), dtype="float64", steps=1)
    message = str(error.value)
    assert f"torch drew normal(mean=0, std=1) of shape (6, {LATENT}) in the root module" in (
        message
    ), message
    assert "root module asked for normal(mean=0, std=1) of shape (6, 1)" in message, message


def test_vae_port_drawing_another_kind_names_the_module():
    with pytest.raises(ReplayError, match=r"another kind of draw") as error:
        _check_vae(VAE(rngs=nnx.Rngs(0), noise="rand_like"), dtype="float64", steps=1)
    message = str(error.value)
    assert f"torch drew normal(mean=0, std=1) of shape (6, {LATENT}) in the root module" in (
        message
    ), message
    assert f"root module asked for uniform(low=0, high=1) of shape (6, {LATENT})" in message, (
        message
    )


# --- Attention dropout ----------------------------------------------------------------------

D_MODEL, HEADS, TOKENS, CLASSES = 16, 2, 5, 3


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.TransformerEncoderLayer(
            d_model=D_MODEL, nhead=HEADS, dim_feedforward=32, dropout=0.1, batch_first=True
        )
        self.head = torch.nn.Linear(D_MODEL, CLASSES)

    def forward(self, x):
        return self.head(self.layer(x).mean(dim=1))


class Block(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.layer = nn.TransformerEncoderLayer(
            d_model=D_MODEL,
            nhead=HEADS,
            dim_feedforward=32,
            dropout=0.1,
            batch_first=True,
            rngs=rngs,
        )
        self.head = nn.Linear(D_MODEL, CLASSES, rngs=rngs)

    def __call__(self, x):
        return self.head(self.layer(x).mean(axis=1))


class TorchAttention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = torch.nn.MultiheadAttention(D_MODEL, HEADS, dropout=0.1, batch_first=True)
        self.head = torch.nn.Linear(D_MODEL, CLASSES)

    def forward(self, x):
        out, weights = self.attn(x, x, x, need_weights=True)  # dropout on (N*H, L, S) weights
        return self.head(out.mean(dim=1) + weights.sum(dim=(1, 2))[:, None])


class Attention(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.attn = nn.MultiheadAttention(D_MODEL, HEADS, dropout=0.1, batch_first=True, rngs=rngs)
        self.head = nn.Linear(D_MODEL, CLASSES, rngs=rngs)

    def __call__(self, x):
        out, weights = self.attn(x, x, x, need_weights=True)
        return self.head(out.mean(axis=1) + weights.sum(axis=(1, 2))[:, None])


def _check_attention(torch_class, port_class):
    torch.manual_seed(0)
    model = torch_class()
    x, labels = torch.randn(4, TOKENS, D_MODEL), torch.randint(0, CLASSES, (4,))
    report = check_port(
        model,
        port_class(rngs=nnx.Rngs(0)),
        (x, labels),
        loss="cross_entropy",
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        steps=5,
        dtype="both",
    )
    assert report.passed, str(report)
    return report


def test_transformer_block_with_dropout_trains_as_torch():
    report = _check_attention(TorchBlock, Block)
    outputs = _output_rows(report, "float64")
    for path in ("layer.self_attn", "layer.dropout1", "layer.dropout", "layer.dropout2"):
        assert outputs.get(path), (path, outputs)


def test_multihead_attention_weights_dropout_trains_as_torch():
    report = _check_attention(TorchAttention, Attention)
    assert _output_rows(report, "float64").get("attn"), str(report)


# --- torch's random state ---------------------------------------------------------------------


def test_check_port_leaves_torch_random_state_as_it_found_it():
    torch.manual_seed(0)
    model = TorchVAE()
    x = torch.rand(6, PIXELS)
    before = torch.random.get_rng_state()
    report = check_port(
        model,
        VAE(rngs=nnx.Rngs(0)),
        (x, x),
        loss=(_torch_vae_loss, _jax_vae_loss),
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-2),
        steps=2,
        dtype="both",
    )
    assert report.passed, str(report)
    assert torch.equal(torch.random.get_rng_state(), before)
