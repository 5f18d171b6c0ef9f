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

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnets import autograd, losses, optim, validate
from jaxnets.experiments import _script
from jaxnets.train import train_loop

N, D = 32, 8
CLIP, PENALTY = 0.05, 1e-2
Params = dict[str, jax.Array]


def init(key: jax.Array, *, n: int = N, d: int = D, dtype: jnp.dtype = jnp.float32):
    """Draw ``(params, X, y)`` for the binary-weight regression.

    Latent weights ``W ~ U(-1, 1)``, ``scale = 1``, ``X`` standard normal, and targets from a
    binary teacher, ``y = 0.5 * X @ sign(w_true) + 0.1 * noise``.

    Args:
      key: a ``jax.random.key``.
      n: samples.
      d: features.
      dtype: dtype of every array.

    Returns:
      ``params = {"W": (d, 1), "scale": (1,)}``, ``X: (n, d)`` and ``y: (n, 1)``.

    >>> params, X, y = init(jax.random.key(0), n=4, d=3)
    >>> {k: v.shape for k, v in params.items()}, X.shape, y.shape
    ({'W': (3, 1), 'scale': (1,)}, (4, 3), (4, 1))
    """
    key_w, key_x, key_teacher, key_noise = jax.random.split(key, 4)
    params = {
        "W": jax.random.uniform(key_w, (d, 1), dtype, minval=-1.0, maxval=1.0),
        "scale": jnp.ones((1,), dtype),
    }
    X = jax.random.normal(key_x, (n, d), dtype)
    teacher = jnp.sign(jax.random.normal(key_teacher, (d, 1), dtype))
    y = 0.5 * (X @ teacher) + 0.1 * jax.random.normal(key_noise, (n, 1), dtype)
    return params, X, y


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


@functools.partial(jax.jit, static_argnames=("steps", "learning_rate"))
def _train(params, X, y, *, steps, learning_rate):
    return train_loop(loss_fn, optim.sgd(learning_rate), params, batch=(X, y), steps=steps)


def train(
    params: Params, X: ArrayLike, y: ArrayLike, *, steps: int = 100, learning_rate: float = 0.05
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

    >>> params, X, y = init(jax.random.key(0), n=4, d=3)
    >>> final, losses = train(params, X, y, steps=3)
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
    steps = validate.positive_int(steps, "steps")
    learning_rate = validate.learning_rate(learning_rate)
    return _train(params, jnp.asarray(X), jnp.asarray(y), steps=steps, learning_rate=learning_rate)


def main(argv: list[str] | None = None) -> None:
    """Command line: train the binary-weight model and print ``step <t>  loss <loss>`` per step.

    It then prints the learned binary weights ``sign(W)`` and ``scale``, saves the loss curve as a
    PNG (``--plot``, by default ``custom_backward_loss.png``) and prints its path. Options are
    ``--steps``, ``--lr``, ``--seed``, ``--dtype`` and ``--plot``; run
    ``python -m jaxnets.experiments.custom_backward --help``. ``argv`` defaults to ``sys.argv``.
    """
    parser = _script.parser(__doc__.splitlines()[0], steps=100, lr=0.05)
    parser.set_defaults(plot=_script.Path("custom_backward_loss.png"))
    args = parser.parse_args(argv)
    dtype = _script.setup_dtype(args.dtype)
    params, X, y = init(jax.random.key(args.seed), dtype=dtype)
    final, trajectory = train(params, X, y, steps=args.steps, learning_rate=args.lr)
    for t, loss in enumerate(trajectory.tolist()):
        print(f"step {t}  loss {loss}")
    print(
        "binary weights:", jnp.sign(final["W"]).ravel().tolist(), "scale:", final["scale"].tolist()
    )
    path = _script.save_loss_plot(trajectory, args.plot, "custom backward: MSE", "Step")
    print(f"loss curve saved to {path}")


if __name__ == "__main__":
    main()
