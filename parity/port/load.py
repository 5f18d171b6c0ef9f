"""Weights across frameworks: a torch module's state dict into its NNX port and back, by path.

``jaxnets.nn.load_state_dict`` / ``jaxnets.nn.state_dict`` own the layouts (by layer type).
"""

from __future__ import annotations

import numpy as np  # noqa: F401 - the doctests use it
import torch
from flax import nnx

from jaxnets import nn

__all__ = ["load_torch", "to_torch"]


def load_torch(jax_module: nnx.Module, torch_module: torch.nn.Module) -> None:
    """Copy ``torch_module``'s parameters and buffers into ``jax_module`` in place.

    Keys are matched by torch path, strictly: every missing, unexpected and wrong-shape key is
    listed in one ``jaxnets.nn.StateDictError``.

    >>> from jaxnets.nn import Linear
    >>> torch_fc, jax_fc = torch.nn.Linear(3, 2), Linear(3, 2, rngs=nnx.Rngs(0))
    >>> load_torch(jax_fc, torch_fc)
    >>> bool(np.array_equal(jax_fc.kernel[...], torch_fc.weight.detach().numpy().T))
    True
    """
    state = {k: v.detach().cpu().numpy() for k, v in torch_module.state_dict().items()}
    nn.load_state_dict(jax_module, state)


def to_torch(jax_module: nnx.Module, torch_module: torch.nn.Module) -> None:
    """Write ``jax_module``'s parameters and buffers into ``torch_module`` (strict, in place).

    ``load_torch`` then ``to_torch`` gives back torch's tensors bit for bit.
    """
    # state_dict's arrays are fresh writable copies, which torch.from_numpy takes as they are.
    state = {k: torch.from_numpy(v) for k, v in nn.state_dict(jax_module).items()}
    torch_module.load_state_dict(state)
