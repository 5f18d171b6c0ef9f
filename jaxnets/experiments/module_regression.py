"""Seed 004, ``nn.Module``: a linear-regression module trained with a ``DataLoader`` and SGD.

The tutorial subclasses ``nn.Module`` (layers in ``__init__``, the computation in ``forward``)
and trains it on shuffled mini-batches. Here the module is a Flax NNX ``Module`` holding a
torch-initialised ``jaxnets.nn.Linear(1, 1)``; training goes through its pure form
(``nnx.split`` into a graph definition and a parameter dict, ``nnx.merge`` inside the loss), and
every epoch's shuffled batches come from ``jaxnets.data`` as one ``lax.scan``.
Data: ``x ~ N(0, 1)``, ``y = 3x + 2 + 0.1 noise``, 100 samples, batches of 10, 20 epochs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jaxnets import losses, nn, optim, validate
from jaxnets.experiments import _script
from jaxnets.train import fit_epochs

N, BATCH_SIZE, EPOCHS = 100, 10, 20
Params = dict[str, dict[str, jax.Array]]


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


def init(key: jax.Array, *, n: int = N, dtype: jnp.dtype = jnp.float32):
    """Draw ``(params, x, y)``: a torch-initialised module and the synthetic data set.

    Args:
      key: a ``jax.random.key``.
      n: samples (default 100).
      dtype: dtype of the parameters and data.

    Returns:
      ``params = {"linear": {"kernel": (1, 1), "bias": (1,)}}``, ``x: (n, 1)`` and
      ``y = 3x + 2 + 0.1 noise: (n, 1)``.

    >>> params, x, y = init(jax.random.key(0), n=6)
    >>> params["linear"]["kernel"].shape, params["linear"]["bias"].shape, x.shape, y.shape
    ((1, 1), (1,), (6, 1), (6, 1))
    """
    key_model, key_x, key_noise = jax.random.split(key, 3)
    model = LinearRegression(dtype=dtype, rngs=nnx.Rngs(params=key_model))
    x = jax.random.normal(key_x, (n, 1), dtype)
    y = 3.0 * x + 2.0 + 0.1 * jax.random.normal(key_noise, (n, 1), dtype)
    return nnx.to_pure_dict(nnx.state(model, nnx.Param)), x, y


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
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    learning_rate: float = 0.05,
    seed: int = 0,
    orders: ArrayLike | None = None,
) -> tuple[Params, jax.Array]:
    """Shuffled mini-batch SGD over whole epochs, as one jitted program.

    Epoch ``e`` visits the samples in ``jaxnets.data.epoch_order(n, seed=seed, epoch=e)``, or in
    ``orders[e]`` when ``orders`` (``[epochs, n]``, e.g. torch's sampler order) is given.

    Args:
      params: ``{"linear": {"kernel": (1, 1), "bias": (1,)}}``.
      x: ``(N, 1)`` inputs.
      y: ``(N, 1)`` targets.
      epochs: passes over the data.
      batch_size: samples per batch (the last batch of an epoch may be smaller).
      learning_rate: SGD learning rate.
      seed: seed of the shuffled orders.
      orders: optional ``(epochs, N)`` sample orders.

    Returns:
      ``(final_params, losses)`` with ``losses: (epochs, ceil(N / batch_size))``.

    >>> params, x, y = init(jax.random.key(0), n=6)
    >>> final, losses = train(params, x, y, epochs=2, batch_size=4)
    >>> losses.shape, final["linear"]["kernel"].shape
    ((2, 2), (1, 1))
    """
    validate.shapes({"x": (x, ("N", 1)), "y": (y, ("N", 1))})
    validate.floating({"x": x, "y": y, "weight": params["linear"]["kernel"]})
    return fit_epochs(
        loss_fn,
        optim.sgd,
        params,
        (x, y),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        orders=orders,
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: train the module on shuffled mini-batches and print each epoch's mean loss.

    It then prints the learned line ``y = w x + b``, saves the loss of every step as a PNG
    (``--plot``, by default ``module_regression_loss.png``) and prints its path. Options are
    ``--epochs``, ``--lr``, ``--batch-size``, ``--seed``, ``--dtype`` and ``--plot``; run
    ``python -m jaxnets.experiments.module_regression --help``. ``argv`` defaults to ``sys.argv``.
    """
    parser = _script.parser(__doc__.splitlines()[0], steps=EPOCHS, steps_name="epochs", lr=0.05)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.set_defaults(plot=_script.Path("module_regression_loss.png"))
    args = parser.parse_args(argv)
    dtype = _script.setup_dtype(args.dtype)
    params, x, y = init(jax.random.key(args.seed), dtype=dtype)
    final, trajectory = train(
        params,
        x,
        y,
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
    main()
