"""torch.nn's padding layers (``ConstantPad*``, ``ZeroPad*``, ``ReflectionPad*``,
``ReplicationPad*``, ``CircularPad*`` in 1, 2 and 3 dimensions) on channels-last input.

Each is :func:`jaxnets.nn.functional.padding.pad` with its mode: ``padding`` is an int (every
side) or torch's tuple ``(left, right[, top, bottom[, front, back]])``, listing the last
spatial axis first; inputs are batched ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from jaxnets.nn import _args
from jaxnets.nn.functional.padding import pad

__all__ = [
    f"{kind}Pad{n}d"
    for kind in ("Constant", "Zero", "Reflection", "Replication", "Circular")
    for n in (1, 2, 3)
]


class _PadNd(nnx.Module):
    _dims: ClassVar[int]
    _mode: ClassVar[str]
    torch_channel_axis: ClassVar[dict[int, int]]

    def __init__(self, padding: int | Sequence[int], value: float = 0.0):
        n = 2 * self._dims
        sizes = (padding,) * n if isinstance(padding, int) else tuple(padding)
        if len(sizes) != n or not all(isinstance(s, int) for s in sizes):
            raise ValueError(
                f"{type(self).__name__} padding must be an int or {n} ints, got {padding!r}"
            )
        self.padding = sizes
        self.value = float(value)

    def __call__(self, input: ArrayLike) -> jax.Array:  # noqa: A002 - torch's keyword
        x = jnp.asarray(input)
        d = self._dims
        layout = "(N, L, C)" if d == 1 else "(N, H, W, C)" if d == 2 else "(N, D, H, W, C)"
        _args.expect_rank(type(self).__name__, x, (d + 1, d + 2), layout)
        value = self.value if self._mode == "constant" else None
        return pad(x, self.padding, self._mode, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(padding={self.padding})"


def _pad_class(kind: str, mode: str, dims: int) -> type[_PadNd]:
    name = f"{kind}Pad{dims}d"
    sides = ("left", "right", "top", "bottom", "front", "back")[: 2 * dims]
    doc = (
        f"``torch.nn.{name}``: {mode} padding of the {dims} spatial "
        f"ax{'is' if dims == 1 else 'es'} before the channels, ``padding`` an int or "
        f"``({', '.join(sides)})``."
    )
    namespace = {
        "__doc__": doc,
        "__module__": __name__,
        "__qualname__": name,
        "_dims": dims,
        "_mode": mode,
        "torch_channel_axis": {dims + 2: 1, dims + 1: 0},
    }
    if kind == "Zero":

        def __init__(self, padding: int | Sequence[int]) -> None:
            _PadNd.__init__(self, padding, 0.0)

        namespace["__init__"] = __init__
    elif kind == "Constant":

        def __init__(self, padding: int | Sequence[int], value: float) -> None:  # noqa: F811
            _PadNd.__init__(self, padding, value)

        namespace["__init__"] = __init__
    else:

        def __init__(self, padding: int | Sequence[int]) -> None:  # noqa: F811
            _PadNd.__init__(self, padding)

        namespace["__init__"] = __init__
    return type(name, (_PadNd,), namespace)


_KINDS = {
    "Constant": "constant",
    "Zero": "constant",
    "Reflection": "reflect",
    "Replication": "replicate",
    "Circular": "circular",
}
for _kind, _mode in _KINDS.items():
    for _n in (1, 2, 3):
        globals()[f"{_kind}Pad{_n}d"] = _pad_class(_kind, _mode, _n)
del _kind, _mode, _n
