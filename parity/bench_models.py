"""Benchmark cases for models beyond the tutorials: a word-level LSTM language model (the classic
word-language-model example: 2 layers, hidden 256, sequences of 35, batch 20) and a transformer
encoder (4 layers, d_model 256, 8 heads, sequences of 128, batch 16), each trained with SGD on
cross-entropy.

Both sides start from the same weights (the torch model's, loaded into the jaxnets port with
``parity.load_torch``) and train on the same batch. The jaxnets run is the whole loop as one
program (``jax.jit`` over ``lax.scan`` of the step, NNX's pure ``split``/``merge`` form); the
torch step is forward, backward and ``optim.SGD.step``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
from flax import nnx

from jaxnets import losses, nn
from jaxnets import optim as jaxnets_optim
from parity.bench_cases import Case, dense_flops, sgd_flops
from parity.port import load_torch

LEARNING_RATE = 0.1
VOCAB = 1000


class TorchLanguageModel(torch.nn.Module):
    def __init__(self, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, hidden)
        self.lstm = torch.nn.LSTM(hidden, hidden, num_layers=layers)
        self.decoder = torch.nn.Linear(hidden, VOCAB)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        output, _ = self.lstm(self.embedding(tokens))
        return self.decoder(output).reshape(-1, VOCAB)


class LanguageModel(nnx.Module):
    def __init__(self, hidden: int = 256, layers: int = 2, *, rngs: nnx.Rngs):
        self.embedding = nn.Embedding(VOCAB, hidden, rngs=rngs)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, rngs=rngs)
        self.decoder = nn.Linear(hidden, VOCAB, rngs=rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        output, _ = self.lstm(self.embedding(tokens))
        return self.decoder(output).reshape(-1, VOCAB)


class TorchEncoder(torch.nn.Module):
    def __init__(self, d_model: int = 256, heads: int = 8, layers: int = 4):
        super().__init__()
        self.embedding = torch.nn.Embedding(VOCAB, d_model)
        layer = torch.nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=4 * d_model, dropout=0.0, batch_first=True
        )
        self.encoder = torch.nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.decoder = torch.nn.Linear(d_model, VOCAB)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(self.embedding(tokens))).reshape(-1, VOCAB)


class Encoder(nnx.Module):
    def __init__(self, d_model: int = 256, heads: int = 8, layers: int = 4, *, rngs: nnx.Rngs):
        self.embedding = nn.Embedding(VOCAB, d_model, rngs=rngs)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=4 * d_model, dropout=0.0, batch_first=True, rngs=rngs
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.decoder = nn.Linear(d_model, VOCAB, rngs=rngs)

    def __call__(self, tokens: jax.Array) -> jax.Array:
        return self.decoder(self.encoder(self.embedding(tokens))).reshape(-1, VOCAB)


def _jax_runner(
    model: nnx.Module, tokens: np.ndarray, targets: np.ndarray, steps: int
) -> Callable[[], np.ndarray]:
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = jaxnets_optim.sgd(LEARNING_RATE)
    tokens, targets = jnp.asarray(tokens), jnp.asarray(targets)

    def loss_fn(params: Any) -> jax.Array:
        logits = nnx.merge(graphdef, params, rest)(tokens)
        return losses.cross_entropy(logits, targets)

    @jax.jit
    def run(params: Any) -> jax.Array:
        def step(carry, _):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        _, trajectory = jax.lax.scan(step, (params, tx.init(params)), None, length=steps)
        return trajectory

    return lambda: np.asarray(jax.block_until_ready(run(params)))


def _torch_step(model: torch.nn.Module, tokens: torch.Tensor, targets: torch.Tensor):
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    initial = [p.detach().clone() for p in model.parameters()]

    def step() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(tokens), targets)
        loss.backward()
        optimizer.step()
        return loss.detach()

    def reset() -> None:
        with torch.no_grad():
            for parameter, value in zip(model.parameters(), initial, strict=True):
                parameter.copy_(value)
                parameter.grad = None
        optimizer.state.clear()

    return step, reset


def _case(
    name: str,
    setting: str,
    torch_model: torch.nn.Module,
    jax_model: nnx.Module,
    tokens: np.ndarray,
    steps: int,
    flops: float,
    device: str,
) -> Case:
    targets = np.random.default_rng(1).integers(0, VOCAB, tokens.size)
    load_torch(jax_model, torch_model)
    torch_model.to(device)
    step, reset = _torch_step(
        torch_model, torch.from_numpy(tokens).to(device), torch.from_numpy(targets).to(device)
    )
    return Case(
        experiment=name,
        setting=setting,
        batch_size=None,
        steps=steps,
        flops_per_step=flops,
        run_jax=_jax_runner(jax_model, tokens, targets, steps),
        torch_step=step,
        reset=reset,
    )


def lstm_lm_case(seed: int, steps: int, batch_size: int | None, device: str = "cpu") -> Case:
    """The word-language-model LSTM: tokens ``(35, batch)``, 2 layers of 256."""
    batch = batch_size or 20
    sequence, hidden = 35, 256
    torch.manual_seed(seed)
    tokens = np.random.default_rng(seed).integers(0, VOCAB, (sequence, batch))
    rows = sequence * batch
    # per layer and step: input and recurrent products of 4 gates; the decoder; SGD
    lstm = 2 * (dense_flops(rows, hidden, 4 * hidden, input_grad=True) * 2)
    flops = lstm + dense_flops(rows, hidden, VOCAB, input_grad=True)
    params = 2 * 8 * hidden * hidden + VOCAB * hidden * 2
    return _case(
        "lstm_lm",
        f"L{sequence} N{batch}",
        TorchLanguageModel(hidden),
        LanguageModel(hidden, rngs=nnx.Rngs(seed)),
        tokens,
        steps,
        flops + sgd_flops(params),
        device,
    )


def transformer_case(seed: int, steps: int, batch_size: int | None, device: str = "cpu") -> Case:
    """A transformer encoder: tokens ``(batch, 128)``, 4 layers of d_model 256, 8 heads."""
    batch = batch_size or 16
    sequence, d_model, layers = 128, 256, 4
    torch.manual_seed(seed)
    tokens = np.random.default_rng(seed).integers(0, VOCAB, (batch, sequence))
    rows = batch * sequence
    per_layer = (
        dense_flops(rows, d_model, 3 * d_model, input_grad=True)
        + dense_flops(rows, d_model, d_model, input_grad=True)
        + 2 * dense_flops(rows, d_model, 4 * d_model, input_grad=True)
        + 2 * 3 * 2.0 * batch * sequence * sequence * d_model  # scores and mix, fwd + bwd
    )
    flops = layers * per_layer + dense_flops(rows, d_model, VOCAB, input_grad=True)
    params = layers * 12 * d_model * d_model + 2 * VOCAB * d_model
    return _case(
        "transformer",
        f"L{sequence} N{batch}",
        TorchEncoder(d_model, layers=layers),
        Encoder(d_model, layers=layers, rngs=nnx.Rngs(seed)),
        tokens,
        steps,
        flops + sgd_flops(params),
        device,
    )
