"""Seed 000: a two-layer ReLU network on random data, trained by hand-written SGD.

The tutorial draws ``X, y, W1, W2 ~ randn``, predicts ``X.mm(W1).clamp(min=0).mm(W2)``, takes the
sum of squared errors, and updates ``W -= 1e-6 * W.grad`` under ``no_grad`` for 500 steps. Here
that update is ``jaxnets.optim.sgd`` and the 500 steps are one ``lax.scan`` under ``jit``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnets import nn, optim, validate
from jaxnets.experiments import _script
from jaxnets.train import train_loop

N, D_IN, H, D_OUT = 64, 1000, 100, 10
Params = dict[str, jax.Array]


def init(
    key: jax.Array,
    *,
    n: int = N,
    d_in: int = D_IN,
    hidden: int = H,
    d_out: int = D_OUT,
    dtype: jnp.dtype = jnp.float32,
) -> tuple[Params, jax.Array, jax.Array]:
    """Draw ``(params, X, y)`` like the tutorial: all standard normal.

    Args:
      key: a ``jax.random.key``.
      n: samples (tutorial: 64).
      d_in: input features (tutorial: 1000).
      hidden: hidden units (tutorial: 100).
      d_out: outputs (tutorial: 10).
      dtype: dtype of every array.

    Returns:
      ``params = {"W1": (d_in, hidden), "W2": (hidden, d_out)}``, ``X: (n, d_in)`` and
      ``y: (n, d_out)``.

    >>> params, X, y = init(jax.random.key(0), n=4, d_in=3, hidden=2, d_out=1)
    >>> {k: v.shape for k, v in params.items()}, X.shape, y.shape
    ({'W1': (3, 2), 'W2': (2, 1)}, (4, 3), (4, 1))
    """
    key_x, key_y, key_w1, key_w2 = jax.random.split(key, 4)
    X = jax.random.normal(key_x, (n, d_in), dtype)
    y = jax.random.normal(key_y, (n, d_out), dtype)
    params = {
        "W1": jax.random.normal(key_w1, (d_in, hidden), dtype),
        "W2": jax.random.normal(key_w2, (hidden, d_out), dtype),
    }
    return params, X, y


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


@functools.partial(jax.jit, static_argnames=("steps", "learning_rate"))
def _train(params, X, y, *, steps, learning_rate):
    return train_loop(loss_fn, optim.sgd(learning_rate), params, batch=(X, y), steps=steps)


def check_inputs(params: Params, X: ArrayLike, y: ArrayLike) -> None:
    """Raise a clear error for wrong keys, shapes or dtypes, before anything is compiled.

    Args:
      params: must be ``{"W1": (D_in, H), "W2": (H, D_out)}``.
      X: ``(N, D_in)`` floating inputs.
      y: ``(N, D_out)`` floating targets, the dtype of ``X`` and ``params``.

    Returns:
      ``None``; raises ``ValueError`` (keys, shapes) or ``TypeError`` (dtypes).

    >>> params, X, y = init(jax.random.key(0), n=4, d_in=3, hidden=2, d_out=1)
    >>> check_inputs(params, X, y)
    >>> try:
    ...     check_inputs({"W1": params["W1"]}, X, y)
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
    steps: int = 500,
    learning_rate: float = 1e-6,
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

    >>> params, X, y = init(jax.random.key(0), n=4, d_in=3, hidden=2, d_out=1)
    >>> final, losses = train(params, X, y, steps=5, learning_rate=1e-3)
    >>> losses.shape, final["W1"].shape, bool(losses[-1] < losses[0])
    ((5,), (3, 2), True)
    """
    check_inputs(params, X, y)
    steps = validate.positive_int(steps, "steps")
    learning_rate = validate.learning_rate(learning_rate)
    return _train(params, jnp.asarray(X), jnp.asarray(y), steps=steps, learning_rate=learning_rate)


def main(argv: list[str] | None = None) -> None:
    """Command line: train the tutorial's MLP and print ``Epoch:<t>   Loss:<loss>`` for every step.

    Options are ``--steps``, ``--lr``, ``--seed``, ``--dtype`` and ``--plot`` (the loss curve,
    saved as a PNG, by default ``mlp_loss.png``, whose path is printed last). Run
    ``python -m jaxnets.experiments.mlp --help`` for the list; ``argv`` defaults to ``sys.argv``.
    """
    parser = _script.parser(__doc__.splitlines()[0], steps=500, lr=1e-6)
    parser.set_defaults(plot=_script.Path("mlp_loss.png"))
    args = parser.parse_args(argv)
    dtype = _script.setup_dtype(args.dtype)
    params, X, y = init(jax.random.key(args.seed), dtype=dtype)
    _, losses = train(params, X, y, steps=args.steps, learning_rate=args.lr)
    for t, loss in enumerate(losses.tolist()):
        print(f"Epoch:{t}   Loss:{loss}")
    path = _script.save_loss_plot(losses, args.plot, "MLP: sum of squared errors", "Epoch")
    print(f"loss curve saved to {path}")


if __name__ == "__main__":
    main()
