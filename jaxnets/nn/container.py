"""torch.nn's containers: ``Sequential``, ``ModuleList``, ``ModuleDict``, ``ParameterList``,
``ParameterDict``, and ``Unflatten``.

Children are named as torch names them in ``state_dict`` and ``named_modules``: positions
``"0"``, ``"1"``, ... (or the ``OrderedDict``'s names for a named ``Sequential``), and a
``ModuleDict``'s keys.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Unflatten"]


def _modules(kind: str, modules: Iterable[Any], names: Sequence[str] | None = None) -> list:
    modules = list(modules)
    for index, module in enumerate(modules):
        if not isinstance(module, nnx.Module):
            where = f"{names[index]!r}" if names else f"position {index}"
            raise TypeError(f"{kind} takes nnx modules; {where} is {type(module).__name__}")
    return modules


class Sequential(nnx.List):
    """``torch.nn.Sequential(*modules)`` or ``Sequential(OrderedDict(name=module, ...))``: calls
    each module on the previous one's output.

    It is an ``nnx.List``. Positional children are torch's indices (``"0."``, ``"1."`` in
    ``state_dict`` keys); with an ``OrderedDict`` the children carry its names, reachable as
    attributes (``model.conv1``) as in torch. Indexing, ``len``, ``append`` and ``insert`` work
    as on a list (a slice gives a ``Sequential``). ``model.train()`` / ``model.eval()`` reach
    every layer inside.

    >>> import jax.numpy as jnp
    >>> from jaxnets import nn
    >>> model = nn.Sequential(nn.Linear(4, 3, rngs=nnx.Rngs(0)), nn.ReLU())
    >>> model(jnp.ones((2, 4), jnp.float32)).shape, type(model[0]).__name__
    ((2, 3), 'Linear')
    >>> named = nn.Sequential(OrderedDict(fc=nn.Linear(4, 3, rngs=nnx.Rngs(0)), act=nn.ReLU()))
    >>> list(nn.state_dict(named)), type(named.act).__name__
    (['fc.weight', 'fc.bias'], 'ReLU')
    """

    def __init__(self, *modules: Any):
        names = None
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            names = [str(key) for key in modules[0]]
            modules = tuple(modules[0].values())
        self._torch_names = nnx.static(None)  # nnx.List's constructor appends one by one
        super().__init__(_modules("Sequential", modules, names))
        if names is not None:
            self._torch_names = nnx.static(tuple(names))

    def torch_child_names(self) -> list[str]:
        """The children's torch names, in order."""
        if self._torch_names is None:
            return [str(index) for index in range(len(self))]
        return list(self._torch_names)

    def __getattr__(self, name: str) -> Any:
        names = vars(self).get("_torch_names")
        if names is not None and name in names:
            return self[names.index(name)]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            children = list(super().__getitem__(index))
            if self._torch_names is None:
                return Sequential(*children)
            return Sequential(OrderedDict(zip(self._torch_names[index], children, strict=True)))
        return super().__getitem__(index)

    def append(self, module: nnx.Module) -> None:
        """Add ``module`` at the end (named by its position, as torch's ``append``)."""
        _modules("Sequential", [module])
        if self._torch_names is not None:
            self._torch_names = nnx.static((*self._torch_names, str(len(self))))
        super().append(module)

    def insert(self, index: int, module: nnx.Module) -> None:
        """Insert ``module`` before ``index``; positional names shift as in torch."""
        _modules("Sequential", [module])
        if self._torch_names is not None:
            raise NotImplementedError("insert into a named Sequential is not supported")
        super().insert(index, module)

    def __call__(self, input: Any) -> Any:  # noqa: A002 - torch's name
        for module in self:
            input = module(input)
        return input


class ModuleList(nnx.List):
    """``torch.nn.ModuleList(modules=None)``: a list of modules named by index (``"0."``, ...).

    >>> from jaxnets import nn
    >>> layers = nn.ModuleList([nn.Linear(2, 2, rngs=nnx.Rngs(0)) for _ in range(2)])
    >>> [key for key in nn.state_dict(layers)]
    ['0.weight', '0.bias', '1.weight', '1.bias']
    """

    def __init__(self, modules: Iterable[nnx.Module] | None = None):
        super().__init__(_modules("ModuleList", modules or []))

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return ModuleList(super().__getitem__(index))
        return super().__getitem__(index)

    def append(self, module: nnx.Module) -> ModuleList:
        """Add ``module`` at the end; returns the list, as torch's."""
        super().append(_modules("ModuleList", [module])[0])
        return self

    def extend(self, modules: Iterable[nnx.Module]) -> ModuleList:
        """Add every module of ``modules``; returns the list, as torch's."""
        for module in _modules("ModuleList", modules):
            super().append(module)
        return self

    def insert(self, index: int, module: nnx.Module) -> None:
        """Insert ``module`` before ``index``."""
        super().insert(index, _modules("ModuleList", [module])[0])

    def __iadd__(self, modules: Iterable[nnx.Module]) -> ModuleList:
        return self.extend(modules)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleList is a container: call its modules, not the list")


class ModuleDict(nnx.Dict):
    """``torch.nn.ModuleDict(modules=None)``: modules by name, in insertion order; the names are
    the ``state_dict`` prefixes (``"encoder.weight"``).

    >>> from jaxnets import nn
    >>> heads = nn.ModuleDict({"a": nn.Linear(2, 1, rngs=nnx.Rngs(0))})
    >>> list(heads), list(nn.state_dict(heads))
    (['a'], ['a.weight', 'a.bias'])
    """

    def __init__(self, modules: Mapping[str, nnx.Module] | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __setitem__(self, key: str, module: nnx.Module) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"module name must be a non-empty string without '.', got {key!r}")
        super().__setitem__(key, _modules("ModuleDict", [module], [key])[0])

    def update(self, modules: Mapping[str, nnx.Module] | Iterable[tuple[str, nnx.Module]]) -> None:  # type: ignore[override]
        """Add or replace modules from a mapping or ``(name, module)`` pairs."""
        items = modules.items() if isinstance(modules, Mapping) else modules
        for key, module in items:
            self[key] = module

    def __iter__(self) -> Iterator[str]:
        return (k for k in vars(self) if not k.startswith(("_pytree__", "_object__")))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleDict is a container: call its modules, not the dict")


def _param(value: Any) -> nnx.Param:
    return value if isinstance(value, nnx.Param) else nnx.Param(jnp.asarray(value))


class ParameterList(nnx.Dict):
    """``torch.nn.ParameterList(values=None)``: parameters named ``"0"``, ``"1"``, ... in
    ``state_dict``; arrays are wrapped in ``nnx.Param``. Indexing gives the array.

    >>> from jaxnets import nn
    >>> weights = nn.ParameterList([jnp.ones(2), jnp.zeros(3)])
    >>> list(nn.state_dict(weights)), weights[1].shape
    (['0', '1'], (3,))
    """

    def __init__(self, values: Iterable[Any] | None = None):
        super().__init__()
        for value in values or []:
            self.append(value)

    def __len__(self) -> int:
        return sum(1 for _ in self._keys())

    def _keys(self) -> Iterator[str]:
        return (k for k in vars(self) if not k.startswith(("_pytree__", "_object__")))

    def __iter__(self) -> Iterator[jax.Array]:  # type: ignore[override]
        return (getattr(self, k)[...] for k in self._keys())

    def __getitem__(self, index: int) -> jax.Array:  # type: ignore[override]
        return getattr(self, str(index % len(self)))[...]

    def append(self, value: Any) -> ParameterList:
        """Add a parameter at the end; returns the list, as torch's."""
        setattr(self, str(len(self)), _param(value))
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        """Add every value of ``values``; returns the list."""
        for value in values:
            self.append(value)
        return self


class ParameterDict(nnx.Dict):
    """``torch.nn.ParameterDict(parameters=None)``: parameters by name, in insertion order
    (the ``state_dict`` keys); arrays are wrapped in ``nnx.Param``. Indexing gives the array."""

    def __init__(self, parameters: Mapping[str, Any] | None = None):
        super().__init__()
        for key, value in (parameters or {}).items():
            self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"parameter name must be a non-empty string without '.', got {key!r}")
        super().__setitem__(key, _param(value))

    def __getitem__(self, key: str) -> jax.Array:
        return super().__getitem__(key)[...]

    def __iter__(self) -> Iterator[str]:
        return (k for k in vars(self) if not k.startswith(("_pytree__", "_object__")))


class Unflatten(nnx.Module):
    """``torch.nn.Unflatten(dim, unflattened_size)``: split axis ``dim`` into
    ``unflattened_size`` (one entry may be -1).

    With ``channels_last=True`` (the default, :class:`~jaxnets.nn.Flatten`'s inverse) and
    ``dim=1`` producing a feature map, the axes are torch's ``(N, C, *spatial)`` and the result
    is moved channels-last, ``(N, *spatial, C)``, so that ``Unflatten(1, (C, H, W))`` undoes
    ``Flatten()``. ``channels_last=False`` splits the array's own axis as is.

    >>> x = jnp.arange(12.0).reshape(1, 12)
    >>> Unflatten(1, (3, 2, 2))(x).shape, Unflatten(1, (3, 4), channels_last=False)(x).shape
    ((1, 2, 2, 3), (1, 3, 4))
    """

    def __init__(self, dim: int, unflattened_size: Sequence[int], *, channels_last: bool = True):
        sizes = tuple(int(s) for s in unflattened_size)
        if sum(s == -1 for s in sizes) > 1 or any(s < -1 or s == 0 for s in sizes):
            raise ValueError(f"unflattened_size must be positive sizes and at most one -1: {sizes}")
        self.dim = dim
        self.unflattened_size = sizes
        self.channels_last = channels_last

    def __call__(self, input: ArrayLike) -> jax.Array:  # noqa: A002
        x = jnp.asarray(input)
        if not -x.ndim <= self.dim < x.ndim:
            raise IndexError(f"Unflatten: dim {self.dim} is out of range for shape {x.shape}")
        axis = self.dim % x.ndim
        y = x.reshape(*x.shape[:axis], *self.unflattened_size, *x.shape[axis + 1 :])
        if self.channels_last and axis == 1 and x.ndim == 2 and y.ndim >= 3:
            y = jnp.moveaxis(y, 1, -1)
        return y
