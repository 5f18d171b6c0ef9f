"""torch functions, tensor methods and Python operators as ``jnp`` / ``jaxnets.nn.functional``
code, with each value's layout carried through.

A handler gets the writer, the node and its arguments as :mod:`parity.generate.values` and
returns the node's value. Ops that name dimensions (``cat``, ``sum``, ``softmax``,
``transpose``, ``view``, indexing, ``split``) remap them to the port's axes; element-wise ops
keep their operands' layout; everything else gets its tensors in torch's layout.
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


# ----------------------------------------------------------------------------- shapes


def _shape_items(t: Tensor) -> list[Num]:
    return [
        Num(f"{t.expr}.shape[{layout.axis(t.perm, d)}]", s, t.refs) for d, s in enumerate(t.shape)
    ]


@_op("size")
def _size(ctx, node, args, kwargs):
    t = args[0]
    dim = _arg(args, kwargs, 1, "dim")
    if dim is None:
        return _shape_seq(t)
    return Num(f"{t.expr}.shape[{_dim(t, dim)}]", ctx.recorded(node), _refs(t, dim))


def _shape_seq(t: Tensor) -> Seq:
    items = _shape_items(t)
    if t.perm == layout.identity(t.rank):
        return Seq(f"{t.expr}.shape", items, t.refs)
    return Seq(expr_of(tuple(items)), items, t.refs)


@_op("dim", "ndimension")
def _ndim(ctx, node, args, kwargs):
    return Num(f"{args[0].expr}.ndim", args[0].rank, args[0].refs)


@_op("getattr")
def _getattr(ctx, node, args, kwargs):
    t, name = args[0], _value(args[1])
    if name == "shape":
        return _shape_seq(t)
    if name in ("device", "dtype", "is_cuda"):
        return Num("None", None)  # the port has no devices; dtypes follow the arrays
    if name == "T" and isinstance(t, Tensor):
        return _transpose_to(ctx, node, t, tuple(reversed(range(t.rank))))
    if name == "ndim":
        return Num(f"{t.expr}.ndim", t.rank, t.refs)
    return ctx.fail(node, f"the tensor attribute {name!r} has no translation")


# ----------------------------------------------------------------------------- dims


def _transpose_to(ctx, node, t: Tensor, dims: tuple[int, ...]) -> Tensor:
    """``t.permute(dims)``: written as a transpose in torch's layout; in another layout only
    the bookkeeping changes (the data is moved where something needs it)."""
    rank = t.rank
    dims = tuple(d % rank for d in dims)
    if t.perm == layout.identity(rank):
        moved = [d for d in range(rank) if dims[d] != d]
        if len(moved) == 2:
            a, b = moved
            return ctx.tensor(node, f"jnp.swapaxes({t.expr}, {a}, {b})", t.perm, t.refs)
        return ctx.tensor(node, f"jnp.transpose({t.expr}, {dims})", t.perm, t.refs)
    perm = tuple(dims.index(p) for p in t.perm)
    return Tensor(t.expr, perm, ctx.recorded(node).shape, t.dtype, t.refs)


@_op("transpose", "swapaxes", "transpose_")
def _transpose(ctx, node, args, kwargs):
    t = args[0]
    a, b = (int(_value(x)) % t.rank for x in (args[1], args[2]))
    dims = list(range(t.rank))
    dims[a], dims[b] = dims[b], dims[a]
    return _transpose_to(ctx, node, t, tuple(dims))


@_op("t")
def _t(ctx, node, args, kwargs):
    t = args[0]
    return _transpose_to(ctx, node, t, tuple(reversed(range(t.rank))))


@_op("permute")
def _permute(ctx, node, args, kwargs):
    dims = args[1:] if len(args) > 2 or not isinstance(_value(args[1]), tuple | list) else args[1]
    return _transpose_to(ctx, node, args[0], tuple(int(_value(d)) for d in dims))


def _reshape(ctx, node, t: Tensor, target: list[Any]) -> Tensor:
    """``t.reshape(target)`` (torch's sizes; -1 and expressions allowed), done in the port's
    layout where that keeps every entry in place, after a move to torch's layout otherwise."""
    out_shape = tuple(ctx.recorded(node).shape)
    perm = layout.reshaped(t.perm, t.shape, out_shape)
    source = t
    if perm is None:
        source = ctx.convert(t, layout.identity(t.rank))
        perm = layout.identity(len(out_shape))
    sizes = [expr_of(target[p]) for p in perm]
    text = f"{_paren(source.expr)}.reshape({', '.join(sizes)})"
    return ctx.tensor(node, text, perm, _refs(source, target))


@_op("view", "reshape")
def _view(ctx, node, args, kwargs):
    t = args[0]
    sizes = list(args[1:]) or [kwargs.get("shape", kwargs.get("size"))]
    if len(sizes) == 1 and isinstance(sizes[0], Seq | list | tuple):
        sizes = list(sizes[0].items if isinstance(sizes[0], Seq) else sizes[0])
    if len(sizes) == 1 and isinstance(_value(sizes[0]), torch.dtype):
        return ctx.fail(node, "view(dtype) reinterprets bits; it has no translation")
    return _reshape(ctx, node, t, sizes)


@_op("flatten")
def _flatten(ctx, node, args, kwargs):
    t = args[0]
    start = int(_value(_arg(args, kwargs, 1, "start_dim", 0))) % max(t.rank, 1)
    end = int(_value(_arg(args, kwargs, 2, "end_dim", -1))) % max(t.rank, 1)
    items = _shape_items(t)
    target: list[Any] = [*items[:start], -1, *items[end + 1 :]]
    return _reshape(ctx, node, t, target)


@_op("unsqueeze")
def _unsqueeze(ctx, node, args, kwargs):
    t = ctx.convert(args[0], layout.identity(args[0].rank))
    dim = int(_value(_arg(args, kwargs, 1, "dim"))) % (t.rank + 1)
    return ctx.tensor(
        node, f"jnp.expand_dims({t.expr}, {dim})", layout.identity(t.rank + 1), t.refs
    )


@_op("squeeze")
def _squeeze(ctx, node, args, kwargs):
    t = args[0]
    dim = _arg(args, kwargs, 1, "dim")
    out_rank = len(ctx.recorded(node).shape)
    if dim is None:
        t = ctx.convert(t, layout.identity(t.rank))
        return ctx.tensor(node, f"jnp.squeeze({t.expr})", layout.identity(out_rank), t.refs)
    d = int(_value(dim)) % t.rank
    if t.shape[d] != 1:
        return t
    axis = layout.axis(t.perm, d)
    perm = tuple(p - (p > d) for p in t.perm if p != d)
    return ctx.tensor(node, f"jnp.squeeze({t.expr}, {axis})", perm, t.refs)


def _reduce_dims(t: Tensor, dim: Any) -> list[int]:
    value = _value(dim)
    dims = value if isinstance(value, tuple | list) else [value]
    return sorted(int(d) % t.rank for d in dims)


@_op("mean", "sum", "amax", "amin", "prod", "std", "var", "logsumexp")
def _reduction(ctx, node, args, kwargs):
    name = op_name(node)
    t = args[0]
    dim = _arg(args, kwargs, 1, "dim")
    keepdim = bool(_value(_arg(args, kwargs, 2, "keepdim", False)))
    extra = []
    if name in ("std", "var"):
        correction = kwargs.get("correction", kwargs.get("unbiased", True))
        ddof = (
            int(_value(correction))
            if not isinstance(_value(correction), bool)
            else int(_value(correction))
        )
        extra.append(f"ddof={ddof}")
    func = {"amax": "max", "amin": "min"}.get(name, name)
    if name == "logsumexp":
        func = "jax.nn.logsumexp"
    if dim is None:
        text = f"{_paren(t.expr)}.{func}()" if name != "logsumexp" else f"{func}({t.expr})"
        return ctx.tensor(node, text, (), t.refs)
    dims = _reduce_dims(t, dim)
    axes = tuple(sorted(layout.axis(t.perm, d) for d in dims))
    axis_text = str(axes[0]) if len(axes) == 1 else str(axes)
    parts = [f"axis={axis_text}", *(["keepdims=True"] if keepdim else []), *extra]
    if name == "logsumexp":
        text = _call(func, t.expr, *parts)
    else:
        text = f"{_paren(t.expr)}.{func}({', '.join(parts)})"
    if keepdim:
        perm = t.perm
    else:
        kept = [p for p in t.perm if p not in dims]
        perm = tuple(sorted(kept).index(p) for p in kept)
    return ctx.tensor(node, text, perm, t.refs)


@_op("max", "min")
def _max(ctx, node, args, kwargs):
    t = args[0]
    if len(args) == 1 and not kwargs:
        return ctx.tensor(node, f"{_paren(t.expr)}.{op_name(node)}()", (), t.refs)
    if len(args) == 2 and isinstance(args[1], Tensor):
        return _extremum_pair(ctx, node, args)
    return ctx.fail(node, f"{op_name(node)} over a dim returns (values, indices): use amax/amin")


def _extremum_pair(ctx, node, args):
    func = "jnp.maximum" if op_name(node) == "max" else "jnp.minimum"
    return _elementwise(ctx, node, list(args[:2]), lambda e: f"{func}({e[0]}, {e[1]})")


@_op("cat", "concat", "concatenate")
def _cat(ctx, node, args, kwargs):
    tensors = list(_arg(args, kwargs, 0, "tensors"))
    dim = int(_value(_arg(args, kwargs, 1, "dim", 0)))
    perm = tensors[0].perm
    moved = [ctx.convert(t, perm) for t in tensors]
    axis = layout.axis(perm, dim)
    text = f"jnp.concatenate({expr_of(list(moved))}, axis={axis})"
    return ctx.tensor(node, text, perm, _refs(moved))


@_op("stack")
def _stack(ctx, node, args, kwargs):
    tensors = [ctx.convert(t, layout.identity(t.rank)) for t in _arg(args, kwargs, 0, "tensors")]
    dim = int(_value(_arg(args, kwargs, 1, "dim", 0))) % (tensors[0].rank + 1)
    text = f"jnp.stack({expr_of(tensors)}, axis={dim})"
    return ctx.tensor(node, text, layout.identity(tensors[0].rank + 1), _refs(tensors))


@_op("split", "chunk", "tensor_split", "unbind")
def _split(ctx, node, args, kwargs):
    name = op_name(node)
    t = args[0]
    default_dim = 0
    dim = int(_value(_arg(args, kwargs, 2 if name != "unbind" else 1, "dim", default_dim)))
    dim %= t.rank
    parts = [tuple(p.shape) for p in ctx.recorded(node)]
    axis = layout.axis(t.perm, dim)
    if name == "unbind":
        text = f"[jnp.squeeze(p, {axis}) for p in jnp.split({t.expr}, {len(parts)}, axis={axis})]"
        perm = tuple(p - (p > dim) for p in t.perm if p != dim)
        out_perms = [perm] * len(parts)
    else:
        sizes = [p[dim] for p in parts]
        if len(set(sizes)) == 1:
            where = str(len(sizes))
        else:
            where = str(list(itertools_accumulate(sizes))[:-1])
        text = f"jnp.split({t.expr}, {where}, axis={axis})"
        out_perms = [t.perm] * len(parts)
    var = ctx.emit(node, text, t.refs)
    items = [
        Tensor(f"{var}[{i}]", p, shape, t.dtype, frozenset({node.name}))
        for i, (p, shape) in enumerate(zip(out_perms, parts, strict=True))
    ]
    return Seq(var, items, frozenset({node.name}))


def itertools_accumulate(sizes: list[int]) -> list[int]:
    total, out = 0, []
    for s in sizes:
        total += s
        out.append(total)
    return out


@_op("operator.getitem")
def _getitem(ctx, node, args, kwargs):
    base, index = args
    if isinstance(base, Seq):
        i = _value(index)
        if isinstance(i, int):
            return base.items[i]
        items = base.items[i]
        return Seq(expr_of(tuple(items)), list(items), _refs(*items))
    if isinstance(base, Num):
        return Num(f"{_paren(base.expr)}[{expr_of(index)}]", ctx.recorded(node), _refs(base, index))
    return _index(ctx, node, base, index)


def _index(ctx, node, t: Tensor, index: Any) -> Tensor:
    items = list(index) if isinstance(index, tuple) else [index]
    simple = all(isinstance(_value(i), int | slice) or i is Ellipsis for i in items)
    simple = simple and not any(isinstance(i, Tensor) for i in items)
    if not simple or t.perm == layout.identity(t.rank):
        t = ctx.convert(t, layout.identity(t.rank))
        text = f"{_paren(_variable(t.expr))}[{_index_text(items)}]"
        out_rank = len(ctx.recorded(node).shape)
        return ctx.tensor(node, text, layout.identity(out_rank), _refs(t, items))
    if Ellipsis in items:
        at = items.index(Ellipsis)
        fill = t.rank - (len(items) - 1)
        items = items[:at] + [slice(None)] * fill + items[at + 1 :]
    items += [slice(None)] * (t.rank - len(items))
    ordered = [items[p] for p in t.perm]
    while ordered and isinstance(ordered[-1], slice) and ordered[-1] == slice(None):
        ordered.pop()
    dropped = {d for d, i in enumerate(items) if not isinstance(i, slice)}
    kept = [p for p in t.perm if p not in dropped]
    perm = tuple(sorted(kept).index(p) for p in kept)
    text = f"{_paren(_variable(t.expr))}[{_index_text(ordered) or ':'}]"
    return ctx.tensor(node, text, perm, _refs(t, items))


def _variable(expr: str) -> str:
    """``self.mask`` for ``self.mask[...]``: an NNX variable indexes as its array does."""
    return expr.removesuffix("[...]") if expr.startswith("self.") else expr


def _index_text(items: list[Any]) -> str:
    return ", ".join(expr_of(i) for i in items)


# ----------------------------------------------------------------------------- matmul, softmax


@_op("operator.matmul", "matmul", "bmm", "mm")
def _matmul(ctx, node, args, kwargs):
    a, b = (ctx.convert(x, layout.identity(x.rank)) for x in args[:2])
    out_rank = len(ctx.recorded(node).shape)
    text = f"{_paren(a.expr)} @ {_paren(b.expr)}"
    return ctx.tensor(node, text, layout.identity(out_rank), _refs(a, b))


@_op("softmax", "log_softmax", "F.softmax", "F.log_softmax", "F.softmin")
def _softmax(ctx, node, args, kwargs):
    name = op_name(node).removeprefix("F.")
    t = args[0]
    dim = _arg(args, kwargs, 1, "dim")
    if dim is None:
        return ctx.fail(node, f"{name} without dim: pass dim= as torch asks")
    text = f"F.{name}({t.expr}, dim={_dim(t, dim)})"
    return ctx.tensor(node, text, t.perm, t.refs)


@_op("F.normalize", "F.glu")
def _dim_function(ctx, node, args, kwargs):
    name = op_name(node)
    t = args[0]
    defaults = {"F.normalize": (2, 1), "F.glu": (1, -1)}
    position, default = defaults[name]
    dim = _arg(args, kwargs, position, "dim", default)
    rest = [expr_of(a) for a in args[1:position]]
    rest += [f"{k}={expr_of(v)}" for k, v in kwargs.items() if k != "dim"]
    text = _call(name, t.expr, *rest, f"dim={_dim(t, dim)}")
    return ctx.tensor(node, text, t.perm, t.refs)


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
