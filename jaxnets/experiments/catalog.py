"""The trainable experiments and their tutorial defaults, as static data.

This is the one place each default is written: every experiment module reads its own entry
(``DEFAULTS = catalog.get("mlp")``), and ``jaxnets list`` / ``jaxnets --help`` print from here
without importing JAX or any experiment. ``steps`` and ``epochs`` are exclusive: an experiment
counts its run in optimiser steps or in passes over its data loader.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOG", "Defaults", "get", "names"]


@dataclass(frozen=True)
class Defaults:
    """One trainable experiment's identity and tutorial defaults.

    Attributes:
      name: the command-line name.
      module: the module under ``jaxnets.experiments`` that implements the protocol.
      summary: one line for ``jaxnets list``.
      learning_rate: the tutorial's learning rate.
      steps: the tutorial's optimiser steps, or ``None`` when it counts epochs.
      epochs: the tutorial's passes over the data, or ``None`` when it counts steps.
      batch_size: the tutorial's batch size; ``None`` when the data is fixed and has none.
      loader: batches come from a shuffling ``DataLoader`` of ``batch_size`` (``--drop-last``
        applies); otherwise every step sees the whole data set, or its samples in order.
    """

    name: str
    module: str
    summary: str
    learning_rate: float
    steps: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    loader: bool = False

    def span(self) -> str:
        """``"steps 500"`` or ``"epochs 10"``: how long the tutorial trains.

        >>> get("digits").span()
        'epochs 10'
        """
        return f"steps {self.steps}" if self.epochs is None else f"epochs {self.epochs}"


CATALOG: dict[str, Defaults] = {
    entry.name: entry
    for entry in (
        Defaults(
            "mlp",
            "mlp",
            "seed 000: 64x1000 -> 100 -> 10 ReLU net on random data, sum of squares, SGD",
            learning_rate=1e-6,
            steps=500,
            batch_size=64,
        ),
        Defaults(
            "cnn",
            "cnn",
            "seed 001: Net (2 conv + 3 fc), L1 loss, SGD",
            learning_rate=0.01,
            steps=100,
            batch_size=1,
        ),
        Defaults(
            "linear",
            "linear_regression",
            "seed 002: y = w*x, per-sample SGD over x = 1, 2, 3 in order",
            learning_rate=0.01,
            epochs=100,
        ),
        Defaults(
            "custom",
            "custom_backward",
            "seed 004: binary weights (straight-through sign), clipped grads, SGD",
            learning_rate=0.05,
            steps=100,
            batch_size=32,
        ),
        Defaults(
            "module_regression",
            "module_regression",
            "seed 004: nn.Module Linear(1, 1), MSE, shuffled DataLoader, SGD",
            learning_rate=0.05,
            epochs=20,
            batch_size=10,
            loader=True,
        ),
        Defaults(
            "digits",
            "digits",
            "scikit-learn 8x8 digits, Linear-ReLU-Linear, cross-entropy, shuffled DataLoader, Adam",
            learning_rate=1e-3,
            epochs=10,
            batch_size=32,
            loader=True,
        ),
    )
}


def names() -> list[str]:
    """The experiment names, in catalogue order.

    >>> names()
    ['mlp', 'cnn', 'linear', 'custom', 'module_regression', 'digits']
    """
    return list(CATALOG)


def get(name: str) -> Defaults:
    """The entry called ``name``.

    Raises:
      KeyError: naming the known experiments.

    >>> get("cnn").learning_rate, get("cnn").steps, get("cnn").batch_size
    (0.01, 100, 1)
    >>> try:
    ...     get("resnet")
    ... except KeyError as err:
    ...     print(err.args[0])
    unknown experiment 'resnet'; known: cnn, custom, digits, linear, mlp, module_regression
    """
    try:
        return CATALOG[name]
    except KeyError:
        known = ", ".join(sorted(CATALOG))
        raise KeyError(f"unknown experiment {name!r}; known: {known}") from None
