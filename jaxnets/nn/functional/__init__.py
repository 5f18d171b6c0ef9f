"""``torch.nn.functional`` in JAX: same names, positional order, keywords and defaults.

Every function is pure and differentiable with torch's gradients, including at the points torch
defines specially (kinks, ties, clamps). Spatial functions (convolution, pooling, padding,
interpolation, the channel norms, pixel shuffle, fold/unfold) take ``layout="channels_last"``
by default, ``(N, *spatial, C)`` (and unbatched ``(*spatial, C)`` where torch accepts unbatched
input), and ``layout="channels_first"`` for torch's own ``(N, C, *spatial)``. The layers of
:mod:`jaxnets.nn` are thin wrappers over these functions.

Files by job: ``activation``, ``padding``, ``normalization``, ``dense`` (linear, bilinear),
``pooling``, ``unpooling``, ``convolution``, ``vision`` (interpolation, pixel shuffle,
fold/unfold), ``attention``, ``sparse`` (embeddings, one-hot), ``stochastic`` (dropouts),
``distance``; ``_helpers`` holds ``clamp_min`` and the pure form of NNX modules. Names load on
first use.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the submodule that defines it
_WHERE = {
    "relu": "activation",
    "relu6": "activation",
    "elu": "activation",
    "selu": "activation",
    "celu": "activation",
    "leaky_relu": "activation",
    "prelu": "activation",
    "rrelu": "activation",
    "glu": "activation",
    "gelu": "activation",
    "logsigmoid": "activation",
    "hardshrink": "activation",
    "tanhshrink": "activation",
    "softsign": "activation",
    "softplus": "activation",
    "softmin": "activation",
    "softmax": "activation",
    "log_softmax": "activation",
    "softshrink": "activation",
    "tanh": "activation",
    "sigmoid": "activation",
    "hardsigmoid": "activation",
    "silu": "activation",
    "mish": "activation",
    "hardswish": "activation",
    "hardtanh": "activation",
    "threshold": "activation",
    "pad": "padding",
    "batch_norm": "normalization",
    "instance_norm": "normalization",
    "layer_norm": "normalization",
    "group_norm": "normalization",
    "rms_norm": "normalization",
    "local_response_norm": "normalization",
    "normalize": "normalization",
    "linear": "dense",
    "bilinear": "dense",
    "dropout": "stochastic",
    "dropout1d": "stochastic",
    "dropout2d": "stochastic",
    "dropout3d": "stochastic",
    "alpha_dropout": "stochastic",
    "feature_alpha_dropout": "stochastic",
    "embedding": "sparse",
    "embedding_bag": "sparse",
    "max_unpool1d": "unpooling",
    "max_unpool2d": "unpooling",
    "max_unpool3d": "unpooling",
    "one_hot": "sparse",
    "cosine_similarity": "distance",
    "pairwise_distance": "distance",
    "conv1d": "convolution",
    "conv2d": "convolution",
    "conv3d": "convolution",
    "conv_transpose1d": "convolution",
    "conv_transpose2d": "convolution",
    "conv_transpose3d": "convolution",
    "max_pool1d": "pooling",
    "max_pool2d": "pooling",
    "max_pool3d": "pooling",
    "avg_pool1d": "pooling",
    "avg_pool2d": "pooling",
    "avg_pool3d": "pooling",
    "adaptive_avg_pool1d": "pooling",
    "adaptive_avg_pool2d": "pooling",
    "adaptive_avg_pool3d": "pooling",
    "adaptive_max_pool1d": "pooling",
    "adaptive_max_pool2d": "pooling",
    "adaptive_max_pool3d": "pooling",
    "lp_pool1d": "pooling",
    "lp_pool2d": "pooling",
    "lp_pool3d": "pooling",
    "fractional_max_pool2d": "pooling",
    "fractional_max_pool3d": "pooling",
    "interpolate": "vision",
    "upsample": "vision",
    "upsample_nearest": "vision",
    "upsample_bilinear": "vision",
    "pixel_shuffle": "vision",
    "pixel_unshuffle": "vision",
    "channel_shuffle": "vision",
    "unfold": "vision",
    "fold": "vision",
    "scaled_dot_product_attention": "attention",
    "multi_head_attention_forward": "attention",
    "clamp_min": "_helpers",
    "abstract": "_helpers",
    "apply_pure": "_helpers",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
