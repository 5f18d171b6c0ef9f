"""Layouts as axis permutations: where each of torch's axes sits in the port's array.

A layout ``perm`` says that the port's axis ``i`` holds torch's axis ``perm[i]``: ``(0, 1, 2,
3)`` is torch's own layout, ``(0, 2, 3, 1)`` channels-last. The generator carries one per value
and moves data only where an operation needs another layout; a reshape that would mix the
channel axis with spatial ones in the port's order gets the explicit transpose first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Perm = tuple[int, ...]

__all__ = [
    "Perm",
    "identity",
    "channels_last",
    "channel_moved",
    "axis",
    "conversion",
    "reshape_groups",
    "reshaped",
]


def identity(rank: int) -> Perm:
    """torch's own layout."""
    return tuple(range(rank))


def channels_last(rank: int) -> Perm:
    """``(N, *spatial, C)`` for rank >= 3; torch's layout below that."""
    return (0, *range(2, rank), 1) if rank >= 3 else identity(rank)


def channel_moved(rank: int, channel: int) -> Perm:
    """torch's axis ``channel`` moved last (a layer's ``torch_channel_axis``)."""
    return (*(a for a in range(rank) if a != channel), channel)


def axis(perm: Perm, dim: int) -> int:
    """The port's axis holding torch's ``dim`` (negative dims count from the end, and stay
    negative where the layout is torch's, as the user wrote them)."""
    if not perm:
        return 0
    if perm == identity(len(perm)):
        return dim
    return perm.index(dim % len(perm))


def conversion(source: Perm, target: Perm, expr: str) -> str:
    """Code moving ``expr`` from layout ``source`` to ``target``."""
    if source == target:
        return expr
    axes = [source.index(t) for t in target]
    rank = len(axes)
    # One axis moved is the common case (channels-last <-> torch): say it as a move.
    for src in range(rank):
        rest = [a for a in range(rank) if a != src]
        for dst in range(rank):
            candidate = rest[:dst] + [src] + rest[dst:]
            if candidate == axes:
                s = src - rank if src == rank - 1 else src
                d = dst - rank if dst == rank - 1 else dst
                return f"jnp.moveaxis({expr}, {s}, {d})"
    return f"jnp.transpose({expr}, {tuple(axes)})"


def reshape_groups(
    source: Sequence[int], target: Sequence[int]
) -> list[tuple[list[int], list[int]]] | None:
    """How a C-order reshape from ``source`` to ``target`` groups axes: ``[(source axes, target
    axes)]`` of equal sizes, in order; None where the sizes do not line up."""
    groups = []
    i = j = 0
    while i < len(source) or j < len(target):
        ga: list[int] = []
        gb: list[int] = []
        if i < len(source):
            ga.append(i)
            i += 1
        if j < len(target):
            gb.append(j)
            j += 1
        size_a = math.prod(source[a] for a in ga)
        size_b = math.prod(target[b] for b in gb)
        while size_a != size_b:
            if size_a < size_b:
                if i >= len(source):
                    return None
                ga.append(i)
                size_a *= source[i]
                i += 1
            else:
                if j >= len(target):
                    return None
                gb.append(j)
                size_b *= target[j]
                j += 1
        groups.append((ga, gb))
    return groups


def reshaped(perm: Perm, source: Sequence[int], target: Sequence[int]) -> Perm | None:
    """The layout of ``reshape(target)`` done in the port's order on an array in ``perm``, or
    None where that would reorder data (a group's axes not adjacent and in torch's order)."""
    if perm == identity(len(perm)):
        return identity(len(target))
    groups = reshape_groups(source, target)
    if groups is None or any(not ga for ga, _ in groups):
        return None
    placed = []
    for ga, gb in groups:
        positions = [perm.index(a) for a in ga]
        if positions != list(range(positions[0], positions[0] + len(positions))):
            return None
        placed.append((positions[0], gb))
    placed.sort()
    return tuple(b for _, gb in placed for b in gb)
