"""Seed 004, ``nn.Module``: a linear-regression module trained with a ``DataLoader`` and SGD.

The tutorial subclasses ``nn.Module`` (layers in ``__init__``, the computation in ``forward``)
and trains it on shuffled mini-batches. Here the module is a Flax NNX ``Module`` holding a
torch-initialised ``jaxnets.nn.Linear(1, 1)``; training goes through its pure form
(``nnx.split`` into a graph definition and a parameter dict, ``nnx.merge`` inside the loss), and
every epoch's shuffled batches come from ``jaxnets.data`` as one ``lax.scan``.
Data: ``x ~ N(0, 1)``, ``y = 3x + 2 + 0.1 noise``, 100 samples, batches of 10, 20 epochs.
"""

from __future__ import annotations

import functools
import sys

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jaxnets import losses, nn, optim, validate
from jaxnets.experiments import _protocol, _script, catalog
from jaxnets.train import Data

DEFAULTS = catalog.get("module_regression")
N = 100
Params = dict[str, dict[str, jax.Array]]
optimizer = optim.sgd
batch_plan = functools.partial(_protocol.batch_plan, DEFAULTS)


class LinearRegression(nnx.Module):
    """``nn.Module`` subclass of the tutorial: one ``Linear(1, 1)``, ``forward = linear(x)``.

    Maps ``(B, 1)`` inputs to ``(B, 1)`` outputs.

    Args:
      dtype: parameter dtype.
      rngs: NNX random streams (``params`` is used).

    >>> model = LinearRegression(rngs=nnx.Rngs(0))
    >>> model(jnp.ones((4, 1), jnp.float32)).shape
    (4, 1)
    """

    def __init__(self, *, dtype: jnp.dtype = jnp.float32, rngs: nnx.Rngs):
        self.linear = nn.Linear(1, 1, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.linear(x)


# The NNX module ``params`` belong to: torch weights load into it by layer type, and it
# writes trained parameters as a torch ``state_dict``.
MODEL = LinearRegression


def apply(params: Params, x: ArrayLike) -> jax.Array:
    """The module's pure form: ``LinearRegression`` with ``params`` merged in, on ``x``.

    Args:
      params: ``{"linear": {"kernel": (1, 1), "bias": (1,)}}``.
      x: ``(B, 1)`` inputs.

    Returns:
      ``(B, 1)`` predictions.

    >>> params = {"linear": {"kernel": jnp.full((1, 1), 3.0, jnp.float32),
    ...                      "bias": jnp.full((1,), 2.0, jnp.float32)}}
    >>> apply(params, jnp.asarray([[0.0], [1.0]], jnp.float32)).tolist()
    [[2.0], [5.0]]
    """
    return nn.apply_pure(LinearRegression, params, x)


def init(
    key: jax.Array,
    *,
    batch_size: int = DEFAULTS.batch_size,
    dtype: jnp.dtype = jnp.float32,
    n: int = N,
) -> tuple[Params, Data]:
    """Draw ``(params, Data((x, y)))``: a torch-initialised module and the synthetic data set.

    Args:
      key: a ``jax.random.key``.
      batch_size: the loader's batch size; the data set does not depend on it.
      dtype: dtype of the parameters and data.
      n: samples (default 100).

    Returns:
      ``params = {"linear": {"kernel": (1, 1), "bias": (1,)}}`` and the training arrays
      ``x: (n, 1)``, ``y = 3x + 2 + 0.1 noise: (n, 1)``.

    >>> params, data = init(jax.random.key(0), n=6)
    >>> x, y = data.train
    >>> params["linear"]["kernel"].shape, params["linear"]["bias"].shape, x.shape, y.shape
    ((1, 1), (1,), (6, 1), (6, 1))
    """
    batch_plan(batch_size)
    key_model, key_x, key_noise = jax.random.split(key, 3)
    model = LinearRegression(dtype=dtype, rngs=nnx.Rngs(params=key_model))
    x = jax.random.normal(key_x, (n, 1), dtype)
    y = 3.0 * x + 2.0 + 0.1 * jax.random.normal(key_noise, (n, 1), dtype)
    return nnx.to_pure_dict(nnx.state(model, nnx.Param)), Data((x, y))


def loss_fn(params: Params, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """``nn.MSELoss()(model(x), y)``.

    Args:
      params: ``{"linear": {"kernel": (1, 1), "bias": (1,)}}``.
      batch: ``(x, y)``, both ``(B, 1)``.

    Returns:
      The scalar loss, shape ``()``.

    >>> params = {"linear": {"kernel": jnp.ones((1, 1), jnp.float32),
    ...                      "bias": jnp.zeros((1,), jnp.float32)}}
    >>> x = jnp.ones((3, 1), jnp.float32)
    >>> float(loss_fn(params, (x, 3.0 * x)))
    4.0
    """
    x, y = batch
    return losses.mse_loss(apply(params, x), y)


def train(
    params: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    epochs: int = DEFAULTS.epochs,
    batch_size: int = DEFAULTS.batch_size,
    learning_rate: float = DEFAULTS.learning_rate,
    seed: int = 0,
    orders: ArrayLike | None = None,
) -> tuple[Params, jax.Array]:
    """Shuffled mini-batch SGD over whole epochs, as one jitted program.

    The orders are :func:`jaxnets.experiments._protocol.train_epochs`'s: those of
    ``jaxnets train module_regression --seed``, or ``orders[e]`` (e.g. torch's sampler order).

    Args:
      params: ``{"linear": {"kernel": (1, 1), "bias": (1,)}}``.
      x: ``(N, 1)`` inputs.
      y: ``(N, 1)`` targets.
      epochs: passes over the data.
      batch_size: samples per batch (the last batch of an epoch may be smaller).
      learning_rate: SGD learning rate.
      seed: the run's seed (its data key orders the batches).
      orders: optional ``(epochs, N)`` sample orders.

    Returns:
      ``(final_params, losses)`` with ``losses: (epochs, ceil(N / batch_size))``.

    >>> params, data = init(jax.random.key(0), n=6)
    >>> final, losses = train(params, *data.train, epochs=2, batch_size=4)
    >>> losses.shape, final["linear"]["kernel"].shape
    ((2, 2), (1, 1))
    """
    validate.shapes({"x": (x, ("N", 1)), "y": (y, ("N", 1))})
    validate.floating({"x": x, "y": y, "weight": params["linear"]["kernel"]})
    return _protocol.train_epochs(
        sys.modules[__name__],
        params,
        (x, y),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        orders=orders,
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: train the module on shuffled mini-batches and print each epoch's mean loss,
    then the learned line ``y = w x + b`` and the path of the saved loss curve (``--help`` lists
    the options).
    """
    args, params, data = _script.setup(sys.modules[__name__], argv)
    final, trajectory = train(
        params,
        *data.train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
    )
    for epoch, epoch_losses in enumerate(trajectory.tolist()):
        print(f"epoch {epoch}  mean loss {sum(epoch_losses) / len(epoch_losses):.6f}")
    weight, bias = final["linear"]["kernel"].item(), final["linear"]["bias"].item()
    print(f"learned y = {weight:.4f} x + {bias:.4f}  (data: y = 3x + 2 + noise)")
    path = _script.save_loss_plot(trajectory.ravel(), args.plot, "nn.Module regression", "Step")
    print(f"loss curve saved to {path}")


if __name__ == "__main__":
    _script.run_as_script(main)
