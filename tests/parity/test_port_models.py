"""check_port over models built of the wider torch.nn: a word-level LSTM language model, a small
transformer classifier and a U-Net-like convolutional net, each trained for 5 optimiser steps
in float64 beside its torch original (the proof of equal algorithms: every module's output,
every gradient and buffer, and the loss trajectory)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
from flax import nnx

import parity
from jaxnets import losses, nn

VOCAB, EMBED, HIDDEN = 17, 8, 6


class TorchLanguageModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, EMBED)
        self.lstm = torch.nn.LSTM(EMBED, HIDDEN, num_layers=2, dropout=0.0)
        self.decoder = torch.nn.Linear(HIDDEN, VOCAB)

    def forward(self, tokens):
        output, _ = self.lstm(self.embedding(tokens))
        return self.decoder(output).reshape(-1, VOCAB)


class LanguageModel(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.embedding = nn.Embedding(VOCAB, EMBED, rngs=rngs)
        self.lstm = nn.LSTM(EMBED, HIDDEN, num_layers=2, dropout=0.0, rngs=rngs)
        self.decoder = nn.Linear(HIDDEN, VOCAB, rngs=rngs)

    def __call__(self, tokens):
        output, _ = self.lstm(self.embedding(tokens))
        return self.decoder(output).reshape(-1, VOCAB)


D_MODEL, HEADS, SEQUENCE, CLASSES = 8, 2, 5, 3


class TorchClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, D_MODEL)
        self.position = torch.nn.Parameter(torch.randn(SEQUENCE, D_MODEL) * 0.1)
        layer = torch.nn.TransformerEncoderLayer(
            D_MODEL, HEADS, dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = torch.nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = torch.nn.Linear(D_MODEL, CLASSES)

    def forward(self, tokens):
        h = self.encoder(self.embedding(tokens) + self.position)
        return self.head(h.mean(dim=1))


class Classifier(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.embedding = nn.Embedding(VOCAB, D_MODEL, rngs=rngs)
        self.position = nnx.Param(jax.random.normal(rngs.params(), (SEQUENCE, D_MODEL)) * 0.1)
        layer = nn.TransformerEncoderLayer(
            D_MODEL,
            HEADS,
            dim_feedforward=16,
            dropout=0.0,
            batch_first=True,
            norm_first=True,
            rngs=rngs,
        )
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(D_MODEL, CLASSES, rngs=rngs)

    def __call__(self, tokens):
        x = self.embedding(tokens)
        h = self.encoder(x + jnp.broadcast_to(self.position[...], x.shape))
        return self.head(h.mean(axis=1))


class TorchUNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pad = torch.nn.ReflectionPad2d(1)
        self.down = torch.nn.Conv2d(2, 4, 3, stride=2)
        self.norm = torch.nn.InstanceNorm2d(4, affine=True)
        self.act = torch.nn.LeakyReLU(0.2)
        self.mid = torch.nn.Conv2d(4, 8, 3, padding=1)
        self.shuffle = torch.nn.PixelShuffle(2)
        self.up = torch.nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.upsample = torch.nn.Upsample(scale_factor=2, mode="bilinear")
        self.out = torch.nn.Conv2d(4 + 2 + 2, 3, 3, padding=1)

    def forward(self, x):
        h = self.act(self.norm(self.down(self.pad(x))))
        skip = self.shuffle(self.mid(h))  # (N, 2, H, W)
        up = self.upsample(h)[:, :2] + self.up(h)[:, :2]
        return self.out(torch.cat([x, skip, torch.cat([up, up], dim=1)], dim=1))


class UNet(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.pad = nn.ReflectionPad2d(1)
        self.down = nn.Conv2d(2, 4, 3, stride=2, rngs=rngs)
        self.norm = nn.InstanceNorm2d(4, affine=True)
        self.act = nn.LeakyReLU(0.2)
        self.mid = nn.Conv2d(4, 8, 3, padding=1, rngs=rngs)
        self.shuffle = nn.PixelShuffle(2)
        self.up = nn.ConvTranspose2d(4, 4, 2, stride=2, rngs=rngs)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear")
        self.out = nn.Conv2d(4 + 2 + 2, 3, 3, padding=1, rngs=rngs)

    def __call__(self, x):
        h = self.act(self.norm(self.down(self.pad(x))))
        skip = self.shuffle(self.mid(h))
        up = self.upsample(h)[..., :2] + self.up(h)[..., :2]
        return self.out(jnp.concatenate([x, skip, jnp.concatenate([up, up], -1)], axis=-1))


def _check(torch_model, jax_model, batch, *, loss, optimizer, channels_last=False):
    report = parity.check_port(
        torch_model,
        jax_model,
        batch,
        loss=loss,
        optimizer=optimizer,
        steps=5,
        dtype="float64",
        channels_last=channels_last,
    )
    assert report.passed, str(report)
    losses_ = np.asarray(report.to_json()["losses"]["float64"]["jax"])
    assert losses_.shape == (5,) and losses_[-1] < losses_[0], losses_


def test_lstm_language_model_port_trains_as_torch():
    torch.manual_seed(0)
    tokens = torch.randint(0, VOCAB, (7, 3))  # (L, N), torch's default layout
    targets = torch.randint(0, VOCAB, (7 * 3,))
    model = TorchLanguageModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    _check(
        model,
        LanguageModel(rngs=nnx.Rngs(0)),
        (tokens, targets),
        loss="cross_entropy",
        optimizer=optimizer,
    )


def test_transformer_classifier_port_trains_as_torch():
    torch.manual_seed(0)
    tokens = torch.randint(0, VOCAB, (4, SEQUENCE))
    labels = torch.randint(0, CLASSES, (4,))
    model = TorchClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    _check(
        model,
        Classifier(rngs=nnx.Rngs(0)),
        (tokens, labels),
        loss="cross_entropy",
        optimizer=optimizer,
    )


def test_unet_port_trains_as_torch():
    torch.manual_seed(0)
    images = torch.randn(2, 2, 8, 8)
    target = torch.randn(2, 3, 8, 8)
    model = TorchUNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    _check(
        model,
        UNet(rngs=nnx.Rngs(0)),
        (images, target),
        loss=(
            torch.nn.functional.mse_loss,
            lambda output, target: losses.mse_loss(output, jnp.moveaxis(target, 1, -1)),
        ),
        optimizer=optimizer,
        channels_last=True,
    )
