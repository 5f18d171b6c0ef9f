"""The batch plan training uses: which samples each step of each epoch sees, on the device.

A :class:`Plan` is static (hashable) and says how an epoch of ``n`` samples is cut: the whole data
set every step (``batch_size=None``), or ``torch.utils.data.DataLoader``'s cut of an epoch's
sample order into ``batch_size`` batches, the last partial batch kept unless ``drop_last``. The
order of epoch ``e`` is ``jax.random.permutation(jax.random.fold_in(key, e), n)`` when shuffling
(:func:`order`), ``range(n)`` otherwise, or a given ``orders[e]`` (e.g. torch's sampler order).
Everything is a pure function of ``(key, epoch, step)``, so a run resumed at any step sees the
batches an uninterrupted run would have. The host loader (:mod:`jaxnets.data.loader`) cuts with
the same :meth:`Plan.bounds`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.data._checks import _check_count, _check_epoch, _check_seed, _index_array

__all__ = ["FULL_BATCH", "Plan", "batch", "epoch_order", "epoch_orders", "gather", "order"]

PyTree = Any


class Plan(NamedTuple):
    """How a run cuts its training data into batches, epoch after epoch.

    Attributes:
      batch_size: samples per batch; ``None`` means every step sees the whole data set.
      shuffle: a fresh random order every epoch (else ``range(n)``, unless orders are given).
      drop_last: drop each epoch's last batch when it is smaller than ``batch_size``.

    >>> plan = Plan(2)
    >>> plan.steps_per_epoch(5), plan.last_size(5), plan.bounds(2, 5)
    (3, 1, (4, 1))
    >>> Plan(2, drop_last=True).steps_per_epoch(5), FULL_BATCH.steps_per_epoch(5)
    (2, 1)
    """

    batch_size: int | None = None
    shuffle: bool = False
    drop_last: bool = False

    def check(self, n: int) -> Plan:
        """Return the plan after checking it can cut ``n`` samples.

        Raises:
          ValueError: a batch size that is not a positive integer, or ``drop_last`` with fewer
            samples than one batch (an epoch without a step).

        >>> Plan(4, drop_last=True).check(3)
        Traceback (most recent call last):
        ...
        ValueError: drop_last with batch_size=4 leaves no batch of a dataset of 3 samples
        """
        size = self.batch_size
        if size is None:
            return self
        if not isinstance(size, int | np.integer) or isinstance(size, bool) or size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {size!r}")
        if self.drop_last and n < size:
            raise ValueError(
                f"drop_last with batch_size={size} leaves no batch of a dataset of {n} samples"
            )
        return self

    def steps_per_epoch(self, n: int) -> int:
        """Steps that make one pass over ``n`` samples (``len(DataLoader)``)."""
        if self.batch_size is None:
            return 1
        full, rest = divmod(n, self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    def last_size(self, n: int) -> int | None:
        """The size of each epoch's last, partial batch, or ``None`` when there is none."""
        if self.batch_size is None or self.drop_last or n % self.batch_size == 0:
            return None
        return n % self.batch_size

    def batch_kinds(self, n: int) -> tuple[bool, ...]:
        """The kinds of batch an epoch of ``n`` samples trains, as :func:`batch`'s ``last`` flag.

        ``(False,)`` when every batch is full (or whole), ``(False, True)`` with a partial last
        batch, ``(True,)`` when the epoch's one batch is partial (``batch_size`` above ``n``).

        >>> Plan(2).batch_kinds(4), Plan(2).batch_kinds(5), Plan(8).batch_kinds(5)
        ((False,), (False, True), (True,))
        """
        if self.last_size(n) is None:
            return (False,)
        return (True,) if self.steps_per_epoch(n) == 1 else (False, True)

    def bounds(self, step: int, n: int) -> tuple[int, int]:
        """``(start, size)`` of batch ``step`` of an epoch within that epoch's order."""
        if self.batch_size is None:
            return 0, n
        last = self.last_size(n)
        is_last = last is not None and step == self.steps_per_epoch(n) - 1
        return step * self.batch_size, last if is_last else self.batch_size


FULL_BATCH = Plan()


def order(plan: Plan, key: jax.Array, epoch: jax.Array | int, n: int) -> jax.Array:
    """Epoch ``epoch``'s sample order: traceable, drawn once per epoch by the training loop.

    Args:
      plan: the plan (only ``shuffle`` is read).
      key: the run's data key.
      epoch: the epoch, possibly traced.
      n: number of samples.

    Returns:
      ``(n,)`` integer indices: a permutation when ``plan.shuffle``, else ``arange(n)``.

    >>> order(Plan(2), jax.random.key(0), 0, 4).tolist()
    [0, 1, 2, 3]
    """
    if not plan.shuffle:
        return jnp.arange(n)
    return jax.random.permutation(jax.random.fold_in(key, epoch), n)


def gather(arrays: PyTree, indices: jax.Array) -> PyTree:
    """Rows ``indices`` of every array of ``arrays`` (which share their leading axis)."""
    return jax.tree.map(lambda a: jnp.take(a, indices, axis=0), arrays)


def batch(
    plan: Plan, arrays: PyTree, epoch_order: jax.Array, step: jax.Array | int, *, last: bool
) -> PyTree:
    """Batch ``step`` of an epoch whose order is ``epoch_order``; traceable.

    Args:
      plan: the plan.
      arrays: the training arrays, sharing the leading (sample) axis.
      epoch_order: ``(n,)`` the epoch's sample order.
      step: the step within the epoch, possibly traced.
      last: gather the epoch's last, partial batch (its own static size) instead of a full one.

    Returns:
      ``arrays`` itself for a full-batch plan, else the batch's rows of each array.

    >>> x = jnp.arange(10, 15)
    >>> batch(Plan(2), x, jnp.arange(5), 1, last=False).tolist()
    [12, 13]
    >>> batch(Plan(2), x, jnp.arange(5), 2, last=True).tolist()
    [14]
    """
    if plan.batch_size is None:
        return arrays
    n = int(jax.tree.leaves(arrays)[0].shape[0])
    if last:
        start, size = plan.bounds(plan.steps_per_epoch(n) - 1, n)
        return gather(arrays, epoch_order[start : start + size])
    indices = jax.lax.dynamic_slice_in_dim(epoch_order, step * plan.batch_size, plan.batch_size)
    return gather(arrays, indices)


# One compiled program per dataset length instead of one per op: eager permutation costs ~10x.
_order = jax.jit(order, static_argnums=(0, 3))


def epoch_order(n: int, *, seed: int = 0, epoch: int = 0) -> np.ndarray:
    """The shuffled sample order of epoch ``epoch`` on the host: a pure function of its arguments.

    It is :func:`order` with ``key = jax.random.key(seed)``, the same with and without x64 (the
    random bits are 32-bit either way, and ``seed`` and ``epoch`` are limited to 32 bits so that
    the key is too).

    Args:
      n: dataset length.
      seed: the data seed, in ``[0, 2**32)``.
      epoch: epoch number, in ``[0, 2**32)``.

    Returns:
      ``[n]`` int64 NumPy array, a permutation of ``range(n)``.

    >>> epoch_order(6, seed=0, epoch=0).tolist() == epoch_order(6, seed=0, epoch=0).tolist()
    True
    >>> sorted(epoch_order(6, seed=0, epoch=1).tolist())
    [0, 1, 2, 3, 4, 5]
    """
    n = _check_count(n, "n")
    seed = _check_seed(seed)
    epoch = _check_epoch(epoch)
    return np.asarray(_order(Plan(1, shuffle=True), jax.random.key(seed), epoch, n), np.int64)


def epoch_orders(
    n: int,
    epochs: int,
    orders: Sequence[Sequence[int]] | np.ndarray | jax.Array,
) -> np.ndarray:
    """Explicit sample orders (e.g. torch's sampler's), checked to be ``[epochs, n]`` indices.

    Args:
      n: dataset length.
      epochs: number of epochs (``>= 1``).
      orders: one order per epoch.

    Returns:
      ``[epochs, n]`` int64 NumPy array.

    Raises:
      ValueError: another shape, or an index outside ``[0, n)``.

    >>> epoch_orders(3, 2, [[0, 1, 2], [2, 1, 0]]).tolist()
    [[0, 1, 2], [2, 1, 0]]
    """
    n = _check_count(n, "n")
    epochs = _check_count(epochs, "epochs")
    rows = np.asarray(orders)
    if rows.shape != (epochs, n):
        raise ValueError(f"orders must have shape (epochs, n) = {(epochs, n)}, got {rows.shape}")
    return np.stack([_index_array(row, "orders", n) for row in rows])
