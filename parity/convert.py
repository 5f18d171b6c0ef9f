"""torch tensors -> a jaxnets experiment's parameters, with no layout written by hand.

An experiment with an NNX module (``MODEL``) gets torch's ``state_dict`` (or its gradients, keyed
alike) loaded by layer type through ``jaxnets.nn.load_state_dict``: each layer knows its torch
names and layout maps, including the conv -> flatten -> linear order (``jaxnets.nn.Flatten``
flattens in torch's order). An experiment of raw tensors (the mlp's ``W1``, the linear
tutorial's ``w``) names its parameters as the tutorial names its tensors, in the same layout, so
they are taken by name. Both are strict, like ``load_state_dict(strict=True)``: every missing,
unexpected or wrong-shape key is listed in one error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from flax import nnx

from jaxnets import nn
from jaxnets.nn import StateDictError

__all__ = ["StateDictError", "from_torch", "nchw_to_nhwc"]

Array = np.ndarray


def nchw_to_nhwc(x: Any) -> Array:
    """A torch feature map ``(N, C, H, W)`` in jaxnets' channels-last layout."""
    return np.asarray(x).transpose(0, 2, 3, 1)


def _by_name(state: Mapping[str, Array], template: Any) -> Any:
    """Raw tensors taken by name; a single-array ``template`` takes the one tensor there is."""
    if not isinstance(template, Mapping):
        if len(state) != 1:
            raise StateDictError(
                f"Error(s) in loading state_dict: one tensor expected, got keys {sorted(state)}"
            )
        template = {next(iter(state)): template}
        return _by_name(state, template)[next(iter(state))]
    problems = []
    missing = [k for k in template if k not in state]
    unexpected = [k for k in state if k not in template]
    if missing:
        problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing))
    if unexpected:
        problems.append(
            "Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected)
        )
    for key in template:
        if key in state and np.shape(state[key]) != tuple(template[key]):
            problems.append(
                f"size mismatch for {key}: copying a param with shape {np.shape(state[key])}, "
                f"the shape in the current model is {tuple(template[key])}"
            )
    if problems:
        raise StateDictError("Error(s) in loading state_dict:\n\t" + "\n\t".join(problems))
    return {key: np.asarray(state[key]) for key in template}


def from_torch(experiment: Any, state: Mapping[str, Any], template: Any) -> Any:
    """``state`` (torch names and layouts, NumPy) as ``experiment``'s parameters.

    Args:
      experiment: an experiment module (``jaxnets.experiments``' protocol).
      state: a torch ``state_dict``, or gradients keyed like its parameters.
      template: the shapes of the experiment's parameters (tuples), for raw-tensor experiments.

    Returns:
      NumPy parameters in jaxnets' structure and layouts, in ``state``'s dtype.

    Raises:
      StateDictError: keys or shapes that do not fit, all listed.
    """
    state = {key: np.asarray(value) for key, value in state.items()}
    model_type = getattr(experiment, "MODEL", None)
    if model_type is None:
        return _by_name(state, template)
    model = blank_model(model_type, next(iter(state.values())).dtype)
    nn.load_state_dict(model, state)
    return jax.tree.map(np.asarray, nnx.to_pure_dict(nnx.state(model, nnx.Param)))


def blank_model(model_type: type[nnx.Module], dtype: Any) -> nnx.Module:
    """``model_type(dtype=dtype, rngs=...)`` with shapes and dtypes but no values, for loading.

    Built under ``nnx.eval_shape``: nothing is drawn, since every value is about to be replaced
    by torch's. (Drawing eagerly compiles one random program per parameter shape, the larger
    part of ``python -m parity``'s compile time.) Load every variable before using the model.
    """
    return nnx.eval_shape(lambda: model_type(dtype=dtype, rngs=nnx.Rngs(0)))
