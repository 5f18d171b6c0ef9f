"""Real data: scikit-learn's bundled 8x8 handwritten digits (no download), a two-layer
classifier trained with ``cross_entropy``, ``adam`` and shuffled mini-batches.

1797 images scaled to [0, 1] as 64 features; 360 held out at random, 1437 for training in
batches of 32 (the last batch of each epoch holds 29, as torch's ``DataLoader`` yields it);
``Linear(64, 128) -> relu -> Linear(128, 10)``, Adam at 1e-3 for 10 epochs.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike

from jaxnets import data, losses, nn, optim, validate
from jaxnets.experiments import _script
from jaxnets.train import epoch_loop

N_TEST, BATCH_SIZE, EPOCHS, HIDDEN, CLASSES = 360, 32, 10, 128, 10
Params = dict[str, dict[str, jax.Array]]


def load(dtype: np.dtype = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)``: ``(1797, 64)`` pixels scaled to [0, 1] and ``(1797,)`` int labels."""
    from sklearn.datasets import load_digits  # a dependency of this experiment only

    digits = load_digits()
    return (digits.data / 16.0).astype(dtype), digits.target.astype(np.int64)


class Classifier(nnx.Module):
    """``Linear(64, 128) -> relu -> Linear(128, 10)`` with torch's initialisers."""

    def __init__(self, *, dtype: jnp.dtype = jnp.float32, rngs: nnx.Rngs):
        self.fc1 = nn.Linear(64, HIDDEN, dtype=dtype, rngs=rngs)
        self.fc2 = nn.Linear(HIDDEN, CLASSES, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.fc2(jax.nn.relu(self.fc1(x)))


@functools.cache
def _graphdef() -> nnx.GraphDef:
    return nnx.graphdef(nnx.eval_shape(lambda: Classifier(rngs=nnx.Rngs(0))))


def apply(params: Params, x: ArrayLike) -> jax.Array:
    """Logits ``(B, 10)`` for images ``(B, 64)``."""
    return nnx.merge(_graphdef(), params)(x)


def loss_fn(params: Params, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """``F.cross_entropy(model(x), labels)``."""
    x, labels = batch
    return losses.cross_entropy(apply(params, x), labels)


def accuracy(params: Params, x: ArrayLike, labels: ArrayLike) -> float:
    """Fraction of ``labels`` predicted by the arg-max logit."""
    return float(jnp.mean(jnp.argmax(apply(params, x), axis=-1) == jnp.asarray(labels)))


def init(key: jax.Array, *, dtype: jnp.dtype = jnp.float32):
    """``(params, (x_train, y_train), (x_test, y_test))`` with a random held-out split."""
    key_model, key_split = jax.random.split(key)
    images, labels = load(np.dtype(dtype))
    order = np.asarray(jax.random.permutation(key_split, len(images)))
    test, training = order[:N_TEST], order[N_TEST:]
    model = Classifier(dtype=dtype, rngs=nnx.Rngs(params=key_model))
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    return params, (images[training], labels[training]), (images[test], labels[test])


@functools.partial(jax.jit, static_argnames=("batch_size", "learning_rate"))
def _train(params, x, labels, orders, *, batch_size, learning_rate):
    return epoch_loop(loss_fn, optim.adam(learning_rate), params, (x, labels), orders, batch_size)


def train(
    params: Params,
    x: ArrayLike,
    labels: ArrayLike,
    *,
    epochs: int = EPOCHS,
    batch_size: int = BATCH_SIZE,
    learning_rate: float = 1e-3,
    seed: int = 0,
    orders: ArrayLike | None = None,
) -> tuple[Params, jax.Array]:
    """Adam over shuffled mini-batches; returns ``(final_params, losses (epochs, steps))``.

    Epoch ``e`` visits the samples in ``jaxnets.data.epoch_order(n, seed=seed, epoch=e)``, or in
    ``orders[e]`` when given (``[epochs, n]``, e.g. torch's sampler order).
    """
    validate.shapes({"x": (x, ("N", 64)), "labels": (labels, ("N",))})
    validate.floating({"x": x, "weight": params["fc1"]["kernel"]})
    if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
        raise TypeError(f"labels must be integer class indices, got {jnp.result_type(labels)}")
    epochs = validate.positive_int(epochs, "epochs")
    batch_size = validate.positive_int(batch_size, "batch_size")
    learning_rate = validate.learning_rate(learning_rate)
    orders = data.epoch_orders(jnp.shape(x)[0], epochs, seed=seed, orders=orders)
    return _train(
        params,
        jnp.asarray(x),
        jnp.asarray(labels),
        jnp.asarray(orders),
        batch_size=batch_size,
        learning_rate=learning_rate,
    )


def main(argv: list[str] | None = None) -> None:
    parser = _script.parser(__doc__.splitlines()[0], steps=EPOCHS, steps_name="epochs", lr=1e-3)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.set_defaults(plot=_script.Path("digits_loss.png"))
    args = parser.parse_args(argv)
    dtype = _script.setup_dtype(args.dtype)
    params, (x, labels), (x_test, labels_test) = init(jax.random.key(args.seed), dtype=dtype)
    final, trajectory = train(
        params,
        x,
        labels,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
    )
    for epoch, epoch_losses in enumerate(trajectory.tolist()):
        print(f"epoch {epoch}  mean loss {sum(epoch_losses) / len(epoch_losses):.4f}")
    print(
        f"held-out accuracy: {accuracy(final, x_test, labels_test):.4f} ({len(labels_test)} images)"
    )
    path = _script.save_loss_plot(trajectory.ravel(), args.plot, "digits: cross-entropy", "Step")
    print(f"loss curve saved to {path}")


if __name__ == "__main__":
    main()
