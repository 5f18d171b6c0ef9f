"""Ops that name dimensions or read shapes, written on the port's axes: ``size``/``shape``,
``view``/``reshape``/``flatten``, ``transpose``/``permute``, reductions, ``cat``/``stack``,
``split``/``chunk``, indexing, ``matmul`` and ``softmax``. A transpose of an array not in torch's
layout only changes the bookkeeping; a reshape that would reorder entries gets its transpose
first (``parity.generate.layout``).
"""

from __future__ import annotations

import itertools
from typing import Any

import torch

from parity.generate import layout
from parity.generate.ops import (
    _arg,
    _call,
    _dim,
    _elementwise,
    _op,
    _paren,
    _refs,
    _value,
    expr_of,
    op_name,
)
from parity.generate.values import Num, Seq, Tensor

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
        ddof = int(_value(correction))  # unbiased=True is ddof 1, as correction=1
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
            where = str(list(itertools.accumulate(sizes))[:-1])
        text = f"jnp.split({t.expr}, {where}, axis={axis})"
        out_perms = [t.perm] * len(parts)
    var = ctx.emit(node, text, t.refs)
    items = [
        Tensor(f"{var}[{i}]", p, shape, t.dtype, frozenset({node.name}))
        for i, (p, shape) in enumerate(zip(out_perms, parts, strict=True))
    ]
    return Seq(var, items, frozenset({node.name}))


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
