"""Seed 002: fit ``y = w * x`` to x=[1,2,3], y=[2,4,6] by per-sample SGD, starting at ``w = 1``.

The tutorial runs 100 epochs; each epoch visits the three samples in order, computes
``(x*w - y)**2``, calls ``backward``, prints ``w.grad``, updates ``w.data -= 0.01 * w.grad`` and
zeroes the gradient. That is 300 updates, here one ``lax.scan`` whose batch plan visits the
three samples in order, one per step (``Plan(batch_size=1)``, no shuffle).
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jaxnets import optim, validate
from jaxnets.data import Plan
from jaxnets.experiments import _script, catalog
from jaxnets.train import Data, fit

DEFAULTS = catalog.get("linear")
X_DATA = (1.0, 2.0, 3.0)
Y_DATA = (2.0, 4.0, 6.0)
optimizer = optim.sgd
# The parameters are one bare array; this is the tutorial's name for it, the key under which
# `jaxnets train` writes it to state_dict.npz.
TORCH_NAME = "w"


def init(
    key: jax.Array | None = None, *, batch_size: None = None, dtype: jnp.dtype = jnp.float32
) -> tuple[jax.Array, Data]:
    """The tutorial's ``w`` and ``Data((xs, ys))``: the starting weight and the three samples.

    Args:
      key: unused: the tutorial draws nothing.
      batch_size: must be ``None``: the tutorial updates per sample.
      dtype: dtype of the three arrays.

    Returns:
      ``w = [1.0]`` of shape ``(1,)`` and the training arrays ``xs = [1, 2, 3]``,
      ``ys = [2, 4, 6]`` of shape ``(3,)``.

    >>> w, data = init(dtype=jnp.float32)
    >>> xs, ys = data.train
    >>> w.tolist(), xs.tolist(), ys.tolist()
    ([1.0], [1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    """
    del key
    batch_plan(batch_size)
    return jnp.ones((1,), dtype), Data((jnp.asarray(X_DATA, dtype), jnp.asarray(Y_DATA, dtype)))


def batch_plan(batch_size: None = None, *, drop_last: bool = False) -> Plan:
    """The samples in order, one per step: ``Plan(batch_size=1)``.

    Raises:
      ValueError: for any ``batch_size`` or ``drop_last``: the tutorial's are fixed.

    >>> batch_plan()
    Plan(batch_size=1, shuffle=False, drop_last=False)
    """
    if batch_size is not None or drop_last:
        raise ValueError("linear updates per sample in order: it takes no batch size or drop_last")
    return Plan(1)


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
      sample: ``(x, y)``, a batch of one sample (shape ``(1,)`` each) or two scalars.

    Returns:
      The scalar loss, shape ``()``.

    >>> w = jnp.ones((1,), jnp.float32)
    >>> float(loss_fn(w, (jnp.asarray(2.0, jnp.float32), jnp.asarray(4.0, jnp.float32))))
    4.0
    """
    x, y = sample
    return jnp.sum(jnp.square(forward(w, x) - y))


def _fit(w, xs, ys, epochs, learning_rate, with_grads):
    samples = validate.shapes({"w": (w, (1,)), "xs": (xs, ("S",)), "ys": (ys, ("S",))})["S"]
    validate.floating({"w": w, "xs": xs, "ys": ys})
    steps = validate.positive_int(epochs, "epochs") * samples
    return fit(
        loss_fn,
        optimizer,
        w,
        (xs, ys),
        steps=steps,
        learning_rate=learning_rate,
        plan=batch_plan(),
        with_grads=with_grads,
    )


def train(
    w: ArrayLike,
    xs: ArrayLike,
    ys: ArrayLike,
    *,
    epochs: int = DEFAULTS.epochs,
    learning_rate: float = DEFAULTS.learning_rate,
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

    >>> w, data = init()
    >>> final_w, losses = train(w, *data.train, epochs=2)
    >>> final_w.shape, losses.shape, round(float(losses[0]), 4)
    ((1,), (6,), 1.0)
    """
    return _fit(w, xs, ys, epochs, learning_rate, with_grads=False)


def trajectory(
    w: ArrayLike,
    xs: ArrayLike,
    ys: ArrayLike,
    *,
    epochs: int = DEFAULTS.epochs,
    learning_rate: float = DEFAULTS.learning_rate,
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

    >>> w, data = init()
    >>> _, losses, grads = trajectory(w, *data.train, epochs=1)
    >>> grads.shape, round(float(grads[0, 0]), 4)  # 2 * x * (x*w - y) at x=1, y=2, w=1
    ((3, 1), -2.0)
    """
    w, (losses, grads) = _fit(w, xs, ys, epochs, learning_rate, with_grads=True)
    return w, losses, grads


def main(argv: list[str] | None = None) -> None:
    """Command line: the tutorial's printout, ``before, w=`` the prediction at x=4, then per epoch a
    ``grad:`` line per sample and a ``progress`` line, and ``after, w=`` the final prediction.

    The loss of every update is also saved as a PNG whose path is printed last (``--help`` lists
    the options).
    """
    args, w, data = _script.setup(sys.modules[__name__], argv)
    xs, ys = data.train
    run = trajectory(w, xs, ys, epochs=args.epochs, learning_rate=args.lr)
    # Printed from host copies: indexing device arrays would compile a program per indexing op.
    w, (w_final, losses, grads) = jax.device_get((w, run))
    print("before, w= ", float(forward(w, 4.0)[0]))
    per_epoch = len(X_DATA)
    for epoch in range(args.epochs):
        for i, (x, y) in enumerate(zip(X_DATA, Y_DATA, strict=True)):
            print("\tgrad:", x, y, float(grads[epoch * per_epoch + i, 0]))
        print("progress", epoch, float(losses[epoch * per_epoch + per_epoch - 1]))
    print("after, w= ", float(forward(w_final, 4.0)[0]))
    path = _script.save_loss_plot(losses, args.plot, "y = w*x: per-sample loss", "Update")
    print(f"loss curve saved to {path}")


if __name__ == "__main__":
    _script.run_as_script(main)
