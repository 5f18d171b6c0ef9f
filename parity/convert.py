"""torch ``state_dict`` <-> jaxnets parameter trees: every transpose and permutation lives here.

A *layout* maps each torch key to a ``Rule``: where the array lives in the jaxnets tree and the
pair of exact (transpose/reshape only) maps between the two layouts, so a round trip is
bit-for-bit. Conversion is strict, like ``load_state_dict(strict=True)``: missing, unexpected and
wrong-shape keys are all listed in one ``StateDictError``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray
Tree = dict[str, Any]


class StateDictError(ValueError):
    """Keys or shapes that do not fit the layout; the message lists every problem at once."""


@dataclass(frozen=True)
class Rule:
    """One torch tensor: its place in the jaxnets tree and the maps between the two layouts."""

    path: tuple[str, ...]
    to_jax: Callable[[Array], Array]
    to_torch: Callable[[Array], Array]


def same(*path: str) -> Rule:
    """Identical layouts (biases, raw-tensor weights such as the MLP's ``X.mm(W1)``)."""
    return Rule(path, lambda a: a, lambda a: a)


def linear_kernel(*path: str) -> Rule:
    """``nn.Linear.weight`` ``(out, in)`` <-> Dense kernel ``(in, out)``."""
    return Rule(path, lambda a: a.T, lambda a: a.T)


def conv_kernel(*path: str) -> Rule:
    """``nn.Conv2d.weight`` ``(O, I, kH, kW)`` <-> HWIO ``(kH, kW, I, O)``."""
    return Rule(path, lambda a: a.transpose(2, 3, 1, 0), lambda a: a.transpose(3, 2, 0, 1))


def flattened_linear_kernel(*path: str, chw: tuple[int, int, int]) -> Rule:
    """A Linear after ``x.view(B, -1)`` of an NCHW feature map, fed from an NHWC one.

    torch's rows run over ``(C, H, W)``; NHWC flattening runs over ``(H, W, C)``. The kernel
    ``(C*H*W, out)`` is therefore permuted as well as transposed.
    """
    c, h, w = chw

    def to_jax(a: Array) -> Array:
        out = a.shape[0]
        return a.reshape(out, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, out)

    def to_torch(a: Array) -> Array:
        out = a.shape[-1]
        return a.reshape(h, w, c, out).transpose(3, 2, 0, 1).reshape(out, c * h * w)

    return Rule(path, to_jax, to_torch)


def nchw_to_nhwc(x: Array) -> Array:
    return np.asarray(x).transpose(0, 2, 3, 1)


def nhwc_to_nchw(x: Array) -> Array:
    return np.asarray(x).transpose(0, 3, 1, 2)


Layout = Mapping[str, Rule]

MLP_LAYOUT: Layout = {"W1": same("W1"), "W2": same("W2")}
LINEAR_LAYOUT: Layout = {"w": same("w")}
CUSTOM_LAYOUT: Layout = {"W": same("W"), "scale": same("scale")}


def linear_layers(*names: str) -> dict[str, Rule]:
    """The layout of a module made of ``nn.Linear`` layers with these attribute names."""
    layout: dict[str, Rule] = {}
    for name in names:
        layout[f"{name}.weight"] = linear_kernel(name, "kernel")
        layout[f"{name}.bias"] = same(name, "bias")
    return layout


MODULE_REGRESSION_LAYOUT: Layout = linear_layers("linear")
DIGITS_LAYOUT: Layout = linear_layers("fc1", "fc2")
NET_LAYOUT: Layout = {
    "conv1.weight": conv_kernel("conv1", "kernel"),
    "conv1.bias": same("conv1", "bias"),
    "conv2.weight": conv_kernel("conv2", "kernel"),
    "conv2.bias": same("conv2", "bias"),
    "fc1.weight": flattened_linear_kernel("fc1", "kernel", chw=(16, 28, 28)),
    "fc1.bias": same("fc1", "bias"),
    "fc2.weight": linear_kernel("fc2", "kernel"),
    "fc2.bias": same("fc2", "bias"),
    "fc3.weight": linear_kernel("fc3", "kernel"),
    "fc3.bias": same("fc3", "bias"),
}


def _host(value: Any) -> Array:
    if hasattr(value, "detach"):  # a torch tensor; torch itself is not needed here
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _get(tree: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(tree, Mapping) or key not in tree:
            return None
        tree = tree[key]
    return tree


def _set(tree: Tree, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _leaf_paths(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for key, value in tree.items():
        if isinstance(value, Mapping):
            paths += _leaf_paths(value, (*prefix, key))
        else:
            paths.append((*prefix, key))
    return paths


def _raise(problems: list[str], direction: str) -> None:
    if problems:
        raise StateDictError(f"Error(s) in converting {direction}:\n\t" + "\n\t".join(problems))


def _shape_of(shape_or_array: Any) -> tuple[int, ...]:
    return tuple(shape_or_array) if isinstance(shape_or_array, tuple) else np.shape(shape_or_array)


def to_jax(state_dict: Mapping[str, Any], layout: Layout, template: Mapping[str, Any]) -> Tree:
    """Convert a torch ``state_dict`` to a jaxnets parameter tree of NumPy arrays.

    ``template`` is the jaxnets tree (arrays or shape tuples) the result must match, e.g.
    ``jaxnets.experiments.cnn.param_shapes()``.
    """
    missing = [k for k in layout if k not in state_dict]
    unexpected = [k for k in state_dict if k not in layout]
    problems = []
    if missing:
        problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing))
    if unexpected:
        problems.append(
            "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected)
        )
    params: Tree = {}
    for key, rule in layout.items():
        if key not in state_dict:
            continue
        want = _get(template, rule.path)
        if want is None:
            problems.append(f'layout path {"/".join(rule.path)} for "{key}" is not in the template')
            continue
        expected = rule.to_torch(np.zeros(_shape_of(want))).shape
        value = _host(state_dict[key])
        if value.shape != expected:
            problems.append(
                f"size mismatch for {key}: copying a param with shape {tuple(value.shape)}, "
                f"the shape in the jaxnets model is {expected} (as {'/'.join(rule.path)} "
                f"{_shape_of(want)})"
            )
            continue
        _set(params, rule.path, rule.to_jax(value))
    _raise(problems, "a torch state_dict to jaxnets params")
    return params


def to_torch(params: Mapping[str, Any], layout: Layout) -> dict[str, Array]:
    """Convert a jaxnets parameter tree back to a torch-layout ``state_dict`` of NumPy arrays."""
    by_path = {rule.path: key for key, rule in layout.items()}
    present = set(_leaf_paths(params))
    problems = []
    missing = [by_path[p] for p in by_path if p not in present]
    unexpected = ["/".join(p) for p in present if p not in by_path]
    if missing:
        problems.append("Missing parameter(s) for: " + ", ".join(f'"{k}"' for k in missing))
    if unexpected:
        problems.append("Unexpected parameter(s): " + ", ".join(sorted(unexpected)))
    _raise(problems, "jaxnets params to a torch state_dict")
    return {key: rule.to_torch(_host(_get(params, rule.path))) for key, rule in layout.items()}
