"""torch's module tree and ``state_dict`` for NNX modules built from these layers (NumPy only).

Every layer that holds state says how its torch tensors map onto its NNX variables:
``torch_state()`` returns ``{torch_local_name: TorchEntry(attr, to_jax, to_torch)}`` in torch's
``state_dict`` order (parameters, then buffers). The maps are transposes and reshapes only, so a
round trip is bit-for-bit. The functions here walk a module tree the way torch walks its
``_modules``:

- ``Sequential``, ``ModuleList``, ``nnx.List`` (``ModuleDict``, ``nnx.Dict``): children named by
  index (by key), as torch's ``nn.Sequential`` / ``nn.ModuleList`` (``nn.ModuleDict``) name
  them; a ``Sequential`` built from an ``OrderedDict`` by its names;
- any other module: its attributes in definition order; a module attribute is one child, a Python
  list or tuple (wrapped in ``nnx.data``) of modules gives children ``"name.0"``, ``"name.1"``, ...
  and a dict ``"name.key"`` (torch would hold a ``ModuleList``/``ModuleDict`` there, which adds the
  container itself to ``named_modules`` but not to the ``state_dict`` keys).

A module without ``torch_state`` contributes its own ``nnx.Param`` attributes (as torch
parameters) then its ``nnx.BatchStat`` attributes (as buffers) under their attribute names, in
unchanged layout: a user's ``self.scale = nnx.Param(...)`` is torch's ``nn.Parameter``.

>>> from jaxnets import nn
>>> model = nn.Sequential(nn.Linear(3, 2, rngs=nnx.Rngs(0)), nn.ReLU(), nn.BatchNorm1d(2))
>>> for key, value in nn.state_dict(model).items():
...     print(key, value.shape)
0.weight (2, 3)
0.bias (2,)
2.weight (2,)
2.bias (2,)
2.running_mean (2,)
2.running_var (2,)
2.num_batches_tracked ()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = [
    "TorchEntry",
    "StateDictError",
    "same",
    "transposed",
    "counter",
    "named_children",
    "named_modules",
    "state_dict",
    "load_state_dict",
]

Array = np.ndarray


@dataclass(frozen=True)
class TorchEntry:
    """One torch tensor of a layer: the NNX attribute holding it and the exact layout maps.

    Attributes:
      attr: name of the ``nnx.Variable`` attribute on the layer.
      to_jax: torch layout -> the variable's layout.
      to_torch: the variable's layout -> torch layout.
    """

    attr: str
    to_jax: Callable[[Array], Array]
    to_torch: Callable[[Array], Array]


class StateDictError(ValueError):
    """Missing, unexpected or wrong-shape keys; the message lists every problem at once."""


def _identity(a: Array) -> Array:
    return a


def same(attr: str) -> TorchEntry:
    """An entry stored in torch's layout (biases, norms' weights and buffers, embeddings)."""
    return TorchEntry(attr, _identity, _identity)


def transposed(attr: str, axes: Sequence[int]) -> TorchEntry:
    """An entry stored as ``torch_array.transpose(axes)``; the inverse is derived.

    >>> entry = transposed("kernel", (1, 0))
    >>> entry.to_jax(np.zeros((2, 3))).shape, entry.to_torch(np.zeros((3, 2))).shape
    ((3, 2), (2, 3))
    """
    forward = tuple(axes)
    inverse = tuple(int(i) for i in np.argsort(forward))
    return TorchEntry(attr, lambda a: a.transpose(forward), lambda a: a.transpose(inverse))


def counter(attr: str) -> TorchEntry:
    """An integer buffer torch keeps as int64 (``num_batches_tracked``), held here as int32.

    int32 exists with and without ``jax_enable_x64``; counts below 2**31 round-trip exactly.
    """
    return TorchEntry(attr, lambda a: a.astype(np.int32), lambda a: a.astype(np.int64))


def _entries(module: nnx.Module) -> dict[str, TorchEntry]:
    hook = getattr(module, "torch_state", None)
    if callable(hook):
        return dict(hook())
    params: dict[str, TorchEntry] = {}
    buffers: dict[str, TorchEntry] = {}
    for name, value in vars(module).items():
        if isinstance(value, nnx.Param):
            params[name] = same(name)
        elif isinstance(value, nnx.BatchStat):
            buffers[name] = same(name)
    return {**params, **buffers}


def _is_internal(name: str) -> bool:
    return name.startswith(("_pytree__", "_object__"))


def _children(module: nnx.Module) -> Iterator[tuple[str, nnx.Module]]:
    """Direct children with their torch names, duplicates included (as ``state_dict`` walks)."""
    if isinstance(module, nnx.List):
        hook = getattr(module, "torch_child_names", None)
        names = hook() if callable(hook) else [str(index) for index in range(len(module))]
        for name, child in zip(names, module, strict=True):
            if isinstance(child, nnx.Module):
                yield name, child
        return
    for name, value in vars(module).items():
        if _is_internal(name):
            continue
        if isinstance(value, nnx.Module):
            yield name, value
        elif isinstance(value, list | tuple):
            for index, child in enumerate(value):
                if isinstance(child, nnx.Module):
                    yield f"{name}.{index}", child
        elif isinstance(value, dict):
            for key, child in value.items():
                if isinstance(child, nnx.Module):
                    yield f"{name}.{key}", child


def named_children(module: nnx.Module) -> list[tuple[str, nnx.Module]]:
    """Direct submodules with their torch names, as torch's ``module.named_children()``.

    Args:
      module: any NNX module.

    Returns:
      ``[(name, child), ...]`` in registration order, each child once.
    """
    seen: set[int] = set()
    result = []
    for name, child in _children(module):
        if id(child) not in seen:
            seen.add(id(child))
            result.append((name, child))
    return result


def named_modules(module: nnx.Module) -> list[tuple[str, nnx.Module]]:
    """Every module of the tree with its torch path, as torch's ``module.named_modules()``.

    The root comes first as ``""``, then a depth-first walk in registration order
    (``"features"``, ``"features.0"``, ...); a module reachable twice is listed once.

    Args:
      module: any NNX module.

    Returns:
      ``[(path, module), ...]``.
    """
    seen: set[int] = set()
    result: list[tuple[str, nnx.Module]] = []

    def visit(node: nnx.Module, path: str) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        result.append((path, node))
        for name, child in _children(node):
            visit(child, f"{path}.{name}" if path else name)

    visit(module, "")
    return result


def _tensors(module: nnx.Module) -> dict[str, tuple[nnx.Variable, TorchEntry]]:
    """Every torch key of the tree with the variable that holds it, in torch's order."""
    tensors: dict[str, tuple[nnx.Variable, TorchEntry]] = {}

    def visit(node: nnx.Module, prefix: str) -> None:
        for local, entry in _entries(node).items():
            variable = getattr(node, entry.attr)
            if not isinstance(variable, nnx.Variable):
                raise TypeError(
                    f"{type(node).__name__}.{entry.attr} (torch {prefix + local!r}) is not an "
                    f"nnx.Variable but {type(variable).__name__}"
                )
            tensors[prefix + local] = (variable, entry)
        for name, child in _children(node):
            visit(child, f"{prefix}{name}.")

    visit(module, "")
    return tensors


def state_dict(module: nnx.Module) -> dict[str, Array]:
    """The module's torch ``state_dict``: torch key names, torch layouts, torch's key order.

    For each module, its parameters then its buffers, then its children recursively, as
    ``torch.nn.Module.state_dict()`` orders them. The arrays are fresh, writable NumPy copies
    (``torch.from_numpy`` takes them as they are).

    Args:
      module: an NNX module built from ``jaxnets.nn`` layers (any attribute names).

    Returns:
      ``{"features.0.weight": array, ...}``.
    """
    return {
        key: np.array(entry.to_torch(np.asarray(variable[...])), order="C", copy=True)
        for key, (variable, entry) in _tensors(module).items()
    }


def _host(value: Any) -> Array:
    if hasattr(value, "detach"):  # a torch tensor: duck-typed, torch itself is not imported
        value = value.detach().cpu().numpy()
    # A copy: JAX may alias host memory, and torch's in-place updates must not reach it.
    return np.array(value, copy=True)


def _torch_shape(variable: nnx.Variable, entry: TorchEntry) -> tuple[int, ...]:
    # A zero-stride view: the layout map runs without allocating the tensor.
    view = np.broadcast_to(np.zeros((), variable.dtype), variable.shape)
    return tuple(entry.to_torch(view).shape)


def _quoted(keys: Sequence[str]) -> str:
    return ", ".join(f'"{key}"' for key in keys)


def load_state_dict(module: nnx.Module, state: Mapping[str, Any], strict: bool = True) -> None:
    """Write a torch ``state_dict`` into the module's NNX variables, in place.

    Layouts are converted by each layer's ``torch_state`` and values cast to each variable's
    dtype. As torch: with ``strict`` every key must match both ways; wrong shapes are errors
    either way. Unlike torch, nothing is written when anything is wrong, and all problems are
    listed in one ``StateDictError``.

    Args:
      module: an NNX module built from ``jaxnets.nn`` layers.
      state: torch key -> array (NumPy, JAX, or torch tensors, which are read without torch).
      strict: require exactly the module's keys.

    Raises:
      StateDictError: missing or unexpected keys (when ``strict``) and size mismatches.

    >>> from jaxnets import nn
    >>> layer = nn.Linear(3, 2, rngs=nnx.Rngs(0))
    >>> nn.load_state_dict(layer, {"weight": np.ones((2, 3), np.float32), "bias": np.zeros(2)})
    >>> layer.kernel.shape
    (3, 2)
    >>> try:  # doctest: +ELLIPSIS
    ...     nn.load_state_dict(layer, {"weight": np.ones((3, 2))})
    ... except nn.StateDictError as err:
    ...     print(*[line.strip() for line in str(err).splitlines()], sep="\\n")
    Error(s) in loading state_dict for Linear:
    Missing key(s) in state_dict: "bias".
    size mismatch for weight: copying a param with shape (3, 2) from checkpoint, ... is (2, 3) ...
    """
    tensors = _tensors(module)
    problems = []
    if strict:
        missing = [key for key in tensors if key not in state]
        unexpected = [key for key in state if key not in tensors]
        if missing:
            problems.append(f"Missing key(s) in state_dict: {_quoted(missing)}.")
        if unexpected:
            problems.append(f"Unexpected key(s) in state_dict: {_quoted(unexpected)}.")
    updates = []
    for key, (variable, entry) in tensors.items():
        if key not in state:
            continue
        value = _host(state[key])
        expected = _torch_shape(variable, entry)
        if value.shape != expected:
            problems.append(
                f"size mismatch for {key}: copying a param with shape {value.shape} from "
                f"checkpoint, the shape in current model is {expected} "
                f"({entry.attr} {tuple(variable.shape)} in jaxnets' layout)."
            )
            continue
        updates.append((variable, entry.to_jax(value)))
    if problems:
        raise StateDictError(
            f"Error(s) in loading state_dict for {type(module).__name__}:\n\t"
            + "\n\t".join(problems)
        )
    for variable, value in updates:
        variable.set_value(jnp.asarray(value, variable.dtype))
