"""``Sequential``: layers called in order, named ``"0"``, ``"1"``, ... as torch names them."""

from __future__ import annotations

from typing import Any

from flax import nnx

__all__ = ["Sequential"]


class Sequential(nnx.List):
    """``torch.nn.Sequential(*modules)``: calls each module on the previous one's output.

    It is an ``nnx.List`` whose positions are torch's indices: the NNX state of layer ``i``
    lives under ``i`` and its torch ``state_dict`` keys start with ``"i."``. Indexing, ``len``,
    ``append`` and ``insert`` work as on a list (a slice gives a ``Sequential``).
    ``model.train()`` / ``model.eval()`` reach every layer inside. torch's ``OrderedDict`` form
    (named positions) is not offered: give the modules positionally.

    >>> import jax.numpy as jnp
    >>> from jaxnets import nn
    >>> model = nn.Sequential(nn.Linear(4, 3, rngs=nnx.Rngs(0)), nn.ReLU())
    >>> model(jnp.ones((2, 4), jnp.float32)).shape, type(model[0]).__name__
    ((2, 3), 'Linear')
    """

    def __init__(self, *modules: nnx.Module):
        for index, module in enumerate(modules):
            if not isinstance(module, nnx.Module):
                raise TypeError(
                    f"Sequential takes nnx modules; position {index} is {type(module).__name__}"
                )
        super().__init__(modules)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return Sequential(*super().__getitem__(index))
        return super().__getitem__(index)

    def __call__(self, x: Any) -> Any:
        for module in self:
            x = module(x)
        return x
