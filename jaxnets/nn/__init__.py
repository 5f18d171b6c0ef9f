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

Files by job: ``init`` (torch initialisers), ``linear``, ``convolution``, ``norm``,
``pooling``, ``activation``, ``embedding``, ``dropout``, ``flatten``, ``container``
(``Sequential``), ``state`` (the ``state_dict`` protocol), ``functional`` (``clamp_min``,
``abstract``, ``apply_pure``).
"""

from jaxnets.nn.activation import GELU, ReLU, Sigmoid, SiLU, Softmax, Tanh
from jaxnets.nn.container import Sequential
from jaxnets.nn.convolution import Conv1d, Conv2d, ConvTranspose2d
from jaxnets.nn.dropout import Dropout
from jaxnets.nn.embedding import Embedding
from jaxnets.nn.flatten import Flatten
from jaxnets.nn.functional import abstract, apply_pure, clamp_min
from jaxnets.nn.init import bias_bound, kaiming_uniform, standard_normal, torch_uniform
from jaxnets.nn.linear import Identity, Linear
from jaxnets.nn.norm import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from jaxnets.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from jaxnets.nn.state import (
    StateDictError,
    TorchEntry,
    load_state_dict,
    named_children,
    named_modules,
    state_dict,
)

__all__ = [
    # initialisers and functional helpers
    "torch_uniform",
    "kaiming_uniform",
    "bias_bound",
    "standard_normal",
    "clamp_min",
    "abstract",
    "apply_pure",
    # layers
    "Linear",
    "Identity",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "GroupNorm",
    "Embedding",
    "Dropout",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "Flatten",
    "ReLU",
    "GELU",
    "SiLU",
    "Tanh",
    "Sigmoid",
    "Softmax",
    "Sequential",
    # the state_dict protocol
    "TorchEntry",
    "StateDictError",
    "named_children",
    "named_modules",
    "state_dict",
    "load_state_dict",
]
