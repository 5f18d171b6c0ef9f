"""The experiments ``jaxnets train`` can run, and how each is set up, stepped and fed.

An entry names the experiment module's own ``loss_fn`` and optimiser factory, so the step the
command line runs is ``make_train_step(loss_fn, optimizer(lr))``, the same step the module's
``train`` scans and ``python -m parity`` checks against PyTorch. More experiments join with
:func:`register`.

Batches are a pure function of ``(data, key, epoch, step_in_epoch)`` (``batch_fn``), traced
inside the scanned step: the full-batch tutorials return ``data`` itself, the per-sample linear
tutorial indexes its samples, and the data-loader experiments (``loader=True``) draw shuffled
mini-batches of ``--batch-size`` with ``jaxnets.train.shuffled_batches``, the last partial batch
included as torch's ``DataLoader`` yields it. With one step per epoch (the full-batch entries),
``epoch`` is the step number and ``step_in_epoch`` is 0.
Because nothing about the data lives in Python between steps, a resumed run sees the same
batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxnets import optim
from jaxnets.experiments import (
    cnn,
    custom_backward,
    digits,
    linear_regression,
    mlp,
    module_regression,
)
from jaxnets.train import Batches, BatchFn, LossFn, full_batch, shuffled_batches

__all__ = ["Experiment", "REGISTRY", "get", "register"]

PyTree = Any
InitFn = Callable[[jax.Array, "int | None", jnp.dtype], tuple[PyTree, PyTree]]


@dataclass(frozen=True)
class Experiment:
    """One trainable experiment.

    Attributes:
      name: the command-line name.
      summary: one line for ``jaxnets list``.
      init: ``init(key, batch_size, dtype) -> (params, data)``; ``batch_size`` is ``None`` when
        the experiment has no batch-size option.
      loss_fn: ``loss_fn(params, batch) -> scalar``, the experiment module's own.
      default_lr: the tutorial's learning rate.
      default_steps: the tutorial's number of optimiser steps (``None`` when it trains for
        ``default_epochs`` instead).
      optimizer: ``optimizer(lr) -> optax.GradientTransformation``.
      batch_fn: the batch plan, ``(data, key, epoch, step_in_epoch) -> batch``.
      steps_per_epoch: ``steps_per_epoch(data)``: how many steps make one pass over ``data``.
      default_batch_size: the tutorial's batch size, or ``None`` if it cannot be changed.
      loader: ``data`` is a dataset (a pytree of arrays sharing the sample axis) read through a
        shuffling ``DataLoader`` of the run's batch size; ``batch_fn`` and ``steps_per_epoch``
        are then not used.
      default_epochs: the tutorial's number of epochs, for entries counted in epochs.
      compiler_options: XLA options for the training program (``jax.jit``'s
        ``compiler_options``), the ones the experiment module's own ``train`` compiles with.
    """

    name: str
    summary: str
    init: InitFn
    loss_fn: LossFn
    default_lr: float
    default_steps: int | None
    optimizer: Callable[[float], optax.GradientTransformation] = optim.sgd
    batch_fn: BatchFn = full_batch
    steps_per_epoch: Callable[[PyTree], int] = lambda data: 1
    default_batch_size: int | None = None
    loader: bool = False
    default_epochs: int | None = None
    compiler_options: Mapping[str, Any] = field(default_factory=dict)

    def batches(self, data: PyTree, batch_size: int | None, drop_last: bool = False) -> Batches:
        """The batch plan of a run on ``data`` (arrays or ``jax.ShapeDtypeStruct`` s).

        Args:
          data: the second value ``init`` returned.
          batch_size: the run's batch size (used by ``loader`` entries).
          drop_last: drop each epoch's partial last batch (``loader`` entries only).

        Returns:
          A :class:`jaxnets.train.Batches`.

        Raises:
          ValueError: ``drop_last`` for an entry without a loader, or no batch left by it.

        >>> plan = get("digits").batches(get("digits").init(jax.random.key(0), 32, "float32")[1],
        ...                              32)
        >>> plan.steps_per_epoch, plan.last_batch_fn is not None
        (45, True)
        """
        if self.loader:
            n = int(jax.tree.leaves(data)[0].shape[0])
            return shuffled_batches(n, batch_size or n, drop_last=drop_last)
        if drop_last:
            raise ValueError(f"{self.name} reads no data loader, so it has no last batch to drop")
        return Batches(self.batch_fn, self.steps_per_epoch(data))


REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` under its name (replacing any entry of that name).

    Args:
      experiment: the entry.

    Returns:
      The entry, so this can be used at module level like a decorator's result.

    >>> import dataclasses
    >>> copy = register(dataclasses.replace(get("mlp"), name="mlp-copy"))
    >>> get("mlp-copy").default_steps
    500
    >>> REGISTRY.pop("mlp-copy") is copy
    True
    """
    REGISTRY[experiment.name] = experiment
    return experiment


def get(name: str) -> Experiment:
    """The entry called ``name``.

    Args:
      name: an experiment name.

    Returns:
      The :class:`Experiment`.

    Raises:
      KeyError: naming the known experiments when ``name`` is not one.

    >>> entry = get("cnn")
    >>> entry.default_lr, entry.default_steps, entry.default_batch_size
    (0.01, 100, 1)
    >>> try:
    ...     get("resnet")
    ... except KeyError as err:
    ...     print(err.args[0])
    unknown experiment 'resnet'; known: cnn, custom, digits, linear, mlp, module_regression
    """
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KeyError(f"unknown experiment {name!r}; known: {known}") from None


def _split_init(init: Callable[..., tuple[Any, ...]], size_name: str | None) -> InitFn:
    """Adapt a module's ``init(key, *, <size_name>=..., dtype=...) -> (params, *data)``."""

    def wrapped(key: jax.Array, batch_size: int | None, dtype: jnp.dtype):
        sizes = {} if batch_size is None or size_name is None else {size_name: batch_size}
        params, *data = init(key, **sizes, dtype=dtype)
        return params, tuple(data)

    return wrapped


def _digits_init(key: jax.Array, batch_size: int | None, dtype: jnp.dtype):
    del batch_size  # the loader's, not the dataset's
    params, training, _held_out = digits.init(key, dtype=dtype)
    return params, training


def _linear_init(key: jax.Array, batch_size: int | None, dtype: jnp.dtype):
    del key, batch_size  # the tutorial's data and starting weight are fixed
    w, xs, ys = linear_regression.init(dtype)
    return w, (xs, ys)


def _linear_batch(data: PyTree, key: jax.Array, epoch: jax.Array, step: jax.Array) -> PyTree:
    """Sample ``step`` of the epoch: the tutorial visits x=1, 2, 3 in order every epoch."""
    del key, epoch
    xs, ys = data
    return xs[step], ys[step]


register(
    Experiment(
        name="mlp",
        summary="seed 000: 64x1000 -> 100 -> 10 ReLU net, sum of squares, SGD lr 1e-6, 500 steps",
        init=_split_init(mlp.init, "n"),
        loss_fn=mlp.loss_fn,
        default_lr=1e-6,
        default_steps=500,
        default_batch_size=mlp.N,
    )
)
register(
    Experiment(
        name="cnn",
        summary="seed 001: Net (2 conv + 3 fc), L1 loss, SGD lr 0.01, 100 steps",
        init=_split_init(cnn.init, "batch_size"),
        loss_fn=cnn.loss_fn,
        compiler_options=cnn.COMPILER_OPTIONS,
        default_lr=0.01,
        default_steps=100,
        default_batch_size=1,
    )
)
register(
    Experiment(
        name="linear",
        summary="seed 002: y = w*x, per-sample SGD lr 0.01, 100 epochs of 3 samples",
        init=_linear_init,
        loss_fn=linear_regression.loss_fn,
        default_lr=0.01,
        default_steps=100 * len(linear_regression.X_DATA),
        batch_fn=_linear_batch,
        steps_per_epoch=lambda data: int(data[0].shape[0]),
    )
)
register(
    Experiment(
        name="custom",
        summary="seed 004: binary weights (straight-through sign), clipped grads, SGD lr 0.05",
        init=_split_init(custom_backward.init, "n"),
        loss_fn=custom_backward.loss_fn,
        default_lr=0.05,
        default_steps=100,
        default_batch_size=custom_backward.N,
    )
)
register(
    Experiment(
        name="module_regression",
        summary="seed 004: nn.Module Linear(1, 1), MSE, shuffled DataLoader of 10, SGD lr 0.05, "
        "20 epochs",
        init=_split_init(module_regression.init, None),
        loss_fn=module_regression.loss_fn,
        default_lr=0.05,
        default_steps=None,
        default_batch_size=module_regression.BATCH_SIZE,
        loader=True,
        default_epochs=module_regression.EPOCHS,
    )
)
register(
    Experiment(
        name="digits",
        summary="scikit-learn 8x8 digits, Linear-ReLU-Linear, cross-entropy, Adam lr 1e-3, "
        "shuffled batches of 32, 10 epochs",
        init=_digits_init,
        loss_fn=digits.loss_fn,
        default_lr=1e-3,
        default_steps=None,
        optimizer=optim.adam,
        default_batch_size=digits.BATCH_SIZE,
        loader=True,
        default_epochs=digits.EPOCHS,
    )
)
