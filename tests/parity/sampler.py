"""Test helpers: the sample orders and batch plans torch's ``DataLoader`` produces, as NumPy.

``jaxnets.data`` draws its shuffled orders from ``jax.random``; to compare batches with torch's
exactly, these helpers run a real ``torch.utils.data.DataLoader`` over ``range(n)`` (seeded
``torch.Generator``, ``shuffle=True``) and return the indices it yields, which then go to
``jaxnets.data.batch_indices(order=...)`` or ``DataLoader(sampler=...)``. Running the loader,
rather than calling ``torch.randperm`` directly, keeps the generator's consumption exactly
torch's: each new iterator draws a base seed from the generator before ``RandomSampler`` draws
its permutation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

__all__ = ["torch_batch_indices", "torch_epoch_order", "torch_epoch_orders"]


def _identity(batch: list[int]) -> list[int]:
    return batch


def torch_epoch_orders(n: int, seed: int, epochs: int) -> np.ndarray:
    """The sample orders of epochs ``0 .. epochs - 1`` of a shuffled, seeded torch loader.

    The loader is ``DataLoader(dataset, shuffle=True,
    generator=torch.Generator().manual_seed(seed))`` over any dataset of length ``n``, iterated
    ``epochs`` times; the batch size does not change the order.

    Args:
      n: dataset length (``>= 1``, as torch's ``RandomSampler`` requires).
      seed: the ``torch.Generator`` seed.
      epochs: how many epochs to export.

    Returns:
      ``[epochs, n]`` int64 array; row ``e`` is the permutation of epoch ``e``.

    >>> orders = torch_epoch_orders(5, seed=0, epochs=2)
    >>> orders.shape, sorted(orders[1].tolist())
    ((2, 5), [0, 1, 2, 3, 4])
    """
    loader = DataLoader(
        range(n),
        batch_size=n,
        shuffle=True,
        collate_fn=_identity,
        generator=torch.Generator().manual_seed(seed),
    )
    rows = [[i for batch in loader for i in batch] for _ in range(epochs)]
    return np.asarray(rows, dtype=np.int64).reshape(epochs, n)


def torch_epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The sample order of epoch ``epoch`` of a shuffled, seeded torch loader (see above).

    Returns:
      ``[n]`` int64 array, a permutation of ``range(n)``.

    >>> torch_epoch_order(6, seed=3, epoch=1).tolist() == torch_epoch_orders(6, 3, 2)[1].tolist()
    True
    """
    return torch_epoch_orders(n, seed, epoch + 1)[epoch]


def torch_batch_indices(
    n: int, batch_size: int, *, shuffle: bool, drop_last: bool, seed: int, epoch: int = 0
) -> list[np.ndarray]:
    """The index batches torch's ``DataLoader`` yields in epoch ``epoch``.

    Returns:
      One int64 array per batch, as ``jaxnets.data.batch_indices`` returns them.

    >>> [b.tolist() for b in torch_batch_indices(5, 2, shuffle=False, drop_last=False, seed=0)]
    [[0, 1], [2, 3], [4]]
    """
    loader = DataLoader(
        range(n),
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        collate_fn=_identity,
        generator=torch.Generator().manual_seed(seed),
    )
    for _ in range(epoch):
        for _ in loader:
            pass
    return [np.asarray(b, dtype=np.int64) for b in loader]
