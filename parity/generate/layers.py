"""torch.nn layers as ``jaxnets.nn`` constructor calls, and the layouts each layer takes.

A torch layer's constructor arguments are read back from the instance: torch keeps most of
them as attributes of the same name (``in_channels``, ``kernel_size``, ``eps``); ``bias`` is
whether the bias tensor exists; the composite layers (transformer blocks, attention) are read
from their parts. Arguments equal to the constructor's default are left out, so the call reads
as it was most likely written.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from jaxnets import nn
from parity.generate import layout
from parity.generate.trace import GenerateError

__all__ = ["Writer", "constructor", "literal", "same", "takes", "gives", "ELEMENTWISE_LAYERS"]

# Layers that work entry by entry: any layout in, the same layout out.
ELEMENTWISE_LAYERS = frozenset(
    """ReLU ReLU6 ELU SELU CELU LeakyReLU GELU LogSigmoid Hardshrink Softshrink Tanhshrink
    Softsign Softplus Tanh Sigmoid Hardsigmoid SiLU Mish Hardswish Hardtanh Threshold Identity
    Dropout AlphaDropout""".split()
)
_SKIPPED_ARGS = {"self", "device", "dtype", "args", "kwargs", "_weight", "_freeze"}


def literal(value: Any) -> str:
    """Python source for a constructor argument."""
    if isinstance(value, float):
        if value != value:
            return "float('nan')"
        if value in (float("inf"), -float("inf")):
            return "float('inf')" if value > 0 else "-float('inf')"
        return repr(value)
    if isinstance(value, tuple | list):
        items = [literal(v) for v in value]
        if isinstance(value, tuple) and len(items) == 1:
            return f"({items[0]},)"
        text = ", ".join(items)
        return f"({text})" if isinstance(value, tuple) else f"[{text}]"
    if isinstance(value, str | int | bool) or value is None:
        return repr(value)
    raise GenerateError(f"cannot write {value!r} ({type(value).__name__}) as source")


def _compact(value: Any) -> Any:
    """``(3, 3)`` as torch's ``3`` where all entries agree (kernel sizes, strides)."""
    if isinstance(value, tuple) and len(value) > 1 and len(set(value)) == 1:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return value[0]
    return value


def _rnn_signature(module: torch.nn.Module) -> inspect.Signature:
    """torch's recurrent layers take ``*args, **kwargs``; their documented signature."""
    P = inspect.Parameter
    names: list[tuple[str, Any]] = [("input_size", P.empty), ("hidden_size", P.empty)]
    names.append(("num_layers", 1))
    if isinstance(module, torch.nn.RNN):
        names.append(("nonlinearity", "tanh"))
    names += [("bias", True), ("batch_first", False), ("dropout", 0.0), ("bidirectional", False)]
    if isinstance(module, torch.nn.LSTM):
        names.append(("proj_size", 0))
    return inspect.Signature([P(n, P.POSITIONAL_OR_KEYWORD, default=d) for n, d in names])


def _signature(module: torch.nn.Module) -> inspect.Signature:
    if isinstance(module, torch.nn.RNNBase):
        return _rnn_signature(module)
    return inspect.signature(type(module).__init__)


def _generic(module: torch.nn.Module) -> tuple[list[Any], list[tuple[str, Any, Any]]]:
    """Positional and keyword arguments read back from same-named attributes."""
    signature = _signature(module)
    args: list[Any] = []
    kwargs: list[tuple[str, Any, Any]] = []
    for name, parameter in signature.parameters.items():
        if name in _SKIPPED_ARGS or parameter.kind in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            continue
        if isinstance(module, torch.nn.RNNBase) and name == "bias":
            value: Any = module.bias
        elif name == "bias" and (
            isinstance(getattr(module, "bias", None), torch.Tensor)
            or getattr(module, "bias", 0) is None
        ):
            value = module.bias is not None
        elif name == "elementwise_affine" and hasattr(module, "weight"):
            value = module.weight is not None
        elif hasattr(module, name):
            value = getattr(module, name)
            if isinstance(value, torch.Tensor | torch.nn.Module) or callable(value):
                continue
        else:
            continue
        value = _compact(value)
        if name == "stride" and parameter.default is None:
            if value == _compact(getattr(module, "kernel_size", None)):
                continue  # torch stores its default, the kernel size
        if parameter.default is inspect.Parameter.empty:
            args.append(value)
        else:
            kwargs.append((name, value, parameter.default))
    return args, kwargs


def same(value: Any, default: Any) -> bool:
    """Whether an argument equals its default (then it is left out)."""
    if isinstance(value, float) or isinstance(default, float):
        try:
            return float(value) == float(default)
        except (TypeError, ValueError):
            return False
    return type(value) is type(default) and value == default


def _activation(function: Any) -> Any:
    name = getattr(function, "__name__", type(function).__name__).lower()
    if name in ("relu", "gelu"):
        return name
    raise GenerateError(f"transformer activation {function!r}: only relu and gelu are written")


def _encoder_layer(layer: Any) -> tuple[list[Any], list[tuple[str, Any]]]:
    attention = layer.self_attn
    args = [attention.embed_dim, attention.num_heads]
    kwargs = [
        ("dim_feedforward", layer.linear1.out_features, 2048),
        ("dropout", layer.dropout.p, 0.1),
        ("activation", _activation(layer.activation), "relu"),
        ("layer_norm_eps", layer.norm1.eps, 1e-5),
        ("batch_first", attention.batch_first, False),
        ("norm_first", layer.norm_first, False),
        ("bias", layer.linear1.bias is not None, True),
    ]
    return args, kwargs


def _attention(module: torch.nn.MultiheadAttention) -> tuple[list[Any], list[tuple[str, Any]]]:
    kwargs = [
        ("dropout", module.dropout, 0.0),
        ("bias", module.in_proj_bias is not None, True),
        ("add_bias_kv", module.bias_k is not None, False),
        ("add_zero_attn", module.add_zero_attn, False),
        ("kdim", module.kdim, module.embed_dim),
        ("vdim", module.vdim, module.embed_dim),
        ("batch_first", module.batch_first, False),
    ]
    return [module.embed_dim, module.num_heads], kwargs


class Writer:
    """How arguments become text: a positional argument as its literal, a keyword argument
    as ``name=literal`` or nothing where it equals the default."""

    def arg(self, name: str, value: Any) -> str:
        return literal(value)

    def kwarg(self, name: str, value: Any, default: Any) -> str:
        return "" if same(value, default) else f"{name}={literal(value)}"


def constructor(
    module: torch.nn.Module, child: Callable[[str, Any], str], path: str, lit: Writer
) -> str:
    """Source text building ``module``'s ``jaxnets.nn`` twin; ``child(path, module)`` gives the
    text for a module inside a container, ``lit`` the text of each argument."""
    name = type(module).__name__
    if isinstance(module, torch.nn.Sequential):
        named = list(module.named_children())
        if all(key == str(i) for i, (key, _) in enumerate(named)):
            return f"nn.Sequential({', '.join(child(f'{path}.{k}', m) for k, m in named)})"
        items = ", ".join(f"({k!r}, {child(f'{path}.{k}', m)})" for k, m in named)
        return f"nn.Sequential(OrderedDict([{items}]))"
    if isinstance(module, torch.nn.ModuleList):
        named = list(module.named_children())
        return f"nn.ModuleList([{', '.join(child(f'{path}.{k}', m) for k, m in named)}])"
    if isinstance(module, torch.nn.ModuleDict):
        items = ", ".join(f"{k!r}: {child(f'{path}.{k}', m)}" for k, m in module.named_children())
        return f"nn.ModuleDict({{{items}}})"
    if not hasattr(nn, name) or not type(module).__module__.startswith("torch.nn"):
        raise GenerateError(
            f"{path!r} is a torch.nn.{name}, which jaxnets.nn does not have; write it by hand "
            f"and pass it as leaves={{{path!r}: jax_module}}"
        )
    rngs = "rngs=rngs"
    if isinstance(module, torch.nn.TransformerEncoderLayer | torch.nn.TransformerDecoderLayer):
        args, kwargs = _encoder_layer(module)
    elif isinstance(module, torch.nn.TransformerEncoder | torch.nn.TransformerDecoder):
        layer = constructor(module.layers[0], child, f"{path}.layers.0", lit)
        args = [_Raw(layer), len(module.layers)]
        kwargs = []
        if module.norm is not None:
            norm = constructor(module.norm, child, f"{path}.norm", lit)
            kwargs.append(("norm", _Raw(norm), None))
        if isinstance(module, torch.nn.TransformerEncoder) and module.enable_nested_tensor:
            kwargs.append(("enable_nested_tensor", False, None))
        rngs = ""
    elif isinstance(module, torch.nn.MultiheadAttention):
        args, kwargs = _attention(module)
    elif isinstance(module, torch.nn.PReLU):
        args, kwargs = [], []
        kwargs.append(("num_parameters", module.num_parameters, 1))
    else:
        args, kwargs = _generic(module)
        if "rngs" not in inspect.signature(getattr(nn, name).__init__).parameters:
            rngs = ""
    names = _positional_names(module)
    parts = [
        a if isinstance(a, _Raw) else lit.arg(names[i] if i < len(names) else f"arg{i}", a)
        for i, a in enumerate(args)
    ]
    parts += [f"{k}={v}" if isinstance(v, _Raw) else lit.kwarg(k, v, d) for k, v, d in kwargs]
    if rngs:
        parts.append(rngs)
    return f"nn.{name}({', '.join(p for p in parts if p)})"


def _positional_names(module: torch.nn.Module) -> list[str]:
    return [
        n
        for n, p in _signature(module).parameters.items()
        if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL
    ]


class _Raw(str):
    """Source text passed through as is."""


def takes(module_class: str, jax_layer: type, rank: int) -> layout.Perm | None:
    """The layout a layer needs its input in; None where any layout works."""
    if module_class in ELEMENTWISE_LAYERS:
        return None
    if module_class == "Flatten":
        return None  # channels_last=True or False says which one it gets
    channel = getattr(jax_layer, "torch_channel_axis", {}).get(rank)
    if channel is not None:
        return layout.channel_moved(rank, channel)
    return layout.identity(rank)


def gives(jax_layer: type, input_perm: layout.Perm, out_rank: int, module_class: str):
    """The layout of a layer's output of rank ``out_rank``, given the input's."""
    if module_class in ELEMENTWISE_LAYERS:
        return input_perm if len(input_perm) == out_rank else layout.identity(out_rank)
    channel = getattr(jax_layer, "torch_channel_axis", {}).get(out_rank)
    if channel is not None and len(input_perm) == out_rank:
        return layout.channel_moved(out_rank, channel)
    return layout.identity(out_rank)
