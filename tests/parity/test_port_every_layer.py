"""One model made of every ``jaxnets.nn`` layer, ported and proven with ``parity.check_port``."""

import jax.numpy as jnp
import torch
from flax import nnx

import parity
from jaxnets import nn


class TorchEvery(torch.nn.Module):
    def __init__(self):
        super().__init__()
        tn = torch.nn
        self.features = tn.Sequential(
            tn.Conv2d(3, 4, 3, padding=1), tn.BatchNorm2d(4), tn.ReLU(), tn.MaxPool2d(2)
        )
        self.up = tn.ConvTranspose2d(4, 4, 2, stride=2)
        self.group = tn.GroupNorm(2, 4)
        self.act = tn.SiLU()
        self.avg = tn.AvgPool2d(2)
        self.adapt = tn.AdaptiveAvgPool2d(3)
        self.flatten = tn.Flatten()
        self.fc = tn.Linear(36, 16)
        self.gelu = tn.GELU(approximate="tanh")
        self.drop = tn.Dropout(0.0)
        self.gelu_exact = tn.GELU()
        self.bn1d = tn.BatchNorm1d(16)
        self.conv1d = tn.Conv1d(1, 2, 3)
        self.flat1d = tn.Flatten()
        self.embed = tn.Embedding(10, 8, padding_idx=0)
        self.norm = tn.LayerNorm(8)
        self.tanh = tn.Tanh()
        self.identity = tn.Identity()
        self.head = tn.Linear(28 + 8, 5)
        self.sigmoid = tn.Sigmoid()
        self.softmax = tn.Softmax(dim=-1)

    def forward(self, image, tokens):
        x = self.features(image)
        x = self.avg(self.act(self.group(self.up(x))))
        x = self.drop(self.gelu(self.fc(self.flatten(self.adapt(x)))))
        x = self.bn1d(self.gelu_exact(x))
        s = self.flat1d(self.conv1d(x.unsqueeze(1)))
        t = self.tanh(self.norm(self.embed(tokens)))
        h = self.identity(torch.cat([s, t], dim=1))
        return self.softmax(self.head(h)) * self.sigmoid(h).mean(dim=1, keepdim=True)


class JaxEvery(nnx.Module):
    """The port: the same attribute names, channels-last activations."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1, rngs=rngs), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.up = nn.ConvTranspose2d(4, 4, 2, stride=2, rngs=rngs)
        self.group = nn.GroupNorm(2, 4)
        self.act = nn.SiLU()
        self.avg = nn.AvgPool2d(2)
        self.adapt = nn.AdaptiveAvgPool2d(3)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(36, 16, rngs=rngs)
        self.gelu = nn.GELU(approximate="tanh")
        self.drop = nn.Dropout(0.0)
        self.gelu_exact = nn.GELU()
        self.bn1d = nn.BatchNorm1d(16)
        self.conv1d = nn.Conv1d(1, 2, 3, rngs=rngs)
        self.flat1d = nn.Flatten()
        self.embed = nn.Embedding(10, 8, padding_idx=0, rngs=rngs)
        self.norm = nn.LayerNorm(8)
        self.tanh = nn.Tanh()
        self.identity = nn.Identity()
        self.head = nn.Linear(28 + 8, 5, rngs=rngs)
        self.sigmoid = nn.Sigmoid()
        self.softmax = nn.Softmax(dim=-1)

    def __call__(self, image, tokens):
        x = self.features(image)
        x = self.avg(self.act(self.group(self.up(x))))
        x = self.drop(self.gelu(self.fc(self.flatten(self.adapt(x)))))
        x = self.bn1d(self.gelu_exact(x))
        s = self.flat1d(self.conv1d(x[..., None]))  # (N, L, C=1): channels last
        t = self.tanh(self.norm(self.embed(tokens)))
        h = self.identity(jnp.concatenate([s, t], axis=1))
        return self.softmax(self.head(h)) * jnp.mean(self.sigmoid(h), axis=1, keepdims=True)


def test_a_model_of_every_layer_passes_check_port():
    torch.manual_seed(0)
    model = TorchEvery()
    batch = (torch.randn(6, 3, 12, 12), torch.randint(0, 10, (6,)), torch.rand(6, 5))
    report = parity.check_port(
        model,
        JaxEvery(rngs=nnx.Rngs(0)),
        batch,
        loss="mse_loss",
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        steps=3,
        dtype="both",
        channels_last=True,
    )
    assert report.passed, str(report)
    layers = {name for name in dict(model.named_modules()) if name}
    compared = {row.name for row in report.rows if row.quantity == "output"}
    assert layers <= compared, layers - compared
