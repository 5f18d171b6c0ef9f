"""torch-exact NNX layers in JAX-native layouts, and torch's ``state_dict`` for them.

Every layer takes ``torch.nn``'s constructor arguments (positional order, names, defaults) plus
keyword-only ``dtype`` and ``rngs``, initialises as torch does (same distributions; the random
streams differ), and works on channels-last activations ``(N, *spatial, C)`` with spatial-first
kernels (``Linear`` ``(in, out)``, ``Conv2d`` HWIO), the layouts XLA runs fastest. Each layer
that holds state names its torch tensors and their exact layout maps (``torch_state()``), so
:func:`state_dict` and :func:`load_state_dict` read and write torch's keys and layouts for any
NNX module built from these layers.

``model.train()`` and ``model.eval()`` (NNX's, which set ``use_running_average`` and
``deterministic`` on every submodule) switch ``BatchNorm*`` and ``Dropout`` as torch's do;
layers start in training mode, as torch's.

A layer whose torch twin takes channels-first input says where, in the class attribute
``torch_channel_axis``: ``{input rank: torch's channel axis}`` (``Conv2d``: ``{4: 1, 3: 0}``,
batched and unbatched); an input of a rank listed there is torch's array with that axis moved
last, and so is an output of the same rank. Layers without the attribute take torch's own
layout (``Linear``, the activations, the recurrent and attention layers).

Files by job: ``init`` (torch initialisers), ``linear``, ``convolution``, ``norm``,
``pooling``, ``unpooling``, ``activation``, ``padding``, ``recurrent``, ``attention``,
``transformer``, ``upsampling``, ``pixelshuffle``, ``fold``, ``embedding``, ``distance``,
``dropout``, ``flatten``, ``container`` (``Sequential``, ``ModuleList``, ...), ``state`` (the
``state_dict`` protocol); :mod:`jaxnets.nn.functional` is ``torch.nn.functional``, which the
layers wrap (and ``clamp_min``, ``abstract``, ``apply_pure``); :mod:`jaxnets.nn.random` is the
one random source every layer draws through (torch's draws replayed in a port check).

Names load on first use, so ``jaxnets.nn.clamp_min`` costs no Flax import (a third of a
second at start-up) where no layer is needed.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the submodule that defines it
_WHERE = {
    # initialisers and functional helpers
    "torch_uniform": "init",
    "kaiming_uniform": "init",
    "bias_bound": "init",
    "standard_normal": "init",
    "clamp_min": "functional._helpers",
    "abstract": "functional._helpers",
    "apply_pure": "functional._helpers",
    # layers
    "Linear": "linear",
    "Identity": "linear",
    "Bilinear": "linear",
    "Conv1d": "convolution",
    "Conv2d": "convolution",
    "Conv3d": "convolution",
    "ConvTranspose1d": "convolution",
    "ConvTranspose2d": "convolution",
    "ConvTranspose3d": "convolution",
    "BatchNorm1d": "norm",
    "BatchNorm2d": "norm",
    "BatchNorm3d": "norm",
    "InstanceNorm1d": "norm",
    "InstanceNorm2d": "norm",
    "InstanceNorm3d": "norm",
    "LayerNorm": "norm",
    "GroupNorm": "norm",
    "RMSNorm": "norm",
    "LocalResponseNorm": "norm",
    "Embedding": "embedding",
    "EmbeddingBag": "embedding",
    "CosineSimilarity": "distance",
    "PairwiseDistance": "distance",
    "MaxUnpool1d": "unpooling",
    "MaxUnpool2d": "unpooling",
    "MaxUnpool3d": "unpooling",
    "Dropout": "dropout",
    "Dropout1d": "dropout",
    "Dropout2d": "dropout",
    "Dropout3d": "dropout",
    "AlphaDropout": "dropout",
    "FeatureAlphaDropout": "dropout",
    "MaxPool1d": "pooling",
    "MaxPool2d": "pooling",
    "MaxPool3d": "pooling",
    "AvgPool1d": "pooling",
    "AvgPool2d": "pooling",
    "AvgPool3d": "pooling",
    "AdaptiveAvgPool1d": "pooling",
    "AdaptiveAvgPool2d": "pooling",
    "AdaptiveAvgPool3d": "pooling",
    "AdaptiveMaxPool1d": "pooling",
    "AdaptiveMaxPool2d": "pooling",
    "AdaptiveMaxPool3d": "pooling",
    "LPPool1d": "pooling",
    "LPPool2d": "pooling",
    "LPPool3d": "pooling",
    "FractionalMaxPool2d": "pooling",
    "FractionalMaxPool3d": "pooling",
    "Flatten": "flatten",
    "Upsample": "upsampling",
    "UpsamplingNearest2d": "upsampling",
    "UpsamplingBilinear2d": "upsampling",
    "PixelShuffle": "pixelshuffle",
    "PixelUnshuffle": "pixelshuffle",
    "ChannelShuffle": "pixelshuffle",
    "Unfold": "fold",
    "Fold": "fold",
    "ReLU": "activation",
    "ReLU6": "activation",
    "ELU": "activation",
    "SELU": "activation",
    "CELU": "activation",
    "LeakyReLU": "activation",
    "PReLU": "activation",
    "RReLU": "activation",
    "GLU": "activation",
    "GELU": "activation",
    "LogSigmoid": "activation",
    "Hardshrink": "activation",
    "Softshrink": "activation",
    "Tanhshrink": "activation",
    "Softsign": "activation",
    "Softplus": "activation",
    "Softmax": "activation",
    "Softmin": "activation",
    "LogSoftmax": "activation",
    "Softmax2d": "activation",
    "Tanh": "activation",
    "Sigmoid": "activation",
    "Hardsigmoid": "activation",
    "SiLU": "activation",
    "Mish": "activation",
    "Hardswish": "activation",
    "Hardtanh": "activation",
    "Threshold": "activation",
    "ConstantPad1d": "padding",
    "ConstantPad2d": "padding",
    "ConstantPad3d": "padding",
    "ZeroPad1d": "padding",
    "ZeroPad2d": "padding",
    "ZeroPad3d": "padding",
    "ReflectionPad1d": "padding",
    "ReflectionPad2d": "padding",
    "ReflectionPad3d": "padding",
    "ReplicationPad1d": "padding",
    "ReplicationPad2d": "padding",
    "ReplicationPad3d": "padding",
    "CircularPad1d": "padding",
    "CircularPad2d": "padding",
    "CircularPad3d": "padding",
    "RNN": "recurrent",
    "LSTM": "recurrent",
    "GRU": "recurrent",
    "RNNCell": "recurrent",
    "LSTMCell": "recurrent",
    "GRUCell": "recurrent",
    "MultiheadAttention": "attention",
    "TransformerEncoderLayer": "transformer",
    "TransformerDecoderLayer": "transformer",
    "TransformerEncoder": "transformer",
    "TransformerDecoder": "transformer",
    "Transformer": "transformer",
    "Sequential": "container",
    "ModuleList": "container",
    "ModuleDict": "container",
    "ParameterList": "container",
    "ParameterDict": "container",
    "Unflatten": "container",
    # the state_dict protocol
    "TorchEntry": "state",
    "StateDictError": "state",
    "named_children": "state",
    "named_modules": "state",
    "state_dict": "state",
    "load_state_dict": "state",
}

__all__ = list(_WHERE)


_SUBMODULES = ("functional", "random")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
