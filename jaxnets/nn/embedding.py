"""``Embedding``: a lookup table with torch's initialisation and ``padding_idx`` gradient rule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from jaxnets.nn._args import positive
from jaxnets.nn.init import standard_normal
from jaxnets.nn.state import TorchEntry, same

__all__ = ["Embedding"]


class Embedding(nnx.Module):
    """``torch.nn.Embedding``: integer indices of any shape ``(...)`` -> ``(..., embedding_dim)``.

    ``weight`` is ``(num_embeddings, embedding_dim)`` in torch's layout, drawn from ``N(0, 1)``.
    ``padding_idx`` (negative counts from the end) starts as a zero row and never receives a
    gradient, as in torch. Out-of-range indices raise ``IndexError`` on concrete input; under
    ``jit`` they cannot raise and give NaN rows instead of JAX's silent clamping.
    ``max_norm`` (torch renormalises rows in place during the forward pass) and
    ``scale_grad_by_freq`` raise ``NotImplementedError``; ``sparse`` only changes the format of
    torch's gradient, so it is accepted and gradients are dense.

    >>> emb = Embedding(10, 3, padding_idx=0, rngs=nnx.Rngs(0))
    >>> emb(jnp.asarray([[0, 2]])).shape, emb.weight[0].tolist()
    ((1, 2, 3), [0.0, 0.0, 0.0])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        del norm_type, sparse  # norm_type only matters with max_norm
        if max_norm is not None:
            raise NotImplementedError(
                "Embedding(max_norm=...) is not supported: torch renormalises the looked-up "
                "rows of the weight in place during the forward pass"
            )
        if scale_grad_by_freq:
            raise NotImplementedError("Embedding(scale_grad_by_freq=True) is not supported")
        self.num_embeddings = positive("num_embeddings", num_embeddings)
        self.embedding_dim = positive("embedding_dim", embedding_dim)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"padding_idx must be within num_embeddings ({num_embeddings}), "
                    f"got {padding_idx}"
                )
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        weight = standard_normal(rngs.params(), (num_embeddings, embedding_dim), dtype)
        if padding_idx is not None:
            weight = weight.at[padding_idx].set(0)
        self.weight = nnx.Param(weight)

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight`` as is."""
        return {"weight": same("weight")}

    def __call__(self, indices: ArrayLike) -> jax.Array:
        indices = jnp.asarray(indices)
        if not jnp.issubdtype(indices.dtype, jnp.integer):
            raise TypeError(f"Embedding expects integer indices, got {indices.dtype}")
        if not isinstance(indices, jax.core.Tracer) and indices.size:
            values = np.asarray(indices)
            if values.min() < 0 or values.max() >= self.num_embeddings:
                raise IndexError(
                    f"Embedding index out of range [0, {self.num_embeddings}): "
                    f"got min {values.min()}, max {values.max()}"
                )
        weight = self.weight[...]
        if self.padding_idx is not None:
            # The padding row is read but never trained: cut its gradient, keep its value.
            row = self.padding_idx
            weight = weight.at[row].set(lax.stop_gradient(weight[row]))
        return jnp.take(weight, indices, axis=0, mode="fill", fill_value=jnp.nan)
