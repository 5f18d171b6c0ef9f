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

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jaxnets import data, losses, nn, optim, validate
from jaxnets.experiments import _script
from jaxnets.train import epoch_loop

N, BATCH_SIZE, EPOCHS = 100, 10, 20
Params = dict[str, dict[str, jax.Array]]


class LinearRegression(nnx.Module):
    """``nn.Module`` subclass of the tutorial: one ``Linear(1, 1)``, ``forward = linear(x)``."""

    def __init__(self, *, dtype: jnp.dtype = jnp.float32, rngs: nnx.Rngs):
        self.linear = nn.Linear(1, 1, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.linear(x)


@functools.cache
def _graphdef() -> nnx.GraphDef:
    return nnx.graphdef(nnx.eval_shape(lambda: LinearRegression(rngs=nnx.Rngs(0))))


def apply(params: Params, x: ArrayLike) -> jax.Array:
    """The module's pure form: ``LinearRegression`` with ``params`` on ``x: (B, 1)``."""
    return nnx.merge(_graphdef(), params)(x)


def init(key: jax.Array, *, n: int = N, dtype: jnp.dtype = jnp.float32):
    """``(params, x, y)``: a torch-initialised module and the synthetic data set."""
    key_model, key_x, key_noise = jax.random.split(key, 3)
    model = LinearRegression(dtype=dtype, rngs=nnx.Rngs(params=key_model))
    x = jax.random.normal(key_x, (n, 1), dtype)
    y = 3.0 * x + 2.0 + 0.1 * jax.random.normal(key_noise, (n, 1), dtype)
    return nnx.to_pure_dict(nnx.state(model, nnx.Param)), x, y


def loss_fn(params: Params, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """``nn.MSELoss()(model(x), y)``."""
    x, y = batch
    return losses.mse_loss(apply(params, x), y)


@functools.partial(jax.jit, static_argnames=("batch_size", "learning_rate"))
def _train(params, x, y, orders, *, batch_size, learning_rate):
    return epoch_loop(loss_fn, optim.sgd(learning_rate), params, (x, y), orders, batch_size)


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
    """Shuffled mini-batch SGD; returns ``(final_params, losses)``, ``losses: (epochs, steps)``.

    Epoch ``e`` visits the samples in ``jaxnets.data.epoch_order(n, seed=seed, epoch=e)``, or in
    ``orders[e]`` when ``orders`` (``[epochs, n]``, e.g. torch's sampler order) is given.
    """
    validate.shapes({"x": (x, ("N", 1)), "y": (y, ("N", 1))})
    validate.floating({"x": x, "y": y, "weight": params["linear"]["kernel"]})
    epochs = validate.positive_int(epochs, "epochs")
    batch_size = validate.positive_int(batch_size, "batch_size")
    learning_rate = validate.learning_rate(learning_rate)
    orders = data.epoch_orders(jnp.shape(x)[0], epochs, seed=seed, orders=orders)
    return _train(
        params,
        jnp.asarray(x),
        jnp.asarray(y),
        jnp.asarray(orders),
        batch_size=batch_size,
        learning_rate=learning_rate,
    )


def main(argv: list[str] | None = None) -> None:
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
