"""torch functions, tensor methods and Python operators as ``jnp`` / ``jaxnets.nn.functional``
code, with each value's layout carried through.

A handler gets the writer, the node and its arguments as :mod:`parity.generate.values` and
returns the node's value. Element-wise ops keep their operands' layout, spatial functions take
channels-last or say ``layout="channels_first"``; everything else gets its tensors in torch's
layout. Ops that name dimensions (``cat``, ``sum``, ``softmax``, ``transpose``, ``view``,
indexing, ``split``) remap them to the port's axes: :mod:`parity.generate.dims`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import torch

from parity.generate import layout
from parity.generate.layers import literal
from parity.generate.values import Num, Seq, Tensor

__all__ = ["handler_for", "expr_of"]

Handler = Callable[..., Any]
_HANDLERS: dict[str, Handler] = {}


def _op(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            _HANDLERS[name] = fn
        return fn

    return register


def op_name(node: Any) -> str:
    """``view`` for ``x.view``, ``cat`` for ``torch.cat``, ``F.relu`` for
    ``torch.nn.functional.relu``, ``operator.add``, ``math.sqrt``, ``getattr``."""
    target = node.target
    if node.op == "call_method":
        return str(target)
    module = getattr(target, "__module__", None) or ""
    name = getattr(target, "__name__", str(target))
    if target is getattr:
        return "getattr"
    if module == "_operator" or getattr(operator, name, None) is target:
        return f"operator.{name}"
    if module == "math" or getattr(math, name, None) is target:
        return f"math.{name}"
    if getattr(torch.nn.functional, name, None) is target:
        return f"F.{name}"
    if getattr(torch, name, None) is target:
        return name
    return f"{module}.{name}"


def handler_for(name: str) -> Handler | None:
    return _HANDLERS.get(name)


# ----------------------------------------------------------------------------- helpers


def expr_of(value: Any) -> str:
    """Source for an argument: a value's expression, or a Python constant."""
    if isinstance(value, Tensor | Num | Seq):
        return value.expr
    if isinstance(value, slice):
        parts = [expr_of(p) if p is not None else "" for p in (value.start, value.stop)]
        text = ":".join(parts)
        return text + (f":{expr_of(value.step)}" if value.step is not None else "")
    if value is Ellipsis:
        return "..."
    if isinstance(value, list | tuple):
        items = [expr_of(v) for v in value]
        if isinstance(value, tuple):
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
        return f"[{', '.join(items)}]"
    if isinstance(value, float) and math.isinf(value):
        return "jnp.inf" if value > 0 else "-jnp.inf"
    if isinstance(value, torch.dtype):
        return f"jnp.{str(value).removeprefix('torch.')}"
    return literal(value)


def _refs(*values: Any) -> frozenset[str]:
    out: set[str] = set()
    for value in values:
        if isinstance(value, Tensor | Num | Seq):
            out |= value.refs
        elif isinstance(value, list | tuple):
            out |= _refs(*value)
        elif isinstance(value, slice):
            out |= _refs(value.start, value.stop, value.step)
        elif isinstance(value, dict):
            out |= _refs(*value.values())
    return frozenset(out)


def _paren(expr: str) -> str:
    simple = expr.lstrip("-").replace(".", "").replace("_", "").replace("\x00", "").isalnum()
    if simple or (expr.endswith(("]", ")")) and _balanced_call(expr)):
        return expr
    return f"({expr})"


def _balanced_call(expr: str) -> bool:
    """``f(x)`` or ``a[0]`` as one term: the outermost bracket closes at the end only."""
    depth = 0
    for i, ch in enumerate(expr):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth == 0 and i != len(expr) - 1 and expr[i + 1] not in "([.":
                return False
        elif depth == 0 and ch in " +-*/@<>=!&|%":
            return False
    return True


def _value(value: Any) -> Any:
    """The example's Python value of a Num (or a constant)."""
    if isinstance(value, Num):
        return value.value
    if isinstance(value, list | tuple):
        return type(value)(_value(v) for v in value)
    return value


def _dim(t: Tensor, dim: Any) -> int:
    return layout.axis(t.perm, int(_value(dim)))


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _call(func: str, *parts: str) -> str:
    return f"{func}({', '.join(p for p in parts if p)})"


def _kw(kwargs: dict, drop: tuple[str, ...] = (), function: str | None = None) -> list[str]:
    """``key=value`` for the keyword arguments, leaving out ``drop`` and those equal to the
    default of ``function`` (fx writes out every default of some torch functions)."""
    defaults = _defaults(function) if function else {}
    return [
        f"{k}={expr_of(v)}"
        for k, v in kwargs.items()
        if k not in drop and not (k in defaults and _equal(_value(v), defaults[k]))
    ]


def _defaults(function: str) -> dict[str, Any]:
    import inspect

    from jaxnets.nn import functional

    target = getattr(functional, function.removeprefix("F."), None)
    if target is None:
        return {}
    return {
        name: p.default
        for name, p in inspect.signature(target).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _equal(value: Any, default: Any) -> bool:
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # arrays and the like are never a default
        return False


# ----------------------------------------------------------------------------- element-wise

_UNARY = {
    "relu": "F.relu",
    "sigmoid": "F.sigmoid",
    "tanh": "jnp.tanh",
    "exp": "jnp.exp",
    "log": "jnp.log",
    "log1p": "jnp.log1p",
    "expm1": "jnp.expm1",
    "sqrt": "jnp.sqrt",
    "rsqrt": "jax.lax.rsqrt",
    "abs": "jnp.abs",
    "sin": "jnp.sin",
    "cos": "jnp.cos",
    "square": "jnp.square",
    "sign": "jnp.sign",
    "floor": "jnp.floor",
    "ceil": "jnp.ceil",
    "erf": "jax.scipy.special.erf",
}
_F_ELEMENTWISE = """relu relu6 elu selu celu leaky_relu gelu logsigmoid hardshrink tanhshrink
softsign softplus softshrink tanh sigmoid hardsigmoid silu mish hardswish hardtanh
threshold""".split()
_BINARY = {
    "add": "+",
    "sub": "-",
    "mul": "*",
    "truediv": "/",
    "div": "/",
    "floordiv": "//",
    "mod": "%",
    "pow": "**",
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "and_": "&",
    "or_": "|",
}


def _aligned(ctx: Any, node: Any, operands: list[Any]) -> tuple[list[Any], layout.Perm]:
    """Tensor operands in one layout for an element-wise op, and that layout: the layout of
    the highest-rank operand where every tensor operand has its rank; torch's otherwise
    (broadcasting counts axes from torch's end)."""
    tensors = [o for o in operands if isinstance(o, Tensor)]
    rank = max(t.rank for t in tensors)
    lead = next(t for t in tensors if t.rank == rank)
    same_rank = all(t.rank == rank or t.rank == 0 for t in tensors)
    perm = lead.perm if same_rank else layout.identity(rank)
    out = [
        ctx.convert(o, perm) if isinstance(o, Tensor) and o.rank == rank else o for o in operands
    ]
    if not same_rank:
        out = [_leading(ctx.convert(o, layout.identity(o.rank)), rank) for o in out]
    return out, perm


def _leading(value: Any, rank: int) -> Any:
    """A lower-rank operand with torch's implicit leading axes written out (``pos[None]``), so
    the port runs where JAX's implicit rank promotion is an error."""
    if not isinstance(value, Tensor) or value.rank in (0, rank):
        return value
    axes = ", ".join(["None"] * (rank - value.rank))
    shape = (1,) * (rank - value.rank) + value.shape
    return Tensor(
        f"{_paren(value.expr)}[{axes}]", layout.identity(rank), shape, value.dtype, value.refs
    )


def _elementwise(ctx, node, operands: list[Any], render: Callable[[list[str]], str]) -> Any:
    if not any(isinstance(o, Tensor) for o in operands):
        value = ctx.recorded(node)
        return Num(render([_paren(expr_of(o)) for o in operands]), value, _refs(*operands))
    aligned, perm = _aligned(ctx, node, operands)
    exprs = [_paren(expr_of(o)) for o in aligned]
    return ctx.tensor(node, render(exprs), perm, _refs(*aligned))


for _name, _symbol in _BINARY.items():

    def _binary(ctx, node, args, kwargs, symbol=_symbol):
        return _elementwise(ctx, node, list(args[:2]), lambda e: f"{e[0]} {symbol} {e[1]}")

    _HANDLERS[f"operator.{_name}"] = _binary
    if _name in ("add", "sub", "mul", "div", "eq", "ne", "lt", "le", "gt", "ge", "pow"):
        _HANDLERS[_name] = _binary
        _HANDLERS[f"{_name}_"] = _binary
_HANDLERS["true_divide"] = _HANDLERS["div"]
_HANDLERS["operator.iadd"] = _HANDLERS["operator.add"]
_HANDLERS["operator.imul"] = _HANDLERS["operator.mul"]


@_op("operator.neg", "neg")
def _neg(ctx, node, args, kwargs):
    return _elementwise(ctx, node, [args[0]], lambda e: f"-{e[0]}")


@_op("operator.invert", "logical_not")
def _invert(ctx, node, args, kwargs):
    return _elementwise(ctx, node, [args[0]], lambda e: f"~{e[0]}")


for _name, _func in _UNARY.items():

    def _unary(ctx, node, args, kwargs, func=_func):
        return _elementwise(ctx, node, [args[0]], lambda e: f"{func}({e[0]})")

    _HANDLERS[_name] = _unary
    _HANDLERS[f"{_name}_"] = _unary

for _name in _F_ELEMENTWISE:

    def _functional(ctx, node, args, kwargs, name=_name):
        rest = [expr_of(a) for a in args[1:]] + _kw(kwargs, ("inplace",), f"F.{name}")
        return _elementwise(ctx, node, [args[0]], lambda e: _call(f"F.{name}", e[0], *rest))

    _HANDLERS[f"F.{_name}"] = _functional


@_op("math.sqrt", "math.exp", "math.log", "math.floor", "math.ceil", "math.pow")
def _math(ctx, node, args, kwargs):
    name = op_name(node)
    exprs = [expr_of(a) for a in args]
    return Num(_call(name, *exprs), ctx.recorded(node), _refs(*args))


@_op("masked_fill", "masked_fill_")
def _masked_fill(ctx, node, args, kwargs):
    x, mask, fill = args[0], _arg(args, kwargs, 1, "mask"), _arg(args, kwargs, 2, "value")
    return _elementwise(ctx, node, [x, mask, fill], lambda e: f"jnp.where({e[1]}, {e[2]}, {e[0]})")


@_op("where")
def _where(ctx, node, args, kwargs):
    return _elementwise(ctx, node, list(args[:3]), lambda e: f"jnp.where({', '.join(e)})")


@_op("clamp", "clip", "clamp_", "clamp_min", "clamp_max")
def _clamp(ctx, node, args, kwargs):
    """torch's clamp passes the gradient at the bounds (``jnp.clip`` halves it there)."""
    name = op_name(node)
    low = _arg(args, kwargs, 1, "min") if name != "clamp_max" else None
    high = _arg(args, kwargs, 2 if name != "clamp_max" else 1, "max")

    def render(e: list[str]) -> str:
        x, lo, hi = e
        if _value(high) is None:
            return f"jnp.where({x} >= {lo}, {x}, {lo})"
        if _value(low) is None:
            return f"jnp.where({x} <= {hi}, {x}, {hi})"
        return f"jnp.where(({x} >= {lo}) & ({x} <= {hi}), {x}, jnp.clip({x}, {lo}, {hi}))"

    return _elementwise(ctx, node, [args[0], low, high], render)


@_op("maximum", "minimum")
def _extremum(ctx, node, args, kwargs):
    name = op_name(node)
    return _elementwise(ctx, node, list(args[:2]), lambda e: f"jnp.{name}({e[0]}, {e[1]})")


# ----------------------------------------------------------------------------- no-ops, casts


@_op("contiguous", "clone", "requires_grad_")
def _same(ctx, node, args, kwargs):
    return args[0]


@_op("detach")
def _detach(ctx, node, args, kwargs):
    t = args[0]
    return ctx.tensor(node, f"jax.lax.stop_gradient({t.expr})", t.perm, t.refs)


@_op("float", "double", "half", "long", "int", "bool", "to", "type_as", "type")
def _cast(ctx, node, args, kwargs):
    t = args[0]
    recorded = ctx.recorded(node)
    source = ctx.recorded(node.args[0])
    if recorded.dtype == source.dtype:
        return t
    return ctx.tensor(node, f"{_paren(t.expr)}.astype({expr_of(recorded.dtype)})", t.perm, t.refs)


# ----------------------------------------------------------------------------- spatial functions

_SPATIAL = """max_pool1d max_pool2d max_pool3d avg_pool1d avg_pool2d avg_pool3d
adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d
adaptive_max_pool2d adaptive_max_pool3d lp_pool1d lp_pool2d lp_pool3d interpolate upsample
pixel_shuffle pixel_unshuffle instance_norm group_norm local_response_norm""".split()


for _name in _SPATIAL:

    def _spatial(ctx, node, args, kwargs, name=_name):
        t = args[0]
        cl = layout.channel_moved(t.rank, 1)
        if t.perm != layout.identity(t.rank):
            t = ctx.convert(t, cl)
        rest = [expr_of(a) for a in args[1:]] + _kw(kwargs, function=f"F.{name}")
        if t.perm == cl and t.rank >= 3:
            text = _call(f"F.{name}", t.expr, *rest)
        else:
            text = _call(f"F.{name}", t.expr, *rest, 'layout="channels_first"')
        out = ctx.recorded(node)
        if isinstance(out, tuple):
            return ctx.fail(node, f"F.{name} with return_indices: use the layer")
        return ctx.tensor(
            node,
            text,
            t.perm if out.dim() == t.rank else layout.identity(out.dim()),
            _refs(t, args[1:], kwargs),
        )

    _HANDLERS[f"F.{_name}"] = _spatial


@_op("F.pad")
def _pad(ctx, node, args, kwargs):
    t = args[0]
    pad = _value(_arg(args, kwargs, 1, "pad"))
    rest = [expr_of(a) for a in args[1:]] + _kw(kwargs, function="F.pad")
    cl = layout.channel_moved(t.rank, 1)
    if t.rank >= 3 and t.perm == cl and len(pad) <= 2 * (t.rank - 2):
        return ctx.tensor(node, _call("F.pad", t.expr, *rest), cl, _refs(t))
    t = ctx.convert(t, layout.identity(t.rank))
    text = _call("F.pad", t.expr, *rest, 'layout="channels_first"')
    return ctx.tensor(node, text, t.perm, _refs(t))


# ----------------------------------------------------------------------------- creation, random


@_op("arange")
def _arange(ctx, node, args, kwargs):
    parts = [expr_of(a) for a in args]
    out = ctx.recorded(node)
    if out.dtype.is_floating_point:
        parts.append(f"dtype={expr_of(out.dtype)}")
    return ctx.tensor(node, _call("jnp.arange", *parts), (0,), _refs(args))


@_op("zeros", "ones")
def _filled(ctx, node, args, kwargs):
    name = op_name(node)
    sizes = list(args[0]) if len(args) == 1 and isinstance(args[0], list | tuple) else list(args)
    if len(sizes) == 1 and isinstance(sizes[0], Seq):
        sizes = sizes[0].items
    out = ctx.recorded(node)
    text = f"jnp.{name}({expr_of(tuple(sizes))}, {expr_of(out.dtype)})"
    return ctx.tensor(node, text, layout.identity(out.dim()), _refs(sizes))


@_op("zeros_like", "ones_like")
def _filled_like(ctx, node, args, kwargs):
    t = args[0]
    return ctx.tensor(node, f"jnp.{op_name(node)}({t.expr})", t.perm, t.refs)


@_op("full_like")
def _full_like(ctx, node, args, kwargs):
    t = args[0]
    fill = _arg(args, kwargs, 1, "fill_value")
    return ctx.tensor(node, f"jnp.full_like({t.expr}, {expr_of(fill)})", t.perm, _refs(t, fill))


@_op("tril", "triu")
def _triangle(ctx, node, args, kwargs):
    t = ctx.convert(args[0], layout.identity(args[0].rank))
    diagonal = _arg(args, kwargs, 1, "diagonal", 0)
    k = f", k={expr_of(diagonal)}" if _value(diagonal) else ""
    return ctx.tensor(node, f"jnp.{op_name(node)}({t.expr}{k})", t.perm, t.refs)


@_op("randn_like", "rand_like")
def _random_like(ctx, node, args, kwargs):
    t = args[0]
    if t.rank >= 3 and t.perm not in (layout.identity(t.rank), layout.channel_moved(t.rank, 1)):
        t = ctx.convert(t, layout.identity(t.rank))
    where = "torch" if t.perm == layout.identity(t.rank) else "channels_last"
    draw = f', layout="{where}"' if t.rank >= 3 else ""
    text = f"random.{op_name(node)}({t.expr}, rngs=self.rngs{draw})"
    ctx.uses_random()
    return ctx.tensor(node, text, t.perm, t.refs)


@_op("einsum")
def _einsum(ctx, node, args, kwargs):
    equation = args[0]
    operands = list(args[1]) if len(args) == 2 and isinstance(args[1], list | tuple) else args[1:]
    moved = [ctx.convert(o, layout.identity(o.rank)) for o in operands]
    out_rank = len(ctx.recorded(node).shape)
    text = f"jnp.einsum({expr_of(equation)}, {', '.join(m.expr for m in moved)})"
    return ctx.tensor(node, text, layout.identity(out_rank), _refs(moved))


@_op(
    "expand",
    "expand_as",
    "repeat",
    "cumsum",
    "F.linear",
    "F.layer_norm",
    "F.embedding",
    "F.scaled_dot_product_attention",
    "F.one_hot",
    "F.cosine_similarity",
    "F.pairwise_distance",
)
def _torch_layout(ctx, node, args, kwargs):
    """Ops written once, on torch's layout: the tensors are moved there first."""
    name = op_name(node)
    moved = [ctx.convert(a, layout.identity(a.rank)) if isinstance(a, Tensor) else a for a in args]
    parts = [expr_of(a) for a in moved[1:]] + _kw(kwargs, function=name)
    first = moved[0]
    if name == "expand":
        sizes = [
            expr_of(s) if _value(s) != -1 else str(first.shape[i] if i < first.rank else 1)
            for i, s in enumerate(args[1:])
        ]
        text = f"jnp.broadcast_to({first.expr}, ({', '.join(sizes)},))"
    elif name == "expand_as":
        text = f"jnp.broadcast_to({first.expr}, {moved[1].expr}.shape)"
    elif name == "repeat":
        text = f"jnp.tile({first.expr}, ({', '.join(parts)},))"
    elif name == "cumsum":
        dim = _arg(args, kwargs, 1, "dim")
        text = f"jnp.cumsum({first.expr}, axis={expr_of(dim)})"
    else:
        text = _call(name, first.expr, *parts)
    out = ctx.recorded(node)
    rank = out.dim() if isinstance(out, torch.Tensor) else 0
    return ctx.tensor(node, text, layout.identity(rank), _refs(moved, kwargs))


# The ops on dimensions register themselves on import.
from parity.generate import dims  # noqa: E402, F401
