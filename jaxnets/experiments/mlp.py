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

    Returns ``params = {"W1": (d_in, hidden), "W2": (hidden, d_out)}``, ``X: (n, d_in)`` and
    ``y: (n, d_out)``.
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
    """``X.mm(W1).clamp(min=0).mm(W2)``: ``(n, d_in) -> (n, d_out)``."""
    return nn.clamp_min(X @ params["W1"], 0.0) @ params["W2"]


def loss_fn(params: Params, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """``(y_hat - y).pow(2).sum()``: the sum, not the mean, exactly as the tutorial."""
    X, y = batch
    return jnp.sum(jnp.square(predict(params, X) - y))


@functools.partial(jax.jit, static_argnames=("steps", "learning_rate"))
def _train(params, X, y, *, steps, learning_rate):
    return train_loop(loss_fn, optim.sgd(learning_rate), params, batch=(X, y), steps=steps)


def check_inputs(params: Params, X: ArrayLike, y: ArrayLike) -> None:
    """Raise a clear error for wrong keys, shapes or dtypes, before anything is compiled."""
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
    """Run the tutorial's training loop; returns ``(final_params, losses)``, ``losses: (steps,)``.

    ``losses[t]`` is the loss before update ``t``, the value the tutorial prints at epoch ``t``.
    """
    check_inputs(params, X, y)
    steps = validate.positive_int(steps, "steps")
    learning_rate = validate.learning_rate(learning_rate)
    return _train(params, jnp.asarray(X), jnp.asarray(y), steps=steps, learning_rate=learning_rate)


def main(argv: list[str] | None = None) -> None:
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
