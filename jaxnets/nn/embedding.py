"""``Embedding`` and ``EmbeddingBag``: lookup tables with torch's initialisation, thin over
:mod:`jaxnets.nn.functional.sparse`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike, DTypeLike

from jaxnets.nn._args import positive
from jaxnets.nn.functional.sparse import embedding, embedding_bag
from jaxnets.nn.init import standard_normal
from jaxnets.nn.state import TorchEntry, same

__all__ = ["Embedding", "EmbeddingBag"]


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

    def __call__(self, input: ArrayLike) -> jax.Array:  # noqa: A002 - torch's keyword
        return embedding(input, self.weight[...], self.padding_idx)


class EmbeddingBag(nnx.Module):
    """``torch.nn.EmbeddingBag``: sums, means or maxima of bags of embeddings.

    ``weight`` ``(num_embeddings, embedding_dim)`` is drawn from ``N(0, 1)`` as torch's, with
    ``padding_idx``'s row zeroed. ``__call__(input, offsets=None, per_sample_weights=None)``
    is :func:`jaxnets.nn.functional.embedding_bag`'s contract. ``max_norm`` and
    ``scale_grad_by_freq`` raise ``NotImplementedError``.

    >>> bag = EmbeddingBag(10, 3, mode="sum", rngs=nnx.Rngs(0))
    >>> bag(jnp.asarray([1, 2, 4, 5]), jnp.asarray([0, 2])).shape
    (2, 3)
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        _weight: ArrayLike | None = None,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
        *,
        dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        del norm_type, sparse
        if max_norm is not None or scale_grad_by_freq:
            raise NotImplementedError(
                "EmbeddingBag(max_norm=..., scale_grad_by_freq=True) is not supported"
            )
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
        self.num_embeddings = positive("num_embeddings", num_embeddings)
        self.embedding_dim = positive("embedding_dim", embedding_dim)
        self.mode = mode
        self.include_last_offset = include_last_offset
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError("padding_idx must be within num_embeddings")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        if _weight is not None:
            weight = jnp.asarray(_weight, dtype)
            if weight.shape != (num_embeddings, embedding_dim):
                raise ValueError("Shape of weight does not match num_embeddings and embedding_dim")
        else:
            weight = standard_normal(rngs.params(), (num_embeddings, embedding_dim), dtype)
            if padding_idx is not None:
                weight = weight.at[padding_idx].set(0)
        self.weight = nnx.Param(weight)

    def torch_state(self) -> dict[str, TorchEntry]:
        """``weight`` as is."""
        return {"weight": same("weight")}

    def __call__(
        self,
        input: ArrayLike,  # noqa: A002
        offsets: ArrayLike | None = None,
        per_sample_weights: ArrayLike | None = None,
    ) -> jax.Array:
        return embedding_bag(
            input,
            self.weight[...],
            offsets,
            mode=self.mode,
            per_sample_weights=per_sample_weights,
            include_last_offset=self.include_last_offset,
            padding_idx=self.padding_idx,
        )
