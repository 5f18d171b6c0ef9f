"""The experiments ``jaxnets train`` can run: the catalogue's modules, imported when asked for.

An experiment is a module implementing the protocol of :mod:`jaxnets.experiments._protocol`;
the command line reads its names (``DEFAULTS``, ``init``, ``loss_fn``, ``optimizer``,
``batch_plan``, ``evaluate``, ``COMPILER_OPTIONS``) directly, so the step it runs is the one the
module's own ``train`` runs and ``python -m parity`` checks against PyTorch. More experiments
join with :func:`register`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from jaxnets.experiments import catalog

__all__ = ["PROTOCOL", "get", "names", "register"]

PROTOCOL = ("DEFAULTS", "init", "loss_fn", "optimizer", "batch_plan")
_REGISTERED: dict[str, ModuleType] = {}


def register(experiment: ModuleType) -> ModuleType:
    """Add ``experiment`` (a module or object with the protocol's names) under its name.

    Args:
      experiment: it must define every name of :data:`PROTOCOL`; its ``DEFAULTS.name`` is the
        command-line name (replacing any experiment of that name).

    Returns:
      ``experiment``.

    Raises:
      TypeError: naming the protocol names it lacks.

    >>> import types
    >>> mlp = get("mlp")
    >>> copy = types.SimpleNamespace(**{name: getattr(mlp, name) for name in PROTOCOL})
    >>> copy.DEFAULTS = catalog.Defaults("mlp-copy", "mlp", "a copy", 1e-6, steps=5)
    >>> register(copy) is copy, get("mlp-copy") is copy
    (True, True)
    >>> _REGISTERED.pop("mlp-copy") is copy
    True
    """
    missing = [name for name in PROTOCOL if not hasattr(experiment, name)]
    if missing:
        raise TypeError(f"an experiment must define {list(PROTOCOL)}; missing {missing}")
    _REGISTERED[experiment.DEFAULTS.name] = experiment
    return experiment


def names() -> list[str]:
    """Every experiment name: the catalogue's, then registered ones.

    >>> names()[:2]
    ['mlp', 'cnn']
    """
    return list(catalog.CATALOG) + [name for name in _REGISTERED if name not in catalog.CATALOG]


def get(name: str) -> ModuleType:
    """The experiment called ``name``, imported on first use.

    Raises:
      KeyError: naming the known experiments when ``name`` is not one.

    >>> get("cnn").DEFAULTS.learning_rate
    0.01
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    try:
        entry = catalog.get(name)
    except KeyError:
        known = ", ".join(sorted(names()))
        raise KeyError(f"unknown experiment {name!r}; known: {known}") from None
    return importlib.import_module(f"jaxnets.experiments.{entry.module}")
