"""What the generator knows of each value of the traced graph while it writes the port.

A :class:`Tensor` is held in a variable (or, for a parameter, an attribute) in some layout; a
:class:`Num` is a plain Python value (a size, a constant) written inline; a :class:`Seq` is a
tuple of values (a layer's several outputs, ``x.size()``). ``refs`` names the variables an
expression reads, so that a name is reused only once its old value is dead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parity.generate import layout

__all__ = ["Tensor", "Num", "Seq", "Value", "var"]


def var(node_name: str) -> str:
    """The placeholder standing for a node's variable until names are final."""
    return f"\x00{node_name}\x00"


@dataclass
class Tensor:
    expr: str
    perm: layout.Perm
    shape: tuple[int, ...]
    dtype: Any
    refs: frozenset[str] = field(default_factory=frozenset)

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass
class Num:
    expr: str
    value: Any
    refs: frozenset[str] = field(default_factory=frozenset)


@dataclass
class Seq:
    expr: str
    items: list[Any]
    refs: frozenset[str] = field(default_factory=frozenset)


Value = Tensor | Num | Seq
