"""Losses with ``torch.nn.functional`` names, argument order, defaults and semantics.

Every function is pure and jit/vmap/grad compatible. Argument checks that depend only on shapes,
dtypes and options run in Python before tracing, so they raise the error torch raises even under
``jax.jit`` (``ValueError`` or ``TypeError`` where torch raises ``RuntimeError``; ``IndexError``
for class indices out of range, as torch). Checks on values (class indices in range,
probabilities in ``[0, 1]``, sequence lengths, non-negative variances) run only when the arrays
are concrete, not while they are traced; each docstring says what happens to such values then.
The result dtype follows ``input``: float32 in, float32 out, whatever the targets' dtype.
Gradients follow torch's backward formulas where they differ from plain autodiff of the forward
(binary cross entropies, log-softmax, p-norms, CTC) and torch's subgradients at kinks.
"""

from jaxnets.losses._classification import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    multilabel_soft_margin_loss,
    nll_loss,
)
from jaxnets.losses._ctc import ctc_loss
from jaxnets.losses._margin import (
    cosine_embedding_loss,
    hinge_embedding_loss,
    margin_ranking_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    soft_margin_loss,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)
from jaxnets.losses._regression import (
    gaussian_nll_loss,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    poisson_nll_loss,
    smooth_l1_loss,
)

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cosine_embedding_loss",
    "cross_entropy",
    "ctc_loss",
    "gaussian_nll_loss",
    "hinge_embedding_loss",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "margin_ranking_loss",
    "mse_loss",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "multilabel_soft_margin_loss",
    "nll_loss",
    "poisson_nll_loss",
    "smooth_l1_loss",
    "soft_margin_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]
