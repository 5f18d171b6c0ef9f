"""Real data: scikit-learn's bundled 8x8 handwritten digits (no download), a two-layer
classifier trained with ``cross_entropy``, ``adam`` and shuffled mini-batches.

1797 images scaled to [0, 1] as 64 features; 360 held out at random, 1437 for training in
batches of 32 (the last batch of each epoch holds 29, as torch's ``DataLoader`` yields it);
``Linear(64, 128) -> relu -> Linear(128, 10)``, Adam at 1e-3 for 10 epochs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike

from jaxnets import losses, nn, optim, validate
from jaxnets.experiments import _script
from jaxnets.train import fit_epochs

N_TEST, BATCH_SIZE, EPOCHS, HIDDEN, CLASSES = 360, 32, 10, 128, 10
Params = dict[str, dict[str, jax.Array]]


def load(dtype: np.dtype = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits, flattened and scaled to [0, 1].

    Args:
      dtype: NumPy dtype of the pixels.

    Returns:
      ``(images, labels)``: ``(1797, 64)`` pixels and ``(1797,)`` int64 labels in 0..9.

    >>> images, labels = load()
    >>> images.shape, labels.shape, str(images.dtype), float(images.max()), int(labels.max())
    ((1797, 64), (1797,), 'float32', 1.0, 9)
    """
    from sklearn.datasets import load_digits  # a dependency of this experiment only

    digits = load_digits()
    return (digits.data / 16.0).astype(dtype), digits.target.astype(np.int64)


class Classifier(nnx.Module):
    """``Linear(64, 128) -> relu -> Linear(128, 10)`` with torch's initialisers.

    Maps ``(B, 64)`` images to ``(B, 10)`` logits.

    Args:
      dtype: parameter dtype.
      rngs: NNX random streams (``params`` is used).

    >>> model = Classifier(rngs=nnx.Rngs(0))
    >>> model(jnp.ones((2, 64), jnp.float32)).shape
    (2, 10)
    """

    def __init__(self, *, dtype: jnp.dtype = jnp.float32, rngs: nnx.Rngs):
        self.fc1 = nn.Linear(64, HIDDEN, dtype=dtype, rngs=rngs)
        self.fc2 = nn.Linear(HIDDEN, CLASSES, dtype=dtype, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.fc2(jax.nn.relu(self.fc1(x)))


def apply(params: Params, x: ArrayLike) -> jax.Array:
    """The classifier's pure form: ``Classifier`` with ``params`` merged in.

    Args:
      params: ``{"fc1": {"kernel": (64, 128), "bias": (128,)}, "fc2": {...: (128, 10), (10,)}}``.
      x: ``(B, 64)`` images.

    Returns:
      ``(B, 10)`` logits.

    >>> params = nnx.to_pure_dict(nnx.state(Classifier(rngs=nnx.Rngs(0)), nnx.Param))
    >>> apply(params, jnp.ones((3, 64), jnp.float32)).shape
    (3, 10)
    """
    return nn.apply_pure(Classifier, params, x)


def loss_fn(params: Params, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
    """``F.cross_entropy(model(x), labels)``.

    Args:
      params: the classifier's pure parameter dict.
      batch: ``(x, labels)`` with ``x: (B, 64)`` and integer ``labels: (B,)``.

    Returns:
      The mean cross-entropy, shape ``()``.

    >>> params = nnx.to_pure_dict(nnx.state(Classifier(rngs=nnx.Rngs(0)), nnx.Param))
    >>> loss = loss_fn(params, (jnp.ones((3, 64), jnp.float32), jnp.asarray([0, 1, 2])))
    >>> loss.shape, bool(loss > 0)
    ((), True)
    """
    x, labels = batch
    return losses.cross_entropy(apply(params, x), labels)


def accuracy(params: Params, x: ArrayLike, labels: ArrayLike) -> float:
    """Fraction of ``labels`` predicted by the arg-max logit.

    Args:
      params: the classifier's pure parameter dict.
      x: ``(B, 64)`` images.
      labels: ``(B,)`` integer labels.

    Returns:
      A Python float in [0, 1].

    >>> params = nnx.to_pure_dict(nnx.state(Classifier(rngs=nnx.Rngs(0)), nnx.Param))
    >>> x = jnp.ones((2, 64), jnp.float32)
    >>> accuracy(params, x, jnp.argmax(apply(params, x), axis=-1))
    1.0
    """
    return float(jnp.mean(jnp.argmax(apply(params, x), axis=-1) == jnp.asarray(labels)))


def init(key: jax.Array, *, dtype: jnp.dtype = jnp.float32):
    """A fresh classifier and a random held-out split of the digits.

    Args:
      key: a ``jax.random.key`` (model and split).
      dtype: dtype of the parameters and images.

    Returns:
      ``(params, (x_train, y_train), (x_test, y_test))`` with ``x_train: (1437, 64)``,
      ``y_train: (1437,)``, ``x_test: (360, 64)`` and ``y_test: (360,)``.

    >>> params, (x, y), (x_test, y_test) = init(jax.random.key(0))
    >>> x.shape, y.shape, x_test.shape, y_test.shape, params["fc1"]["kernel"].shape
    ((1437, 64), (1437,), (360, 64), (360,), (64, 128))
    """
    key_model, key_split = jax.random.split(key)
    images, labels = (jnp.asarray(a) for a in load(np.dtype(dtype)))
    # Indexing with the permutation as a JAX array keeps init traceable (``jax.jit``,
    # ``jax.eval_shape``), as the training command line needs.
    order = jax.random.permutation(key_split, images.shape[0])
    test, training = order[:N_TEST], order[N_TEST:]
    model = Classifier(dtype=dtype, rngs=nnx.Rngs(params=key_model))
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    return params, (images[training], labels[training]), (images[test], labels[test])


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
    """Adam over shuffled mini-batches, whole epochs as one jitted program.

    Epoch ``e`` visits the samples in ``jaxnets.data.epoch_order(n, seed=seed, epoch=e)``, or in
    ``orders[e]`` when given (``[epochs, n]``, e.g. torch's sampler order). Arguments are checked
    before anything is compiled.

    Args:
      params: the classifier's pure parameter dict.
      x: ``(N, 64)`` images.
      labels: ``(N,)`` integer labels.
      epochs: passes over the data.
      batch_size: samples per batch (the last batch of an epoch may be smaller).
      learning_rate: Adam learning rate.
      seed: seed of the shuffled orders.
      orders: optional ``(epochs, N)`` sample orders.

    Returns:
      ``(final_params, losses)`` with ``losses: (epochs, ceil(N / batch_size))``.

    >>> params = nnx.to_pure_dict(nnx.state(Classifier(rngs=nnx.Rngs(0)), nnx.Param))
    >>> x = jnp.zeros((4, 64), jnp.float32)
    >>> try:
    ...     train(params, x, jnp.zeros((4,), jnp.float32))
    ... except TypeError as err:
    ...     print(err)
    labels must be integer class indices, got float32
    """
    validate.shapes({"x": (x, ("N", 64)), "labels": (labels, ("N",))})
    validate.floating({"x": x, "weight": params["fc1"]["kernel"]})
    if not jnp.issubdtype(jnp.result_type(labels), jnp.integer):
        raise TypeError(f"labels must be integer class indices, got {jnp.result_type(labels)}")
    return fit_epochs(
        loss_fn,
        optim.adam,
        params,
        (x, labels),
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        orders=orders,
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: train the classifier, print each epoch's mean loss and the held-out accuracy.

    The loss of every step is saved as a PNG (``--plot``, by default ``digits_loss.png``) whose path
    is printed last. Options are ``--epochs``, ``--lr``, ``--batch-size``, ``--seed``, ``--dtype``
    and ``--plot``; run ``python -m jaxnets.experiments.digits --help``. ``argv`` defaults to
    ``sys.argv``.
    """
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
