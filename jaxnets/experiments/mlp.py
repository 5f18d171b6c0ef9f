"""Seed 000: a two-layer ReLU network on random data, trained by hand-written SGD.

The tutorial draws ``X, y, W1, W2 ~ randn``, predicts ``X.mm(W1).clamp(min=0).mm(W2)``, takes the
sum of squared errors, and updates ``W -= 1e-6 * W.grad`` under ``no_grad`` for 500 steps. Here
that update is ``jaxnets.optim.sgd`` and the 500 steps are one ``lax.scan`` under ``jit``.
"""

from __future__ import annotations

import functools
import sys

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnets import nn, optim, validate
from jaxnets.experiments import _protocol, _script, catalog
from jaxnets.train import Data, fit

DEFAULTS = catalog.get("mlp")
D_IN, H, D_OUT = 1000, 100, 10
Params = dict[str, jax.Array]
optimizer = optim.sgd
batch_plan = functools.partial(_protocol.batch_plan, DEFAULTS)


def init(
    key: jax.Array,
    *,
    batch_size: int = DEFAULTS.batch_size,
    dtype: jnp.dtype = jnp.float32,
    d_in: int = D_IN,
    hidden: int = H,
    d_out: int = D_OUT,
) -> tuple[Params, Data]:
    """Draw ``(params, Data((X, y)))`` like the tutorial: all standard normal.

    Args:
      key: a ``jax.random.key``.
      batch_size: samples ``N`` (tutorial: 64); every step sees all of them.
      dtype: dtype of every array.
      d_in: input features (tutorial: 1000).
      hidden: hidden units (tutorial: 100).
      d_out: outputs (tutorial: 10).

    Returns:
      ``params = {"W1": (d_in, hidden), "W2": (hidden, d_out)}`` and the training arrays
      ``X: (N, d_in)``, ``y: (N, d_out)``.

    >>> params, data = init(jax.random.key(0), batch_size=4, d_in=3, hidden=2, d_out=1)
    >>> X, y = data.train
    >>> {k: v.shape for k, v in params.items()}, X.shape, y.shape
    ({'W1': (3, 2), 'W2': (2, 1)}, (4, 3), (4, 1))
    """
    key_x, key_y, key_w1, key_w2 = jax.random.split(key, 4)
    X = jax.random.normal(key_x, (batch_size, d_in), dtype)
    y = jax.random.normal(key_y, (batch_size, d_out), dtype)
    params = {
        "W1": jax.random.normal(key_w1, (d_in, hidden), dtype),
        "W2": jax.random.normal(key_w2, (hidden, d_out), dtype),
    }
    return params, Data((X, y))


def predict(params: Params, X: ArrayLike) -> jax.Array:
    """``X.mm(W1).clamp(min=0).mm(W2)``.

    Args:
      params: ``{"W1": (d_in, hidden), "W2": (hidden, d_out)}``.
      X: ``(n, d_in)`` inputs.

    Returns:
      ``(n, d_out)`` predictions.

    >>> params = {"W1": jnp.ones((3, 2), jnp.float32), "W2": jnp.ones((2, 1), jnp.float32)}
    >>> predict(params, jnp.asarray([[1.0, 2.0, -4.0]], jnp.float32)).tolist()
    [[0.0]]
    >>> predict(params, jnp.ones((4, 3), jnp.float32)).shape
    (4, 1)
    """
    return nn.clamp_min(X @ params["W1"], 0.0) @ params["W2"]


def loss_fn(params: Params, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """``(y_hat - y).pow(2).sum()``: the sum, not the mean, exactly as the tutorial.

    Args:
      params: ``{"W1": (d_in, hidden), "W2": (hidden, d_out)}``.
      batch: ``(X, y)`` with ``X: (n, d_in)`` and ``y: (n, d_out)``.

    Returns:
      The scalar loss, shape ``()``.

    >>> params = {"W1": jnp.ones((3, 2), jnp.float32), "W2": jnp.ones((2, 1), jnp.float32)}
    >>> X, y = jnp.ones((4, 3), jnp.float32), jnp.zeros((4, 1), jnp.float32)
    >>> float(loss_fn(params, (X, y)))  # each prediction is 6
    144.0
    """
    X, y = batch
    return jnp.sum(jnp.square(predict(params, X) - y))


def check_inputs(params: Params, X: ArrayLike, y: ArrayLike) -> None:
    """Raise a clear error for wrong keys, shapes or dtypes, before anything is compiled.

    Args:
      params: must be ``{"W1": (D_in, H), "W2": (H, D_out)}``.
      X: ``(N, D_in)`` floating inputs.
      y: ``(N, D_out)`` floating targets, the dtype of ``X`` and ``params``.

    Returns:
      ``None``; raises ``ValueError`` (keys, shapes) or ``TypeError`` (dtypes).

    >>> params, data = init(jax.random.key(0), batch_size=4, d_in=3, hidden=2, d_out=1)
    >>> check_inputs(params, *data.train)
    >>> try:
    ...     check_inputs({"W1": params["W1"]}, *data.train)
    ... except ValueError as err:
    ...     print(err)
    params must be a dict with keys ['W1', 'W2'], got ['W1']
    """
    if not isinstance(params, dict) or set(params) != {"W1", "W2"}:
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"params must be a dict with keys ['W1', 'W2'], got {got}")
    validate.shapes(
        {
            "X": (X, ("N", "D_in")),
            "params['W1']": (params["W1"], ("D_in", "H")),
            "params['W2']": (params["W2"], ("H", "D_out")),
            "y": (y, ("N", "D_out")),
        }
    )
    validate.floating({"X": X, "y": y, "params['W1']": params["W1"], "params['W2']": params["W2"]})


def train(
    params: Params,
    X: ArrayLike,
    y: ArrayLike,
    *,
    steps: int = DEFAULTS.steps,
    learning_rate: float = DEFAULTS.learning_rate,
) -> tuple[Params, jax.Array]:
    """Run the tutorial's training loop: ``steps`` full-batch SGD steps as one jitted ``lax.scan``.

    ``losses[t]`` is the loss before update ``t``, the value the tutorial prints at epoch ``t``.

    Args:
      params: ``{"W1": (d_in, hidden), "W2": (hidden, d_out)}``.
      X: ``(n, d_in)`` inputs.
      y: ``(n, d_out)`` targets.
      steps: optimiser steps (tutorial: 500).
      learning_rate: SGD learning rate (tutorial: 1e-6).

    Returns:
      ``(final_params, losses)``: params of the input shapes and ``losses: (steps,)``.

    >>> params, data = init(jax.random.key(0), batch_size=4, d_in=3, hidden=2, d_out=1)
    >>> final, losses = train(params, *data.train, steps=5, learning_rate=1e-3)
    >>> losses.shape, final["W1"].shape, bool(losses[-1] < losses[0])
    ((5,), (3, 2), True)
    """
    check_inputs(params, X, y)
    return fit(loss_fn, optimizer, params, (X, y), steps=steps, learning_rate=learning_rate)


def main(argv: list[str] | None = None) -> None:
    """Command line: train the tutorial's MLP and print ``Epoch:<t>   Loss:<loss>`` for every step,
    then save the loss curve as a PNG and print its path (``--help`` lists the options).
    """
    args, params, data = _script.setup(sys.modules[__name__], argv)
    _, losses = train(params, *data.train, steps=args.steps, learning_rate=args.lr)
    for t, loss in enumerate(losses.tolist()):
        print(f"Epoch:{t}   Loss:{loss}")
    path = _script.save_loss_plot(losses, args.plot, "MLP: sum of squared errors", "Epoch")
    print(f"loss curve saved to {path}")


if __name__ == "__main__":
    _script.run_as_script(main)
