"""What every trainable experiment shares: its batch plan, its start, and epoch training.

The protocol each module in ``jaxnets.experiments`` (see ``catalog``) implements:

* ``DEFAULTS``: its :class:`~jaxnets.experiments.catalog.Defaults`, the one place defaults live;
* ``init(key, *, batch_size=..., dtype=...) -> (params, data)`` with ``data`` a
  :class:`jaxnets.train.Data`;
* ``loss_fn(params, batch) -> scalar``;
* ``optimizer``: the factory ``optimizer(learning_rate) -> optax.GradientTransformation``;
* ``batch_plan(batch_size=None, *, drop_last=False) -> jaxnets.data.Plan``;
* optionally ``evaluate(params, data) -> dict[str, float]`` (held-out metrics),
  ``augment(key, batch) -> batch`` (a data augmentation its scripts and ``jaxnets train`` offer
  as ``--augment``),
  ``COMPILER_OPTIONS`` (XLA options of its training program) and ``MODEL``, the NNX module
  class (``MODEL(dtype=..., rngs=...)``) whose pure parameter dict ``params`` is: torch weights
  load into it by layer type and it writes torch ``state_dict`` s. Without ``MODEL`` the
  parameters are raw tensors named as in the tutorial, and ``TORCH_NAME`` names a bare array;
* ``train(...)``: :func:`jaxnets.train.fit`, the driver as one chunk, with the tutorial's signature.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import validate
from jaxnets.data.plan import FULL_BATCH, Plan
from jaxnets.experiments.catalog import Defaults
from jaxnets.train import BatchTransform, Data, fit, run_keys

__all__ = ["batch_plan", "fit_experiment", "start", "train_epochs"]

PyTree = Any


def batch_plan(
    defaults: Defaults, batch_size: int | None = None, *, drop_last: bool = False
) -> Plan:
    """The plan of a catalogue entry: a shuffling loader, or the whole data set every step.

    Args:
      defaults: the experiment's entry.
      batch_size: a loader's batch size (default the tutorial's); ignored by full-batch entries,
        whose batch is the data ``init`` drew.
      drop_last: drop each epoch's partial last batch (loaders only).

    Returns:
      The :class:`jaxnets.data.Plan`.

    Raises:
      ValueError: ``drop_last`` for an experiment without a loader.

    >>> from jaxnets.experiments import catalog
    >>> batch_plan(catalog.get("digits"))
    Plan(batch_size=32, shuffle=True, drop_last=False)
    >>> batch_plan(catalog.get("mlp"), 16)
    Plan(batch_size=None, shuffle=False, drop_last=False)
    """
    if defaults.loader:
        size = defaults.batch_size if batch_size is None else batch_size
        return Plan(validate.positive_int(size, "batch_size"), shuffle=True, drop_last=drop_last)
    if drop_last:
        raise ValueError(f"{defaults.name} reads no data loader, so it has no last batch to drop")
    return FULL_BATCH


def start(
    experiment: ModuleType, seed: int, *, batch_size: int | None = None, dtype: Any = jnp.float32
) -> tuple[PyTree, Data, jax.Array]:
    """The initial ``(params, data, data_key)`` of the run with ``seed``: scripts and command alike.

    The keys are :func:`jaxnets.train.run_keys`'s, and deriving them and running
    ``experiment.init`` on the init key is one compiled program (with LLVM's optimisations off:
    it runs once, so compile time is all it costs). Eagerly, each ``jax.random`` call and each
    array op would compile a small program of its own. The seed is an argument of the program,
    not a constant in it, so every seed shares one compilation (and one persistent-cache entry).

    Args:
      experiment: an experiment module.
      seed: the run's seed.
      batch_size: passed to ``init`` (``None``: its default).
      dtype: parameter and data dtype.

    Returns:
      ``(params, data, data_key)``.
    """
    program = _init_program(experiment.init, batch_size, jnp.dtype(dtype))
    words = _seed_words(seed)
    if words is None:
        keys = run_keys(seed)
        return (*program(keys.init), keys.data)
    return program(words)


def _seed_words(seed: int) -> np.ndarray | None:
    """``jax.random.key_data(jax.random.key(seed))`` computed on the host, or ``None`` where the
    default PRNG is not threefry (whose key is the seed's two 32-bit halves; without x64, JAX
    keeps only the low half)."""
    if jax.config.jax_default_prng_impl != "threefry2x32":
        return None
    seed %= 2**64
    high = seed >> 32 if jax.config.jax_enable_x64 else 0
    return np.array([high, seed & 0xFFFFFFFF], np.uint32)


@functools.cache
def _init_program(init_fn: Any, batch_size: int | None, dtype: Any) -> Any:
    sizes = {} if batch_size is None else {"batch_size": batch_size}

    def init(seed_or_key: jax.Array) -> Any:
        if not jnp.issubdtype(seed_or_key.dtype, jax.dtypes.prng_key):
            init_key, data_key = jax.random.split(jax.random.wrap_key_data(seed_or_key))
            return (*init_fn(init_key, **sizes, dtype=dtype), data_key)
        return init_fn(seed_or_key, **sizes, dtype=dtype)

    return jax.jit(init, compiler_options={"xla_backend_optimization_level": 0})


def fit_experiment(
    experiment: ModuleType,
    params: PyTree,
    arrays: PyTree,
    *,
    learning_rate: float,
    steps: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    orders: Any = None,
    batch_transform: BatchTransform | None = None,
    stacked: bool = False,
) -> tuple[PyTree, jax.Array]:
    """``experiment``'s loss, optimiser, batch plan and compiler options through
    :func:`jaxnets.train.fit`, for ``steps`` optimiser steps or ``epochs`` passes over ``arrays``
    (each batch through ``batch_transform(key, batch)`` in the step when given, e.g. the
    experiment's ``augment``); ``stacked``: runs on a leading axis, trained at once.

    Returns:
      ``(final_params, losses)`` with one loss per step.
    """
    if (steps is None) == (epochs is None):
        raise ValueError("pass exactly one of steps or epochs")
    plan = experiment.batch_plan(batch_size)
    if epochs is not None:
        n = int(jnp.shape(jax.tree.leaves(arrays)[0])[int(stacked)])
        steps = validate.positive_int(epochs, "epochs") * plan.check(n).steps_per_epoch(n)
    return fit(
        experiment.loss_fn,
        experiment.optimizer,
        params,
        arrays,
        steps=steps,
        learning_rate=learning_rate,
        plan=plan,
        key=key,
        orders=orders,
        compiler_options=getattr(experiment, "COMPILER_OPTIONS", None),
        batch_transform=batch_transform,
        stacked=stacked,
    )


def train_epochs(
    experiment: ModuleType,
    params: PyTree,
    arrays: PyTree,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int = 0,
    orders: Any = None,
    batch_transform: BatchTransform | None = None,
) -> tuple[PyTree, jax.Array]:
    """A loader experiment's ``train``: whole epochs of shuffled mini-batches, one compiled run.

    Epoch ``e`` visits the samples in ``jaxnets.data.plan.order`` with the data key of
    ``run_keys(seed)`` (the order ``jaxnets train --seed`` uses), or in ``orders[e]`` when
    ``orders`` (``[epochs, n]``, e.g. torch's sampler order) is given.

    Returns:
      ``(final_params, losses)`` with ``losses: (epochs, steps_per_epoch)``.
    """
    params, losses = fit_experiment(
        experiment,
        params,
        arrays,
        learning_rate=learning_rate,
        epochs=epochs,
        batch_size=batch_size,
        key=run_keys(seed).data,
        orders=orders,
        batch_transform=batch_transform,
    )
    return params, losses.reshape(validate.positive_int(epochs, "epochs"), -1)
