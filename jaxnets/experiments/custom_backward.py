"""Seed 004, custom backward: a regression with binary weights trained through hand-written
gradients.

The tutorial gives two reasons for a custom backward, a non-differentiable function and a
constraint added to the gradient chain; this model needs both. Its weights are binarised,
``sign(W)``, whose true derivative is 0, so ``jaxnets.autograd.sign_ste`` supplies the hard-tanh
straight-through gradient; ``clip_gradient`` bounds the error signal reaching the weights and
``gradient_penalty`` adds an L2 pull on the latent weights, both in the backward pass only. The
model is ``pred = clip_gradient(X @ sign_ste(penalty(W))) * scale``, trained with MSE and
``jaxnets.optim.sgd``.
"""

from __future__ import annotations

import functools
import sys

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnets import autograd, losses, optim, validate
from jaxnets.experiments import _protocol, _script, catalog
from jaxnets.train import Data, fit

DEFAULTS = catalog.get("custom")
D = 8
CLIP, PENALTY = 0.05, 1e-2
Params = dict[str, jax.Array]
optimizer = optim.sgd
batch_plan = functools.partial(_protocol.batch_plan, DEFAULTS)


def init(
    key: jax.Array,
    *,
    batch_size: int = DEFAULTS.batch_size,
    dtype: jnp.dtype = jnp.float32,
    d: int = D,
) -> tuple[Params, Data]:
    """Draw ``(params, Data((X, y)))`` for the binary-weight regression.

    Latent weights ``W ~ U(-1, 1)``, ``scale = 1``, ``X`` standard normal, and targets from a
    binary teacher, ``y = 0.5 * X @ sign(w_true) + 0.1 * noise``.

    Args:
      key: a ``jax.random.key``.
      batch_size: samples ``N``; every step sees all of them.
      dtype: dtype of every array.
      d: features.

    Returns:
      ``params = {"W": (d, 1), "scale": (1,)}`` and the training arrays ``X: (N, d)``,
      ``y: (N, 1)``.

    >>> params, data = init(jax.random.key(0), batch_size=4, d=3)
    >>> X, y = data.train
    >>> {k: v.shape for k, v in params.items()}, X.shape, y.shape
    ({'W': (3, 1), 'scale': (1,)}, (4, 3), (4, 1))
    """
    key_w, key_x, key_teacher, key_noise = jax.random.split(key, 4)
    params = {
        "W": jax.random.uniform(key_w, (d, 1), dtype, minval=-1.0, maxval=1.0),
        "scale": jnp.ones((1,), dtype),
    }
    X = jax.random.normal(key_x, (batch_size, d), dtype)
    teacher = jnp.sign(jax.random.normal(key_teacher, (d, 1), dtype))
    y = 0.5 * (X @ teacher) + 0.1 * jax.random.normal(key_noise, (batch_size, 1), dtype)
    return params, Data((X, y))


def predict(params: Params, X: ArrayLike) -> jax.Array:
    """``clip_gradient(X @ sign_ste(penalty(W))) * scale``: the forward pass uses ``sign(W)`` only.

    Args:
      params: ``{"W": (d, 1), "scale": (1,)}``.
      X: ``(n, d)`` inputs.

    Returns:
      ``(n, 1)`` predictions.

    >>> params = {"W": jnp.asarray([[0.5], [-0.2], [0.1]], jnp.float32),
    ...           "scale": jnp.ones((1,), jnp.float32)}
    >>> predict(params, jnp.ones((2, 3), jnp.float32)).tolist()  # sign(W) = [1, -1, 1]
    [[1.0], [1.0]]
    """
    binary = autograd.sign_ste(autograd.gradient_penalty(params["W"], PENALTY))
    return autograd.clip_gradient(X @ binary, CLIP) * params["scale"][None, :]


def loss_fn(params: Params, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """``nn.MSELoss()(predict(params, X), y)``, with the custom gradients of :func:`predict`.

    Args:
      params: ``{"W": (d, 1), "scale": (1,)}``.
      batch: ``(X, y)`` with ``X: (n, d)`` and ``y: (n, 1)``.

    Returns:
      The scalar loss, shape ``()``.

    >>> params = {"W": jnp.asarray([[0.5], [-0.2], [0.1]], jnp.float32),
    ...           "scale": jnp.ones((1,), jnp.float32)}
    >>> float(loss_fn(params, (jnp.ones((2, 3), jnp.float32), jnp.zeros((2, 1), jnp.float32))))
    1.0
    """
    X, y = batch
    return losses.mse_loss(predict(params, X), y)


def train(
    params: Params,
    X: ArrayLike,
    y: ArrayLike,
    *,
    steps: int = DEFAULTS.steps,
    learning_rate: float = DEFAULTS.learning_rate,
) -> tuple[Params, jax.Array]:
    """Full-batch SGD through the custom backward passes: ``steps`` steps, one jitted scan.

    Args:
      params: ``{"W": (D, 1), "scale": (1,)}``.
      X: ``(N, D)`` inputs.
      y: ``(N, 1)`` targets.
      steps: optimiser steps.
      learning_rate: SGD learning rate.

    Returns:
      ``(final_params, losses)``: params of the input shapes and ``losses: (steps,)``.

    >>> params, data = init(jax.random.key(0), batch_size=4, d=3)
    >>> final, losses = train(params, *data.train, steps=3)
    >>> losses.shape, final["W"].shape
    ((3,), (3, 1))
    """
    if not isinstance(params, dict) or set(params) != {"W", "scale"}:
        raise ValueError(f"params must be a dict with keys ['W', 'scale'], got {params!r:.80}")
    validate.shapes(
        {
            "X": (X, ("N", "D")),
            "W": (params["W"], ("D", 1)),
            "scale": (params["scale"], (1,)),
            "y": (y, ("N", 1)),
        }
    )
    validate.floating({"X": X, "y": y, "W": params["W"], "scale": params["scale"]})
    return fit(loss_fn, optimizer, params, (X, y), steps=steps, learning_rate=learning_rate)


def main(argv: list[str] | None = None) -> None:
    """Command line: train the binary-weight model and print ``step <t>  loss <loss>`` per step,
    then the learned binary weights ``sign(W)`` and ``scale``, and the path of the saved loss
    curve (``--help`` lists the options).
    """
    args, params, data = _script.setup(sys.modules[__name__], argv)
    final, trajectory = train(params, *data.train, steps=args.steps, learning_rate=args.lr)
    for t, loss in enumerate(trajectory.tolist()):
        print(f"step {t}  loss {loss}")
    print(
        "binary weights:", jnp.sign(final["W"]).ravel().tolist(), "scale:", final["scale"].tolist()
    )
    path = _script.save_loss_plot(trajectory, args.plot, "custom backward: MSE", "Step")
    print(f"loss curve saved to {path}")


if __name__ == "__main__":
    _script.run_as_script(main)
