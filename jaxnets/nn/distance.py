"""``CosineSimilarity`` and ``PairwiseDistance``, thin over
:mod:`jaxnets.nn.functional.distance`."""

from __future__ import annotations

import jax
from flax import nnx
from jax.typing import ArrayLike

from jaxnets.nn.functional.distance import cosine_similarity, pairwise_distance

__all__ = ["CosineSimilarity", "PairwiseDistance"]


class CosineSimilarity(nnx.Module):
    """``torch.nn.CosineSimilarity(dim=1, eps=1e-8)`` along axis ``dim`` of the arrays as they
    are."""

    def __init__(self, dim: int = 1, eps: float = 1e-8):
        self.dim, self.eps = dim, float(eps)

    def __call__(self, x1: ArrayLike, x2: ArrayLike) -> jax.Array:
        return cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(nnx.Module):
    """``torch.nn.PairwiseDistance(p=2.0, eps=1e-6, keepdim=False)`` over the last axis."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False):
        self.norm, self.eps, self.keepdim = float(p), float(eps), keepdim

    def __call__(self, x1: ArrayLike, x2: ArrayLike) -> jax.Array:
        return pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
