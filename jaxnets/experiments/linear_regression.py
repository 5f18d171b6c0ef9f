"""Seed 002: fit ``y = w * x`` to x=[1,2,3], y=[2,4,6] by per-sample SGD, starting at ``w = 1``.

The tutorial runs 100 epochs; each epoch visits the three samples in order, computes
``(x*w - y)**2``, calls ``backward``, prints ``w.grad``, updates ``w.data -= 0.01 * w.grad`` and
zeroes the gradient. That is 300 updates, here one ``lax.scan`` over the 300 samples.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnets import optim, validate
from jaxnets.experiments import _script
from jaxnets.train import train_loop

X_DATA = (1.0, 2.0, 3.0)
Y_DATA = (2.0, 4.0, 6.0)


def init(dtype: jnp.dtype = jnp.float32) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The tutorial's ``(w, xs, ys)``: the starting weight and the three samples.

    Args:
      dtype: dtype of the three arrays.

    Returns:
      ``w = [1.0]`` of shape ``(1,)``, ``xs = [1, 2, 3]`` and ``ys = [2, 4, 6]`` of shape ``(3,)``.

    >>> w, xs, ys = init(jnp.float32)
    >>> w.tolist(), xs.tolist(), ys.tolist()
    ([1.0], [1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    """
    return (
        jnp.ones((1,), dtype),
        jnp.asarray(X_DATA, dtype),
        jnp.asarray(Y_DATA, dtype),
    )


def forward(w: jax.Array, x: ArrayLike) -> jax.Array:
    """``x * w``.

    Args:
      w: ``(1,)`` weight.
      x: a scalar sample.

    Returns:
      ``(1,)``.

    >>> forward(jnp.ones((1,), jnp.float32), 4.0).tolist()
    [4.0]
    """
    return x * w


def loss_fn(w: jax.Array, sample: tuple[jax.Array, jax.Array]) -> jax.Array:
    """``(x*w - y)**2``; the tutorial's loss has shape ``(1,)``, its one element is returned.

    Args:
      w: ``(1,)`` weight.
      sample: ``(x, y)``, two scalars.

    Returns:
      The scalar loss, shape ``()``.

    >>> w = jnp.ones((1,), jnp.float32)
    >>> float(loss_fn(w, (jnp.asarray(2.0, jnp.float32), jnp.asarray(4.0, jnp.float32))))
    4.0
    """
    x, y = sample
    return jnp.sum(jnp.square(forward(w, x) - y))


@functools.partial(jax.jit, static_argnames=("epochs", "learning_rate", "with_grads"))
def _train(w, xs, ys, *, epochs, learning_rate, with_grads):
    samples = (jnp.tile(xs, epochs), jnp.tile(ys, epochs))
    return train_loop(loss_fn, optim.sgd(learning_rate), w, batches=samples, with_grads=with_grads)


def _checked(w, xs, ys, epochs, learning_rate):
    validate.shapes({"w": (w, (1,)), "xs": (xs, ("S",)), "ys": (ys, ("S",))})
    validate.floating({"w": w, "xs": xs, "ys": ys})
    return (
        jnp.asarray(w),
        jnp.asarray(xs),
        jnp.asarray(ys),
        validate.positive_int(epochs, "epochs"),
        validate.learning_rate(learning_rate),
    )


def train(
    w: ArrayLike,
    xs: ArrayLike,
    ys: ArrayLike,
    *,
    epochs: int = 100,
    learning_rate: float = 0.01,
) -> tuple[jax.Array, jax.Array]:
    """Per-sample SGD over ``epochs`` passes of the samples in order, as one jitted ``lax.scan``.

    ``losses[e*S + i]`` is sample ``i``'s loss in epoch ``e`` before its update; the tutorial's
    ``progress`` line prints ``losses[e*S + S - 1]``.

    Args:
      w: ``(1,)`` starting weight.
      xs: ``(S,)`` inputs.
      ys: ``(S,)`` targets.
      epochs: passes over the samples (tutorial: 100).
      learning_rate: SGD learning rate (tutorial: 0.01).

    Returns:
      ``(final_w, losses)`` with ``final_w: (1,)`` and one loss per update, ``(epochs*S,)``.

    >>> w, xs, ys = init(jnp.float32)
    >>> final_w, losses = train(w, xs, ys, epochs=2)
    >>> final_w.shape, losses.shape, round(float(losses[0]), 4)
    ((1,), (6,), 1.0)
    """
    w, xs, ys, epochs, learning_rate = _checked(w, xs, ys, epochs, learning_rate)
    return _train(w, xs, ys, epochs=epochs, learning_rate=learning_rate, with_grads=False)


def trajectory(
    w: ArrayLike, xs: ArrayLike, ys: ArrayLike, *, epochs: int = 100, learning_rate: float = 0.01
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Like :func:`train` but also returns the gradient of every update.

    Args:
      w: ``(1,)`` starting weight.
      xs: ``(S,)`` inputs.
      ys: ``(S,)`` targets.
      epochs: passes over the samples.
      learning_rate: SGD learning rate.

    Returns:
      ``(final_w, losses, grads)`` with ``final_w: (1,)``, ``losses: (epochs*S,)`` and
      ``grads: (epochs*S, 1)``, the tutorial's printed ``w.grad`` values.

    >>> w, xs, ys = init(jnp.float32)
    >>> _, losses, grads = trajectory(w, xs, ys, epochs=1)
    >>> grads.shape, round(float(grads[0, 0]), 4)  # 2 * x * (x*w - y) at x=1, y=2, w=1
    ((3, 1), -2.0)
    """
    w, xs, ys, epochs, learning_rate = _checked(w, xs, ys, epochs, learning_rate)
    w, (losses, grads) = _train(
        w, xs, ys, epochs=epochs, learning_rate=learning_rate, with_grads=True
    )
    return w, losses, grads


def main(argv: list[str] | None = None) -> None:
    """Command line: the tutorial's printout, ``before, w=`` the prediction at x=4, then per epoch a
    ``grad:`` line per sample and a ``progress`` line, and ``after, w=`` the final prediction.

    The loss of every update is also saved as a PNG (``--plot``, by default
    ``linear_regression_loss.png``) whose path is printed last. Options are ``--epochs``, ``--lr``,
    ``--seed``, ``--dtype`` and ``--plot``; run ``python -m jaxnets.experiments.linear_regression
    --help``. ``argv`` defaults to ``sys.argv``.
    """
    parser = _script.parser(__doc__.splitlines()[0], steps=100, steps_name="epochs", lr=0.01)
    parser.set_defaults(plot=_script.Path("linear_regression_loss.png"))
    args = parser.parse_args(argv)
    dtype = _script.setup_dtype(args.dtype)
    w, xs, ys = init(dtype)
    print("before, w= ", float(forward(w, 4.0)[0]))
    w_final, losses, grads = trajectory(w, xs, ys, epochs=args.epochs, learning_rate=args.lr)
    per_epoch = len(X_DATA)
    for epoch in range(args.epochs):
        for i, (x, y) in enumerate(zip(X_DATA, Y_DATA, strict=True)):
            print("\tgrad:", x, y, float(grads[epoch * per_epoch + i, 0]))
        print("progress", epoch, float(losses[epoch * per_epoch + per_epoch - 1]))
    print("after, w= ", float(forward(w_final, 4.0)[0]))
    path = _script.save_loss_plot(losses, args.plot, "y = w*x: per-sample loss", "Update")
    print(f"loss curve saved to {path}")


if __name__ == "__main__":
    main()
